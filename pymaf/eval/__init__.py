"""Evaluation on the paper's benchmarks (spec §5): one protocol per dataset, a shared batched runner.

This package is the only place where a protocol lives. ``evaluate(...)`` is what ``eval.py`` calls;
:func:`prepare_evaluation` builds the dataset, loader and evaluator factory that both ``evaluate`` and the
validation during training (``pymaf.train.trainer``) run, so the two report the same numbers for the same
weights. The pieces are usable on their own: ``runner.run_evaluation(predictor, loader, evaluator)`` with
``pose3d.Pose3DEvaluator``, ``lsp_seg.LSPSegEvaluator`` or ``coco_kp.COCOKeypointEvaluator``; ``report``
writes the table/JSON.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from pymaf.errors import ConfigError
from pymaf import paths
from pymaf.eval.pose3d import HIGHER_IS_BETTER, protocol_for
from pymaf.eval.runner import Evaluator, Predictor, RunResult, model_predictor, run_evaluation

log = logging.getLogger("pymaf")

# registry entries whose evaluation split a 3D protocol scores: NAME if the protocol is its own, else NAME-val
POSE3D_DATASETS = tuple(n if d.protocol == n else f"{n}-val" for n, d in paths.DATASETS.items()
                        if d.eval and d.protocol)
DATASETS = POSE3D_DATASETS + ("lsp", "coco")

__all__ = ["DATASETS", "POSE3D_DATASETS", "HIGHER_IS_BETTER", "EvalSetup", "prepare_evaluation", "evaluate",
           "build_evaluator", "load_predictor", "run_evaluation", "model_predictor", "RunResult"]


def build_evaluator(dataset: str, body_files, device: torch.device, *, data_root: Path,
                    coco_official_scores: bool = False, out_dir: Path | None = None,
                    annotations=None) -> tuple[Callable[[], Evaluator], dict[str, Any], dict[str, Path]]:
    """(evaluator factory, protocol description, extra files) for ``dataset``.

    ``annotations`` (the dataset's ``SpinAnnotations``): the 3D protocols check that the file holds the ground
    truth they score against (``pose3d.check_ground_truth``: an error, or a metric skipped and listed in the
    description). SMPL layers are built once, each the first time a batch needs its gender (a real SMPL neutral
    model without MALE/FEMALE files serves every protocol that needs no gendered GT mesh)."""
    from pymaf.body.smpl import build_smpl

    proto = protocol_for(dataset) if dataset not in ("lsp", "coco") else None
    if proto is not None:
        from pymaf.eval.pose3d import Pose3DEvaluator, check_ground_truth
        if annotations is not None:
            proto = check_ground_truth(proto, annotations.has_smpl, annotations.has_pose_3d, annotations.source)
        layers: dict[str, torch.nn.Module] = {}

        def layer(gender: str) -> torch.nn.Module:
            if gender not in layers:
                layers[gender] = build_smpl(body_files, gender).to(device).eval()
            return layers[gender]

        return (lambda: Pose3DEvaluator(proto, layer)), proto.describe(), {}
    if dataset == "lsp":
        from pymaf.eval.lsp_seg import LSPSegEvaluator
        from pymaf.render.parts import PartRenderer
        faces = build_smpl(body_files, "neutral").faces
        renderer = PartRenderer(body_files.vertex_texture, body_files.cube_parts, faces).to(device)
        gt_root = paths.dataset_image_root(data_root, "upi-s1h")
        desc = {"name": "lsp", "render": "PartRenderer 224², f=5000, crop cam (§5.3)",
                "uncrop": "nearest (§10.7 fix)", "gt": str(gt_root),
                "units": "accuracy %, F1 0..1", "reference": "spec §5.3"}
        return (lambda: LSPSegEvaluator(renderer, gt_root)), desc, {
            "vertex_texture": body_files.vertex_texture, "cube_parts": body_files.cube_parts}
    if dataset == "coco":
        from pymaf.eval.coco_kp import COCOKeypointEvaluator
        ann = Path(data_root) / paths.FILES["coco_val_annotations"].rel
        results = (out_dir / "results" / "keypoints_val2014_results.json") if out_dir else None
        desc = {"name": "coco", "keypoints": "joints49[25:] -> J24_TO_JCOCO, crop projection -> image pixels",
                "boxes": "GT boxes of the npz (no detector)", "official_scores": coco_official_scores,
                "units": "%", "reference": "spec §5.4, §10.17"}
        return (lambda: COCOKeypointEvaluator(ann, official_scores=coco_official_scores, results_file=results)), \
            desc, {"coco_annotations": ann}
    raise ConfigError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


@dataclass
class EvalSetup:
    """Everything a protocol run needs except the weights: built once, run as often as wanted."""
    dataset: str
    data: Any                                   # the BaseDataset
    loader: Iterable[Any]                       # the DataLoader (of this process's shard / first batches)
    new_evaluator: Callable[[], Evaluator]      # a fresh evaluator per run
    protocol: dict[str, Any]                    # the description written into the report
    extra_files: dict[str, Path]
    body_files: Any

    def run(self, predictor: Predictor, device: torch.device | str, log_every: int = 0,
            printer: Callable[[str], None] | None = None) -> RunResult:
        return run_evaluation(predictor, self.loader, self.new_evaluator(), device, log_every=log_every, log=printer)


def prepare_evaluation(dataset: str, data_root: Path | str, device: torch.device | str, *, batch_size: int = 32,
                       num_workers: int = 0, crop_backend: str = "spin", coco_official_scores: bool = False,
                       out_dir: Path | None = None, max_batches: int = 0,
                       shard: tuple[int, int] = (0, 1)) -> EvalSetup:
    """Dataset, loader and evaluator factory of ``dataset``'s protocol under ``data_root``.

    ``max_batches`` > 0: only the first ``max_batches · batch_size`` samples. ``shard`` = (rank, world size): the
    loader yields this process's slice (samples rank, rank + world, ...) of those, so that processes that add up
    their evaluators' ``totals()`` get the numbers of one process on all of them."""
    from pymaf.body.files import resolve_body_files
    from pymaf.data.dataset import build_dataset
    from pymaf.data.loader import build_loader

    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r} (--dataset / data.eval_dataset); expected one of "
                          f"{', '.join(DATASETS)}")
    dev = torch.device(device)
    data_root = Path(data_root)
    body_files = resolve_body_files(data_root, announce=False)   # announced where the model was built
    ds = build_dataset(data_root, dataset, "eval", is_train=False, crop_backend=crop_backend)
    factory, protocol, extra = build_evaluator(dataset, body_files, dev, data_root=data_root,
                                               coco_official_scores=coco_official_scores, out_dir=out_dir,
                                               annotations=ds.ann)
    rank, world = shard
    view: Any = ds
    if max_batches > 0:
        protocol = {**protocol, "subset": f"first {max_batches} batches of {batch_size}"}
    if world > 1 or max_batches > 0:
        n = len(ds) if max_batches <= 0 else min(len(ds), max_batches * batch_size)
        view = torch.utils.data.Subset(ds, range(rank, n, world))
    # a private generator: starting an epoch of this loader draws nothing from the global RNG, so validation
    # during training leaves the training run's random stream (and its exact resume) untouched
    loader = build_loader(view, batch_size=batch_size, num_workers=num_workers, pin_memory=dev.type == "cuda",
                          generator=torch.Generator().manual_seed(0))
    return EvalSetup(dataset, ds, loader, factory, protocol, extra, body_files)


