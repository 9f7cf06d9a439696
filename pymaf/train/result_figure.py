"""The picture a training run ends with (``logs/quickstart/result.png``): validation crops with the ground-truth
mesh and the predicted meshes at the start (the run's initial weights) and at the end of training, above the
validation curve (MPJPE / PA-MPJPE of the last iteration, and the mean pose's, as logged by the trainer).

Everything is drawn with the project's own rasterizer and OpenCV (no display, no plotting library).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from pymaf.config import Config

TILE = 224
CURVE_H = 300
COLORS = {"mpjpe": (31, 119, 180), "pa_mpjpe": (255, 127, 14)}   # RGB


def initial_model(cfg: Config, data_root: Path | str) -> nn.Module:
    """The weights the trainer starts from: the same seeding, then the same constructor (tested equal)."""
    from pymaf.api import load_model
    from pymaf.train.state import seed_everything
    seed_everything(cfg.train.seed)
    return load_model(cfg.train.pretrained_checkpoint or None, Path(data_root), "cpu", cfg)


def validation_curve(tb_dir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """Scalars ``eval_error/<name>`` and ``eval_error_mean_pose/<name>`` of a run's TensorBoard folder:
    name -> [(step, value), ...] (mean-pose curves under '<name>_mean_pose')."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in acc.Tags().get("scalars", []):
        for prefix, suffix in (("eval_error/", ""), ("eval_error_mean_pose/", "_mean_pose")):
            if tag.startswith(prefix):
                out[tag[len(prefix):] + suffix] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return out


def _label(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5,
           color: tuple[int, int, int] = (20, 20, 20)) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def draw_curve(curves: Mapping[str, Sequence[tuple[int, float]]], width: int, height: int = CURVE_H) -> np.ndarray:
    """[height, width, 3] uint8 RGB: the validation curves (solid) and the mean pose's (dashed), mm per step."""
    img = np.full((height, width, 3), 255, np.uint8)
    names = [n for n in COLORS if curves.get(n)]
    if not names:
        _label(img, "no validation logged", (20, height // 2))
        return img
    values = [v for n in names for _, v in curves[n]] + [v for n in names for _, v in curves.get(n + "_mean_pose", [])]
    steps = [s for n in names for s, _ in curves[n]]
    lo, hi = 0.0, max(values) * 1.1
    x0, x1, y0, y1 = 60, width - 20, height - 40, 30
    smax = max(max(steps), 1)

    def pt(step: float, value: float) -> tuple[int, int]:
        return (int(x0 + (x1 - x0) * step / smax), int(y0 + (y1 - y0) * (value - lo) / (hi - lo)))

    cv2.line(img, (x0, y0), (x1, y0), (0, 0, 0), 1)
    cv2.line(img, (x0, y0), (x0, y1), (0, 0, 0), 1)
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        _label(img, f"{v:.0f}", (5, pt(0, v)[1] + 4), 0.4)
        s = smax * k / 4
        _label(img, f"{s:.0f}", (pt(s, lo)[0] - 10, y0 + 18), 0.4)
    _label(img, "step", (x1 - 30, y0 + 34), 0.4)
    for i, n in enumerate(names):
        c = COLORS[n]
        pts = np.array([pt(s, v) for s, v in curves[n]], np.int32)
        cv2.polylines(img, [pts], False, c, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, tuple(int(a) for a in p), 3, c, -1)
        mean = curves.get(n + "_mean_pose")
        if mean:
            y = pt(0, mean[-1][1])[1]
            for xa in range(x0, x1, 12):
                cv2.line(img, (xa, y), (min(xa + 6, x1), y), c, 1)
        _label(img, f"{n} (mm), dashed: mean pose", (x0 + 10 + 300 * i, 18), 0.45, c)
    return img


@torch.no_grad()
def mesh_tiles(model: nn.Module, smpl: nn.Module, batch: Mapping[str, Any]) -> list[np.ndarray]:
    """[224,224,3] uint8 RGB per sample: the model's last-iteration mesh over the input crop (crop camera, §1.8)."""
    from pymaf.data.dataset import denormalize_images
    from pymaf.render.overlay import render_crop_overlays
    last = model.eval()(batch["img"].float())["smpl_out"][-1]
    return render_crop_overlays(denormalize_images(batch["img"]), last["verts"], last["pred_cam"], smpl.faces)


@torch.no_grad()
def gt_tiles(smpl: nn.Module, batch: Mapping[str, Any]) -> list[np.ndarray]:
    """The GT mesh (GT SMPL parameters) over each input crop, with the crop camera fitted to the GT keypoints."""
    from pymaf.data.dataset import denormalize_images
    from pymaf.render.overlay import render_crop_overlays
    from pymaf.train.trainer import gt_camera, gt_smpl
    g = gt_smpl(smpl, batch["pose"], batch["betas"])
    return render_crop_overlays(denormalize_images(batch["img"]), g.vertices,
                                gt_camera(g.joints, batch["keypoints"]), smpl.faces)


def result_figure(cfg: Config, data_root: Path | str, end_checkpoint: Path | str, tb_dir: Path | str,
                  num_samples: int = 3) -> np.ndarray:
    """[H, W, 3] uint8 RGB: rows of (input | GT mesh | start | end) for the first ``num_samples`` validation
    samples, then the validation curve."""
    from pymaf.api import load_model
    from pymaf.body.files import resolve_body_files
    from pymaf.body.smpl import build_smpl
    from pymaf.data.dataset import build_dataset
    from pymaf.data.dataset import denormalize_images
    ds = build_dataset(Path(data_root), cfg.data.eval_dataset, "eval", crop_backend=cfg.data.crop_backend)
    batch = torch.utils.data.default_collate([ds[i] for i in range(min(num_samples, len(ds)))])
    smpl = build_smpl(resolve_body_files(data_root, announce=False)).eval()
    start = initial_model(cfg, data_root)
    end = load_model(checkpoint=str(end_checkpoint), data_root=data_root, device="cpu", announce=False).eval()
    step = int(torch.load(end_checkpoint, map_location="cpu", weights_only=True).get("total_step_count", 0))
    columns = [denormalize_images(batch["img"]), gt_tiles(smpl, batch), mesh_tiles(start, smpl, batch),
               mesh_tiles(end, smpl, batch)]
    rows = [np.concatenate([col[i] for col in columns], axis=1) for i in range(len(columns[0]))]
    head = np.full((28, TILE * 4, 3), 255, np.uint8)
    for k, text in enumerate(("input crop", "ground truth", "start (step 0)", f"end (step {step})")):
        _label(head, text, (8 + TILE * k, 20))
    curve = draw_curve(validation_curve(tb_dir), TILE * 4)
    return np.concatenate([head, *rows, curve], axis=0)


def write_png(image: np.ndarray, path: Path | str, scale: float = 1.0) -> Path:
    """Write an RGB uint8 image as PNG (optionally resized by ``scale``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        from pymaf.errors import write_error
        raise write_error(path, OSError(f"cv2.imwrite could not write {path}"))
    return path
