"""Evaluation metrics (spec §5.1, §5.3; MPI-INF-3DHP PCK/AUC). Pure functions.

3D metrics take torch tensors or NumPy arrays and return the same kind ([B] per sample; the caller averages
over the dataset). Distances come out in the unit of the inputs: the evaluation code passes metres and
multiplies by 1000 for the millimetres of the report. Joint selection and root-centring (pelvis of the H36M
regressor, §5.1) are the caller's job.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

from pymaf.geometry import procrustes_align

Array = Union[np.ndarray, torch.Tensor]

__all__ = ["mpjpe", "pa_mpjpe", "pve", "pck", "auc", "confusion_matrix", "segmentation_scores"]


def _pair(pred: Array, gt: Array, func: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both inputs as torch tensors of a common float dtype; also whether to return NumPy."""
    as_numpy = isinstance(pred, np.ndarray)
    p, g = torch.as_tensor(pred), torch.as_tensor(gt)
    if p.shape != g.shape or p.dim() != 3 or p.shape[-1] != 3:
        raise ValueError(f"metrics.{func}: pred and gt must both be [B, J, 3], got {tuple(p.shape)} and "
                         f"{tuple(g.shape)}")
    dtype = torch.promote_types(p.dtype, g.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    return p.to(dtype), g.to(device=p.device, dtype=dtype), as_numpy


def _out(x: torch.Tensor, as_numpy: bool) -> Array:
    return x.cpu().numpy() if as_numpy else x


def _dist(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(p - g, dim=-1)                         # [B, J]


def mpjpe(pred: Array, gt: Array) -> Array:
    """Mean per-joint position error [B]: mean over joints of ‖pred − gt‖ (pred, gt [B, J, 3]), §5.1."""
    p, g, np_out = _pair(pred, gt, "mpjpe")
    return _out(_dist(p, g).mean(-1), np_out)


def pa_mpjpe(pred: Array, gt: Array) -> Array:
    """MPJPE [B] after a per-sample similarity Procrustes of pred onto gt ("reconstruction error", §5.1)."""
    p, g, np_out = _pair(pred, gt, "pa_mpjpe")
    return _out(_dist(procrustes_align(p, g), g).mean(-1), np_out)


def pve(pred_v: Array, gt_v: Array) -> Array:
    """Per-vertex error [B]: mean ‖pred_v − gt_v‖ over vertices [B, V, 3], no alignment or centring (§5.1)."""
    p, g, np_out = _pair(pred_v, gt_v, "pve")
    return _out(_dist(p, g).mean(-1), np_out)


def pck(pred: Array, gt: Array, threshold: float = 0.15) -> Array:
    """3D PCK [B]: fraction of joints with ‖pred − gt‖ < threshold (strict, as MPI-INF-3DHP's
    ``mpii_compute_3d_pck.m``). Default 0.15 = 150 mm for inputs in metres; pass root-centred joints (the
    official table uses the 14 joints of its groups: head top, neck, shoulders, elbows, wrists, hips, knees,
    ankles)."""
    p, g, np_out = _pair(pred, gt, "pck")
    return _out((_dist(p, g) < threshold).to(p.dtype).mean(-1), np_out)


def auc(pred: Array, gt: Array, max_threshold: float = 0.15, steps: int = 31) -> Array:
    """Area under the PCK curve [B], MPI-INF-3DHP style: the mean of PCK over ``steps`` equally spaced
    thresholds 0..max_threshold (default 0, 5, ..., 150 mm for metre inputs). In [0, 1]; ×100 for percent."""
    p, g, np_out = _pair(pred, gt, "auc")
    d = _dist(p, g)                                                        # [B, J]
    th = torch.linspace(0, max_threshold, steps, dtype=torch.float64).to(device=d.device, dtype=d.dtype)
    return _out((d[..., None] < th).to(d.dtype).mean((-2, -1)), np_out)


def confusion_matrix(pred: Array, gt: Array, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """Confusion counts [C, C] int64, rows = ground truth, columns = prediction (§5.3).

    pred, gt: integer label maps of any equal shape (flattened). Pixels whose GT is ``ignore_index`` are
    dropped. For the official *parts accuracy* (255 → 0 in both maps), map 255 to 0 first and pass
    ``ignore_index=None``. Confusions of several images add up.
    """
    p = np.asarray(pred.cpu() if isinstance(pred, torch.Tensor) else pred).reshape(-1).astype(np.int64)
    g = np.asarray(gt.cpu() if isinstance(gt, torch.Tensor) else gt).reshape(-1).astype(np.int64)
    if p.shape != g.shape:
        raise ValueError(f"metrics.confusion_matrix: pred has {p.size} labels, gt has {g.size}")
    if ignore_index is not None:
        keep = g != ignore_index
        p, g = p[keep], g[keep]
    for name, v in (("pred", p), ("gt", g)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(f"metrics.confusion_matrix: {name} labels must be in [0, {num_classes}) "
                             f"(ignore_index={ignore_index}), found {v.min()}..{v.max()}")
    return np.bincount(g * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def segmentation_scores(conf: Array) -> dict:
    """Scores of a confusion matrix [C, C] (rows GT, columns prediction), §5.3.

    Returns dict(accuracy: float = trace/total, f1: float64 ndarray [C] with F1_c = 2TP/(2TP + FP + FN)
    (NaN for a class absent from both GT and prediction), mean_f1: float = mean of the defined F1_c).
    """
    c = np.asarray(conf.cpu() if isinstance(conf, torch.Tensor) else conf, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"metrics.segmentation_scores: conf must be [C, C], got {c.shape}")
    tp = np.diag(c)
    fp = c.sum(0) - tp
    fn = c.sum(1) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.full_like(tp, np.nan), where=denom > 0)
    total = c.sum()
    return {
        "accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "f1": f1,
        "mean_f1": float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan"),
    }
