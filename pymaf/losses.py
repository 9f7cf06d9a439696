"""Training losses of PyMAF (paper Eq. 2 and 4; spec §3.1-3.3). Pure functions on tensors.

Conventions (spec §3.2): the per-iteration losses are computed for ``smpl_out[1..N]`` (output 0 holds the mean
parameters and is skipped) and summed with equal weight. Defaults keep the official behaviour; the two switches
of :class:`pymaf.config.LossConfig` ``fix_kp2d_mean`` (§10.6) and ``fix_uv_normalisation`` (§10.5) turn on the
fixed versions.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pymaf.geometry import axis_angle_to_rotmat
from pymaf.render.iuv import DENSEPOSE_PARTS  # the 24 fine DensePose parts (0 = background)

# §3.3: fine DensePose parts (1..24) merged into 14 coarse parts (+ background 0)
INDEX2MASK: tuple[tuple[int, ...], ...] = ((0,), (1, 2), (3,), (4,), (5,), (6,), (7, 9), (8, 10), (11, 13), (12, 14),
                                           (15, 17), (16, 18), (19, 21), (20, 22), (23, 24))


def _fine_to_coarse(device: torch.device) -> Tensor:
    """[25] long lookup table: fine part index -> coarse (Ann) index (§3.3 Index2mask), built on ``device`` from
    arithmetic (no host-to-device copy): 0 -> 0, 1..2 -> 1, 3..6 -> 2..5, then the pairs (7,9) (8,10) ... of
    INDEX2MASK -> 6..13, 23..24 -> 14. ``tests/test_losses.py`` checks it against INDEX2MASK."""
    f = torch.arange(DENSEPOSE_PARTS + 1, device=device)
    low = (f - 1).clamp_min(0) + (f == 1).long()                                  # 0, 1, 1, 2, 3, 4, 5
    g = f - 7                                                                     # 7..22 -> 0..15
    mid = 6 + 2 * torch.div(g, 4, rounding_mode="floor") + g % 2
    return torch.where(f <= 6, low, torch.where(f <= 22, mid, torch.full_like(f, len(INDEX2MASK) - 1)))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` [B, ...] over the samples where ``mask`` [B] (bool) is true: Σ_selected x / (B'·numel per
    sample), 0 (with a zero gradient) when no sample is selected. The same value as ``x[mask].mean()`` without
    a host sync (no boolean indexing, no ``mask.any()``): a mask-weighted sum over a clamped count."""
    per_sample = x[0].numel() if x.shape[0] else 1
    count = mask.bool().sum().to(x.dtype).clamp_min(1.0) * float(per_sample)
    return _select(x, mask).sum() / count


