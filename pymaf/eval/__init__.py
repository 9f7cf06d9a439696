"""Evaluation on the paper's benchmarks (spec §5): one protocol per dataset, a shared batched runner.

``evaluate(...)`` is what ``eval.py`` calls; the pieces are usable on their own:
``runner.run_evaluation(predictor, loader, evaluator)`` with ``pose3d.Pose3DEvaluator``,
``lsp_seg.LSPSegEvaluator`` or ``coco_kp.COCOKeypointEvaluator``; ``report`` writes the table/JSON.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch

from pymaf.eval.pose3d import POSE3D_PROTOCOLS
from pymaf.eval.runner import Predictor, RunResult, model_predictor, run_evaluation

log = logging.getLogger("pymaf")

DATASETS = tuple(POSE3D_PROTOCOLS) + ("lsp", "coco")

__all__ = ["DATASETS", "evaluate", "build_evaluator", "load_predictor", "run_evaluation", "model_predictor",
           "RunResult"]


def build_evaluator(dataset: str, body_files, device: torch.device, *, data_root: Path,
                    coco_official_scores: bool = False, out_dir: Path | None = None):
    """(evaluator, protocol description, extra files) for ``dataset``."""
    from pymaf import paths
    from pymaf.body.smpl import build_smpl

    if dataset in POSE3D_PROTOCOLS:
        from pymaf.eval.pose3d import Pose3DEvaluator
        proto = POSE3D_PROTOCOLS[dataset]
        genders = {"none": ["neutral"], "neutral": ["neutral"], "3dpw": ["neutral", "male", "female"],
                   "auto": ["neutral", "male", "female"]}[proto.pve]
        smpl = {g: build_smpl(body_files, g).to(device).eval() for g in genders}
        return Pose3DEvaluator(proto, smpl), proto.describe(), {}
    if dataset == "lsp":
        from pymaf.eval.lsp_seg import LSPSegEvaluator
        from pymaf.render.parts import PartRenderer
        faces = build_smpl(body_files, "neutral").faces
        renderer = PartRenderer(body_files.vertex_texture, body_files.cube_parts, faces).to(device)
        gt_root = paths.dataset_image_root(data_root, "upi-s1h")
        desc = {"name": "lsp", "render": "PartRenderer 224², f=5000, crop cam (§5.3)",
                "uncrop": "nearest (§10.7 fix)", "gt": str(gt_root),
                "units": "accuracy %, F1 0..1", "reference": "spec §5.3"}
        return LSPSegEvaluator(renderer, gt_root), desc, {
            "vertex_texture": body_files.vertex_texture, "cube_parts": body_files.cube_parts}
    if dataset == "coco":
        from pymaf.eval.coco_kp import COCOKeypointEvaluator
        ann = Path(data_root) / paths.FILES["coco_val_annotations"].rel
        results = (out_dir / "results" / "keypoints_val2014_results.json") if out_dir else None
        desc = {"name": "coco", "keypoints": "joints49[25:] -> J24_TO_JCOCO, crop projection -> image pixels",
                "boxes": "GT boxes of the npz (no detector)", "official_scores": coco_official_scores,
                "units": "%", "reference": "spec §5.4, §10.17"}
        return COCOKeypointEvaluator(ann, official_scores=coco_official_scores, results_file=results), desc, \
            {"coco_annotations": ann}
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def load_predictor(checkpoint: str | None, data_root: Path, device: torch.device, cfg=None,
                   infer_model_cfg: bool = True) -> tuple[Predictor, Any]:
    """A predictor for the network of ``checkpoint`` ('none' = randomly initialised model of ``cfg``).
    Uses ``pymaf.api.load_model`` (official or own checkpoints; with ``infer_model_cfg`` the architecture
    is read from the checkpoint); returns (predictor, model)."""
    from pymaf.config import load_config
    cfg = cfg if cfg is not None else load_config(None, [])
    ckpt = None if checkpoint in (None, "", "none") else checkpoint
    try:
        from pymaf.api import load_model
    except ImportError:  # fallback until the API module exists: random init / plain state dict
        load_model = None
    if load_model is not None:
        model = load_model(ckpt, data_root, device, None if (infer_model_cfg and ckpt) else cfg)
    else:
        from pymaf.body.files import resolve_body_files
        from pymaf.model.build import build_model
        model = build_model(cfg.model, resolve_body_files(data_root), data_root)
        if ckpt is not None:
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            model.load_state_dict(state.get("model", state), strict=cfg.model.arch != "hmr")
        model = model.to(device)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(getattr(cfg.runtime, "amp", "none"))
    return model_predictor(model, amp), model


def evaluate(dataset: str, checkpoint: str | None, data_root: Path, *, device: str = "cpu", batch_size: int = 32,
             num_workers: int = 4, out_dir: Path | None = None, save_samples: bool = False,
             coco_official_scores: bool = False, cfg=None, infer_model_cfg: bool = True,
             predictor: Predictor | None = None,
             log_every: int = 50, printer: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate on ``dataset``; prints the table and samples/s, writes the JSON report; returns it."""
    from torch.utils.data import DataLoader

    from pymaf import paths
    from pymaf.body.files import resolve_body_files
    from pymaf.data.dataset import build_dataset
    from pymaf.eval import report

    dev = torch.device(device)
    data_root = Path(data_root)
    body_files = resolve_body_files(data_root)
    evaluator, protocol, extra = build_evaluator(dataset, body_files, dev, data_root=data_root,
                                                 coco_official_scores=coco_official_scores, out_dir=out_dir)
    crop_backend = getattr(getattr(cfg, "data", None), "crop_backend", "spin")
    ds = build_dataset(data_root, dataset, "eval", is_train=False, crop_backend=crop_backend)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=dev.type == "cuda", persistent_workers=False,
                        prefetch_factor=4 if num_workers > 0 else None)
    if predictor is None:
        predictor, _ = load_predictor(checkpoint, data_root, dev, cfg, infer_model_cfg)
    printer(f"evaluating {dataset}: {len(ds)} samples, batch {batch_size}, device {dev}")
    res = run_evaluation(predictor, loader, evaluator, dev, log_every=log_every, log=printer)
    npz = paths.dataset_npz(data_root, dataset, "eval")
    settings = {
        "checkpoint": checkpoint or "none", "checkpoint_sha256": report.sha256_file(checkpoint),
        "dataset_file": str(npz), "dataset_sha256": report.sha256_file(npz),
        "image_root": str(paths.dataset_image_root(data_root, dataset)), "data_root": str(data_root),
        "body_model": "builtin" if body_files.builtin else "real", "batch_size": batch_size, "device": str(dev),
        "amp": getattr(getattr(cfg, "runtime", None), "amp", "none"), "coco_official_scores": coco_official_scores,
        "extra_files": {k: {"path": str(v), "sha256": report.sha256_file(v)} for k, v in extra.items()},
        "torch": torch.__version__,
    }
    doc = report.build_report(dataset, res.metrics, protocol, settings, res.num_samples, res.seconds)
    printer(report.format_table(dataset, res.metrics))
    printer(f"{res.num_samples} samples in {res.seconds:.1f} s: {res.samples_per_s:.1f} samples/s")
    if out_dir is not None:
        path = report.write_report(out_dir, doc, res.samples if save_samples else None)
        printer(f"report: {path}")
        doc = json.loads(path.read_text())
    return doc