def load_predictor(checkpoint: str | None, data_root: Path, cfg, infer_model_cfg: bool = True
                   ) -> tuple[Predictor, Any]:
    """A predictor for the network of ``checkpoint`` (None / 'none' = randomly initialised model of ``cfg``),
    built by ``pymaf.api.load_model`` (official or own checkpoints; with ``infer_model_cfg`` the architecture
    is read from the checkpoint) and run under ``cfg.runtime`` (``pymaf.runtime``); returns (predictor, model)."""
    from pymaf.api import load_model
    from pymaf.runtime import apply_runtime
    ckpt = None if checkpoint in (None, "", "none") else checkpoint
    model = load_model(ckpt, data_root, cfg.runtime.device, None if (infer_model_cfg and ckpt) else cfg)
    return model_predictor(apply_runtime(model.eval(), cfg.runtime, inference=True)), model


def evaluate(dataset: str, checkpoint: str | None, data_root: Path, *, device: str = "cpu", batch_size: int = 32,
             num_workers: int = 4, out_dir: Path | None = None, save_samples: bool = False,
             coco_official_scores: bool = False, cfg=None, infer_model_cfg: bool = True,
             predictor: Predictor | None = None,
             log_every: int = 50, printer: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate on ``dataset``; prints the table and samples/s, writes the JSON report; returns it."""
    from pymaf import paths
    from pymaf.config import load_config
    from pymaf.eval import report

    dev = torch.device(device)
    data_root = Path(data_root)
    cfg = dataclasses.replace(cfg if cfg is not None else load_config(None, []))
    cfg.runtime = dataclasses.replace(cfg.runtime, device=str(dev))
    setup = prepare_evaluation(dataset, data_root, dev, batch_size=batch_size, num_workers=num_workers,
                               crop_backend=cfg.data.crop_backend, coco_official_scores=coco_official_scores,
                               out_dir=out_dir)
    for why in setup.protocol.get("skipped_metrics", []):
        printer(f"skipped: {why}")
    if predictor is None:
        predictor, _ = load_predictor(checkpoint, data_root, cfg, infer_model_cfg)
    printer(f"evaluating {dataset}: {len(setup.data)} samples, batch {batch_size}, device {dev}")
    res = setup.run(predictor, dev, log_every=log_every, printer=printer)
    npz = paths.dataset_npz(data_root, dataset, "eval")
    body_files = setup.body_files
    settings = {
        "checkpoint": checkpoint or "none", "checkpoint_sha256": report.sha256_file(checkpoint),
        "dataset_file": str(npz), "dataset_sha256": report.sha256_file(npz),
        "image_root": str(paths.dataset_image_root(data_root, dataset)), "data_root": str(data_root),
        "body_model": "builtin" if body_files.builtin else "real", "batch_size": batch_size,
        **dataclasses.asdict(cfg.runtime), "coco_official_scores": coco_official_scores,
        "extra_files": {k: {"path": str(v), "sha256": report.sha256_file(v)} for k, v in setup.extra_files.items()},
        "torch": torch.__version__,
    }
    doc = report.build_report(dataset, res.metrics, setup.protocol, settings, res.num_samples, res.seconds)
    printer(report.format_table(dataset, res.metrics))
    printer(f"{res.num_samples} samples in {res.seconds:.1f} s: {res.samples_per_s:.1f} samples/s")
    if out_dir is not None:
        path = report.write_report(out_dir, doc, res.samples if save_samples else None)
        printer(f"report: {path}")
        doc = json.loads(path.read_text())
    return doc