def _select(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` [B, ...] with the unselected samples set to 0, so that ground truth of samples the mask leaves out
    (zeros, or anything) never reaches a value or a gradient."""
    m = mask.bool().reshape(-1, *([1] * (x.dim() - 1)))
    return torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))


def keypoint_2d_loss(pred: Tensor, gt: Tensor, openpose_weight: float = 0.0, gt_weight: float = 1.0,
                     fix_mean: bool = False) -> Tensor:
    """2D keypoint loss (§3.2), unweighted by ``kp_2d_w``.

    pred [B,49,2] normalised crop coords ([-1,1], the projection /112); gt [B,49,3] (x, y, conf).
    conf[:, :25] *= openpose_weight, conf[:, 25:] *= gt_weight. Official: mean over B·49·2 of conf·(pred-gt)²
    (zero-weighted joints included, §10.6). ``fix_mean``: divide by 2·Σconf instead (weighted mean).
    """
    conf = gt[..., 2:].clone()
    conf[:, :25] *= float(openpose_weight)
    conf[:, 25:] *= float(gt_weight)
    err = conf * (pred.float() - gt[..., :2].float()) ** 2
    if fix_mean:
        return err.sum() / (2 * conf.sum()).clamp_min(1e-8)
    return err.mean()


def keypoint_3d_loss(pred: Tensor, gt: Tensor, has_pose_3d: Tensor) -> Tensor:
    """3D keypoint loss (§3.2), unweighted. pred [B,24,3] (J24 = joints49[:, 25:]), gt [B,24,4] (xyz + conf),
    has_pose_3d [B] bool. Both centred at the mid-hip (J24 joints 2 and 3); mean over B'·24·3 of conf·(pred-gt)².
    Returns 0 when no sample has 3D pose."""
    sel = has_pose_3d.bool()
    p, g = pred.float(), _select(gt.float(), sel)
    conf, g = g[..., 3:], g[..., :3]
    g = g - 0.5 * (g[:, 2:3] + g[:, 3:4])
    p = p - 0.5 * (p[:, 2:3] + p[:, 3:4])
    return masked_mean(conf * (p - g) ** 2, sel)


def smpl_losses(pred_rotmat: Tensor, pred_betas: Tensor, gt_pose: Tensor, gt_betas: Tensor,
                valid: Tensor) -> tuple[Tensor, Tensor]:
    """SMPL parameter losses (§3.2), unweighted: (pose, betas).

    pred_rotmat [B,24,3,3], pred_betas [B,10], gt_pose [B,72] axis-angle, gt_betas [B,10], valid [B] bool.
    pose = MSE(pred_rotmat, Rodrigues(gt_pose)) over B'·24·9; betas = MSE over B'·10; both 0 if B' = 0.
    """
    sel = valid.bool()
    gt_rot = axis_angle_to_rotmat(_select(gt_pose.float(), sel).reshape(-1, 24, 3))
    return (masked_mean((pred_rotmat.float() - gt_rot) ** 2, sel),
            masked_mean((pred_betas.float() - _select(gt_betas.float(), sel)) ** 2, sel))


def vertex_loss(pred_verts: Tensor, gt_verts: Tensor, valid: Tensor) -> Tensor:
    """Vertex L1 loss (§3.2), unweighted: mean over B'·V·3 of |pred − gt| for the ``valid`` samples (those with
    GT SMPL; the GT mesh comes from the GT parameters through the neutral SMPL, as the official trainer does).
    pred_verts, gt_verts [B,V,3], valid [B] bool. 0 when no sample is valid. A mask-weighted mean: no host sync."""
    return masked_mean((pred_verts.float() - _select(gt_verts.float(), valid)).abs(), valid)


def camera_loss(pred_cam: Tensor) -> Tensor:
    """Camera regulariser mean_B(exp(-10·s)²) (§3.2); pred_cam [B,3] with s = pred_cam[:, 0]."""
    return (torch.exp(-10.0 * pred_cam[:, 0].float()) ** 2).mean()


def _one_hot(index: Tensor) -> Tensor:
    """[B,H,W] long 0..24 -> [B,25,H,W] bool. ``F.one_hot`` checks min/max with host syncs on the CPU."""
    classes = torch.arange(DENSEPOSE_PARTS + 1, device=index.device)
    return index[:, None] == classes[None, :, None, None]


def iuv_img2map(iuv: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """GT IUV image [B,3,H,W] (I/24, U, V) -> (index [B,H,W] long 0..24, ann [B,H,W] long 0..14,
    Umap [B,25,H,W], Vmap [B,25,H,W]) (§3.3). Umap/Vmap = one-hot(index) × U or V (background channel 0 gets
    U/V of the background pixel, which is 0 in a rendered GT)."""
    index = torch.round(iuv[:, 0].float() * DENSEPOSE_PARTS).long().clamp(0, DENSEPOSE_PARTS)
    onehot = _one_hot(index).float()                                             # [B,25,H,W]
    ann = _fine_to_coarse(iuv.device)[index]
    return index, ann, onehot * iuv[:, 1:2].float(), onehot * iuv[:, 2:3].float()


def iuv_losses(dp_out: Mapping[str, Tensor], iuv_gt: Tensor, valid: Tensor,
               fix_uv_normalisation: bool = False) -> dict[str, Tensor]:
    """Auxiliary dense-correspondence losses (§3.3), unweighted: dict(index, ann, u, v).

    dp_out: predict_uv_index [B,25,h,w], predict_ann_index [B,15,h,w], predict_u / predict_v [B,25,h,w];
    iuv_gt [B,3,H,W] (nearest-resized to h,w if different); valid [B] bool (has_smpl).
    index/ann: cross-entropy averaged over all B'·h·w pixels. u/v official (§10.5): Σ over the GT-class channel
    at every pixel (background channel 0 included) of smooth-L1(sum), divided by the FULL batch size B.
    ``fix_uv_normalisation``: foreground pixels only, divided by the valid count B'. All 0 if B' = 0.
    """
    pu = dp_out["predict_u"]
    sel = valid.bool()
    B = pu.shape[0]
    h, w = pu.shape[-2:]
    gt = iuv_gt
    if gt.shape[-2:] != (h, w):
        gt = F.interpolate(gt, size=(h, w), mode="nearest")
    index, ann, umap, vmap = iuv_img2map(_select(gt.float(), sel))
    out = {"index": masked_mean(F.cross_entropy(dp_out["predict_uv_index"].float(), index, reduction="none"), sel),
           "ann": masked_mean(F.cross_entropy(dp_out["predict_ann_index"].float(), ann, reduction="none"), sel)}
    onehot = _one_hot(index)                                                  # the "Imap > 0" mask of §3.3
    if fix_uv_normalisation:
        onehot = onehot & (index > 0)[:, None]
        denom: Tensor | float = sel.sum().float().clamp_min(1.0)
    else:
        denom = float(B)
    onehot = onehot & sel[:, None, None, None]
    for key, pred, target in (("u", dp_out["predict_u"], umap), ("v", dp_out["predict_v"], vmap)):
        d = F.smooth_l1_loss(pred.float(), target, reduction="none")
        out[key] = torch.where(onehot, d, torch.zeros((), dtype=d.dtype, device=d.device)).sum() / denom
    return out


def compute_losses(outputs: Mapping[str, Any], batch: Mapping[str, Tensor], iuv_gt: Tensor | None,
                   cfg: Any) -> tuple[Tensor, dict[str, Tensor]]:
    """All training losses (§3.2-3.3) -> (total scalar, dict name -> weighted scalar tensor; names as §3.8).

    outputs: the model's train-mode dict ('smpl_out': list of N+1 dicts with kp_2d [B,49,2], kp_3d [B,49,3],
    rotmat [B,24,3,3], pred_shape [B,10] (or theta [B,85]), pred_cam [B,3]; 'dp_out': list of IUV dicts).
    batch: keypoints [B,49,3], pose_3d [B,24,4], has_pose_3d [B], pose [B,72], betas [B,10], has_smpl [B]
    (the SMPL losses' mask; SPIN's final fits, when used, are already in pose/betas/has_smpl, pymaf.data.fits),
    and with ``cfg.vert_w > 0`` verts [B,6890,3] (GT mesh of the GT parameters). iuv_gt [B,3,56,56] or None
    (no IUV losses). cfg: a LossConfig.
    """
    valid = batch["has_smpl"].bool()
    if cfg.vert_w > 0 and "verts" not in batch:
        raise ValueError("compute_losses: loss.vert_w > 0 needs the GT vertices batch['verts'] [B,6890,3] "
                         "(the trainer adds them from the GT SMPL parameters)")
    losses: dict[str, Tensor] = {}
    smpl_out: Sequence[Mapping[str, Tensor]] = outputs["smpl_out"]
    for i in range(1, len(smpl_out)):
        o = smpl_out[i]
        betas = o["pred_shape"] if "pred_shape" in o else o["theta"][:, 3:13]
        cam = o["pred_cam"] if "pred_cam" in o else o["theta"][:, :3]
        l_pose, l_betas = smpl_losses(o["rotmat"], betas, batch["pose"], batch["betas"], valid)
        losses[f"loss_regr_pose_{i}"] = cfg.pose_w * l_pose
        losses[f"loss_regr_betas_{i}"] = cfg.shape_w * l_betas
        losses[f"loss_keypoints_{i}"] = cfg.kp_2d_w * keypoint_2d_loss(
            o["kp_2d"], batch["keypoints"], cfg.openpose_weight, cfg.gt_weight, cfg.fix_kp2d_mean)
        losses[f"loss_keypoints_3d_{i}"] = cfg.kp_3d_w * keypoint_3d_loss(
            o["kp_3d"][:, 25:], batch["pose_3d"], batch["has_pose_3d"])
        losses[f"loss_cam_{i}"] = cfg.cam_w * camera_loss(cam)
        if cfg.vert_w > 0:
            losses[f"loss_verts_{i}"] = cfg.vert_w * vertex_loss(o["verts"], batch["verts"], valid)
    dp_out = outputs.get("dp_out") or []
    if iuv_gt is not None and len(dp_out) > 0:
        uv = iuv_losses(dp_out[-1], iuv_gt, valid, cfg.fix_uv_normalisation)
        losses["loss_U-1"] = cfg.uv_w * uv["u"]
        losses["loss_V-1"] = cfg.uv_w * uv["v"]
        losses["loss_IndexUV-1"] = cfg.index_w * uv["index"]
        losses["loss_segAnn-1"] = cfg.part_w * uv["ann"]
    total = torch.stack([v.reshape(()) for v in losses.values()]).sum()
    losses["loss"] = total
    return total, losses


__all__ = ["INDEX2MASK", "masked_mean", "keypoint_2d_loss", "keypoint_3d_loss", "smpl_losses", "vertex_loss",
           "camera_loss",
           "iuv_img2map", "iuv_losses", "compute_losses"]
