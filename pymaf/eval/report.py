"""Evaluation report: a table on stdout, a JSON file, optionally a per-sample ``.npz``.

JSON schema (``<out_dir>/eval_<dataset>.json``, schema id ``pymaf-eval/1``)::

    {
      "schema": "pymaf-eval/1",
      "dataset": "3dpw",                       # the --dataset value
      "num_samples": 35515,
      "metrics": {                             # only the metrics the protocol defines
        # 3D protocols (mm):  "mpjpe", "pa_mpjpe", and
        #   "pve"  (3dpw, h36m-p2-mosh, synthetic-val only; §10.16: no PVE against zero-pose meshes),
        #   "pck", "auc", "pa_pck", "pa_auc" (mpi-inf-3dhp, %: PCK@150mm and AUC over 0..150 mm on the
        #   14 LSP joints, pelvis-centred and after Procrustes; mpjpe/pa_mpjpe there use the 17 joints),
        #   "per_action_pa_mpjpe": {"Directions": 41.2, ...} (h36m-p2, h36m-p2-mosh)
        # lsp:  "fg_bg_accuracy" (%), "fg_bg_f1" (0..1, mean over bg/fg), "parts_accuracy" (%),
        #       "parts_f1" (0..1, mean over 7 classes), "fg_bg_f1_per_class" [2], "parts_f1_per_class" [7]
        # coco: "AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL" (all %), "score_mode"
      },
      "protocol": {...},                       # how the metrics were computed (joints, GT mesh, units, § refs)
      "settings": {
        "checkpoint": "path" | "none",  "checkpoint_sha256": "hex" | null,
        "dataset_file": "path to the npz",  "dataset_sha256": "hex" | null,
        "image_root": "path", "data_root": "path", "body_model": "real" | "builtin",
        "batch_size": 32, "coco_official_scores": false,
        "device": "cuda:0", "amp": "none", "channels_last": true, "compile": false, "fuse": true,
        #   what ran the network (pymaf.runtime; eval.py: amp from --amp, default none = fp32; fuse and
        #   channels_last are exact; bf16/fp16 autocast runs on the CPU too; a predictor passed to evaluate() runs its own)
        "extra_files": {"name": {"path": ..., "sha256": ...}},   # e.g. the COCO annotation JSON
        "torch": "2.x", "command": "python eval.py ...", "time_utc": "2025-01-01T00:00:00Z"
      },
      "timing": {"seconds": 123.4, "samples_per_s": 287.6},
      "samples_file": "path to eval_<dataset>_samples.npz" | null
    }

Per-sample ``.npz`` (``--save-samples``): ``imgname`` [N] and, per protocol, ``mpjpe``, ``pa_mpjpe``,
``pve``, ``pck``, ``auc`` [N] (mm / %), ``pred_joints_h36m`` [N,17,3] (un-centred, metres), ``theta`` [N,85]
(cam 3, betas 10, axis-angle pose 72); LSP: ``imgname``; COCO: ``keypoints_coco`` [N,17,2] (image pixels),
``inside_crop`` [N,17].
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pymaf.paths import atomic_write

SCHEMA = "pymaf-eval/1"


def sha256_file(path: Path | str | None, chunk: int = 1 << 20) -> str | None:
    """Hex SHA-256 of a file, or None if there is no file."""
    if path is None or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def format_table(dataset: str, metrics: Mapping[str, Any]) -> str:
    """A two-column text table of the scalar metrics (lists and dicts are listed below it)."""
    rows = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))]
    width = max([len(k) for k, _ in rows] + [len("metric")])
    lines = [f"== {dataset} ==", f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{k:<{width}}  {v:.3f}" for k, v in rows]
    for k, v in metrics.items():
        if isinstance(v, Mapping):
            lines.append(f"{k}:")
            lines += [f"  {a:<{width - 2}}  {b:.3f}" for a, b in v.items()]
        elif isinstance(v, (list, tuple)):
            lines.append(f"{k}: " + ", ".join(f"{b:.3f}" for b in v))
        elif isinstance(v, str):
            lines.append(f"{k}: {v}")
    return "\n".join(lines)


def build_report(dataset: str, metrics: Mapping[str, Any], protocol: Mapping[str, Any],
                 settings: Mapping[str, Any], num_samples: int, seconds: float,
                 samples_file: Path | None = None) -> dict[str, Any]:
    """The JSON document of the module docstring."""
    s = dict(settings)
    s.setdefault("time_utc", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    s.setdefault("command", " ".join(sys.argv))
    return _jsonable({
        "schema": SCHEMA, "dataset": dataset, "num_samples": int(num_samples), "metrics": dict(metrics),
        "protocol": dict(protocol), "settings": s,
        "timing": {"seconds": seconds, "samples_per_s": num_samples / seconds if seconds > 0 else None},
        "samples_file": samples_file,
    })


def write_report(out_dir: Path | str, report: Mapping[str, Any], samples: Mapping[str, np.ndarray] | None = None
                 ) -> Path:
    """Write ``eval_<dataset>.json`` (and ``eval_<dataset>_samples.npz`` if samples) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = str(report["dataset"])
    report = dict(report)
    if samples:
        npz = out_dir / f"eval_{name}_samples.npz"
        np.savez(npz, **{k: np.asarray(v) for k, v in samples.items()})
        report["samples_file"] = str(npz)
    return atomic_write(out_dir / f"eval_{name}.json", lambda f: f.write(json.dumps(report, indent=2).encode()))
