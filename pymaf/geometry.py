"""Pure, batched rotation / camera / alignment math (torch; float32 and float64; dtype and device follow the inputs).

Camera convention (spec §1.8): OpenCV pinhole, x right, y down, z forward. A crop camera ``cam = (s, tx, ty)``
means the mesh translation ``(tx, ty, 2 f / (224 s + 1e-9))`` with f = 5000 and principal point at the 224² crop
centre; its normalised projection is the pixel offset from the crop centre divided by 112.
"""
from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
Scalar = Union[float, Tensor]

__all__ = [
    "rot6d_to_rotmat", "rotmat_to_rot6d", "axis_angle_to_rotmat", "rotmat_to_axis_angle",
    "cam_to_translation", "project_crop", "perspective_projection", "crop_cam_to_full_translation",
    "crop_cam_to_orig_cam", "estimate_translation", "procrustes_params", "procrustes_align",
]


def _check_last(x: Tensor, shape: tuple[int, ...], name: str, func: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"geometry.{func}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[x.dim() - len(shape):]) != shape or x.dim() < len(shape):
        raise ValueError(f"geometry.{func}: {name} must have shape [..., {', '.join(map(str, shape))}], "
                         f"got {tuple(x.shape)}")


def _like(value: Scalar, ref: Tensor) -> Tensor:
    """``value`` (float or tensor) as a tensor with ``ref``'s dtype and device."""
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)


# ----------------------------------------------------------------------------------------------- rotations
def rot6d_to_rotmat(x: Tensor) -> Tensor:
    """6D rotation [..., 6] -> rotation matrix [..., 3, 3] (spec §1.9, §10.23).

    The 6 numbers are a 3×2 matrix in row-major order ``[r00, r01, r10, r11, r20, r21]`` (interleaved, *not*
    [col0; col1]): a1 = x[0::2], a2 = x[1::2]. Gram–Schmidt gives b1, b2, b3 = b1 × b2, stacked as columns.
    """
    _check_last(x, (6,), "x", "rot6d_to_rotmat")
    a = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = a[..., 0], a[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(R: Tensor) -> Tensor:
    """Rotation matrix [..., 3, 3] -> 6D [..., 6]: the first two columns, flattened row-major (spec §1.9)."""
    _check_last(R, (3, 3), "R", "rotmat_to_rot6d")
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def _skew(v: Tensor) -> Tensor:
    """[..., 3] -> cross-product matrix [..., 3, 3] with skew(v) @ w = v × w."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    return torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*v.shape, 3)


def axis_angle_to_rotmat(aa: Tensor) -> Tensor:
    """Axis-angle (rotation vector, radians) [..., 3] -> rotation matrix [..., 3, 3].

    Rodrigues with K = skew(aa) (unnormalised): R = I + A K + B K², A = sin θ/θ, B = (1 − cos θ)/θ², θ = |aa|.
    A and B are evaluated as functions of θ² with a Taylor branch for small θ, so value and gradient are
    finite at aa = 0 (the gradient there is skew(daa)).
    """
    _check_last(aa, (3,), "aa", "axis_angle_to_rotmat")
    theta2 = (aa * aa).sum(-1)
    small = theta2 < (1e-6 if aa.dtype == torch.float64 else 1e-4)
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 * theta2 / 720,
                    (1 - torch.cos(theta)) / torch.where(small, torch.ones_like(theta2), theta2))
    K = _skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(K)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def _sqrt_pos(x: Tensor) -> Tensor:
    """sqrt(max(x, 0)) with a zero (not infinite) gradient where x <= 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def _rotmat_to_quat(R: Tensor) -> Tensor:
    """Rotation matrix [..., 3, 3] -> unit quaternion (w, x, y, z) [..., 4] by Shepperd's method.

    Four candidate formulas, each divided by one of 4|w|, 4|x|, 4|y|, 4|z|; the candidate with the largest
    divisor (>= 2 for a rotation) is kept, which makes the result stable for every angle, including π.
    """
    m = R.reshape(*R.shape[:-2], 9)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    q_abs = _sqrt_pos(torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                                   1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1))  # = 2|q_i|
    cands = torch.stack((
        torch.stack((q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), dim=-1),
        torch.stack((m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20), dim=-1),
        torch.stack((m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21), dim=-1),
        torch.stack((m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2), dim=-1),
    ), dim=-2) / (2 * q_abs.clamp_min(0.1))[..., None]                                    # [..., 4, 4]
    idx = q_abs.argmax(dim=-1)[..., None, None].expand(*q_abs.shape[:-1], 1, 4)
    q = cands.gather(-2, idx).squeeze(-2)
    return F.normalize(q, dim=-1)


def rotmat_to_axis_angle(R: Tensor) -> Tensor:
    """Rotation matrix [..., 3, 3] -> axis-angle [..., 3] with angle in [0, π].

    Goes through a Shepperd quaternion (stable near π) with w >= 0, then θ = 2·atan2(|v|, w) and
    aa = v·θ/|v| (Taylor branch 2/w·(1 − |v|²/(3w²)) for small |v|, stable and differentiable near 0).
    At exactly π the sign of the axis is arbitrary (both are the same rotation).
    """
    _check_last(R, (3, 3), "R", "rotmat_to_axis_angle")
    q = _rotmat_to_quat(R)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    n2 = (v * v).sum(-1)
    small = n2 < (1e-10 if R.dtype == torch.float64 else 1e-6)
    n = torch.sqrt(torch.where(small, torch.ones_like(n2), n2))
    # torch.where differentiates both branches: the Taylor branch must stay finite where it is not taken
    # (w -> 0 at θ = π, which is the mean global orientation), else 0·inf turns the gradient into NaN
    w_small = torch.where(small, w, torch.ones_like(w))
    factor = torch.where(small, 2 / w_small - (2 / 3) * n2 / w_small ** 3, 2 * torch.atan2(n, w) / n)
    return v * factor[..., None]


# ----------------------------------------------------------------------------------------------- cameras
def cam_to_translation(cam: Tensor, focal_length: float = 5000., crop_size: float = 224.) -> Tensor:
    """Crop camera [B, 3] (s, tx, ty) -> translation [B, 3] = (tx, ty, 2f/(crop·s + 1e-9)) (spec §1.8)."""
    _check_last(cam, (3,), "cam", "cam_to_translation")
    s, tx, ty = cam.unbind(-1)
    return torch.stack((tx, ty, 2 * focal_length / (crop_size * s + 1e-9)), dim=-1)


def perspective_projection(points: Tensor, translation: Tensor, focal_length: Scalar,
                           camera_center: Tensor | None = None, rotation: Tensor | None = None) -> Tensor:
    """Pinhole projection to pixels: P = R·X + t; u = f_x P_x/P_z + c_x, v = f_y P_y/P_z + c_y.

    points [B, N, 3]; translation [B, 3]; focal_length float, [B] or [B, 2] (f_x, f_y); camera_center [B, 2]
    or [2] (None = 0); rotation [B, 3, 3] (None = identity; applied before the translation as in §1.8).
    Returns [B, N, 2] pixels.
    """
    _check_last(points, (3,), "points", "perspective_projection")
    _check_last(translation, (3,), "translation", "perspective_projection")
    if rotation is not None:
        points = points @ rotation.transpose(-1, -2)
    p = points + translation[..., None, :]
    if isinstance(focal_length, (int, float)):
        f: Scalar = float(focal_length)               # a Python float: no host-to-device copy per call
    else:
        f = _like(focal_length, points)
        f = f[..., None, None] if f.dim() == 1 else (f[..., None, :] if f.dim() == 2 else f)
    uv = f * p[..., :2] / p[..., 2:3]
    if camera_center is not None:
        uv = uv + _like(camera_center, points)[..., None, :]
    return uv


def project_crop(points: Tensor, cam: Tensor, focal_length: float = 5000., crop_size: float = 224.) -> Tensor:
    """The official ``projection`` (spec §1.8): points [B, N, 3], crop cam [B, 3] -> normalised crop coords
    [B, N, 2] in [-1, 1] (pixel offset from the crop centre divided by crop_size/2; translation added before
    scaling). Crop pixels are ``crop_size/2 · (uv + 1)``."""
    t = cam_to_translation(cam, focal_length, crop_size)
    return perspective_projection(points, t, focal_length) / (crop_size / 2.)


def crop_cam_to_full_translation(cam: Tensor, center: Tensor, box_size: Tensor, image_size: Tensor,
                                 focal_length: Scalar) -> Tensor:
    """Crop camera [B, 3] -> mesh translation [B, 3] in the full image's pinhole camera (spec §6 step 5).

    center [B, 2] (cx, cy) and box_size [B] (side b) in full-image pixels describe the square that was resized
    to the crop; image_size [B, 2] is (h, w); the full camera has focal ``focal_length`` (float or [B]) and
    principal point (w/2, h/2).

    Derivation. The crop camera has focal f_c, crop side r (224), depth tz_c = 2 f_c/(r s), and puts a point X
    at crop pixel x_c = r/2 + f_c (X_x + tx)/(X_z + tz_c). The crop pixel maps back to the image by
    x = cx + (x_c − r/2)·b/r, so  x = cx + (f_c b/r)(X_x + tx)/(X_z + tz_c).  The full camera gives
    x = w/2 + f (X_x + T_x)/(X_z + T_z). Matching the magnification on the plane X_z = 0 (the crop camera is
    near-orthographic: tz_c ≈ 50 m) gives f/T_z = f_c b/(r tz_c), i.e. **T_z = 2f/(b s)** (independent of f_c
    and r), and matching the offset, w/2 + f T_x/T_z = cx + f tx/T_z, i.e. **T_x = tx + 2(cx − w/2)/(b s)**,
    likewise T_y = ty + 2(cy − h/2)/(b s). The mapping is exact for points with X_z = 0; elsewhere the
    difference is the real camera's perspective, which is the point of using it. With f = 5000 this equals
    the translation the official demo renders from ``orig_cam`` (spec §6 step 5).
    """
    _check_last(cam, (3,), "cam", "crop_cam_to_full_translation")
    s, tx, ty = cam.unbind(-1)
    center = _like(center, cam)
    b = _like(box_size, cam)
    hw = _like(image_size, cam).expand(*cam.shape[:-1], 2)
    bs = b * s + 1e-9
    tz = 2 * _like(focal_length, cam) / bs
    return torch.stack((tx + 2 * (center[..., 0] - hw[..., 1] / 2) / bs,
                        ty + 2 * (center[..., 1] - hw[..., 0] / 2) / bs, tz.expand_as(s)), dim=-1)


def crop_cam_to_orig_cam(cam: Tensor, center: Tensor, box_size: Tensor, image_size: Tensor) -> Tensor:
    """The official demo's ``orig_cam`` [B, 4] = (sx, sy, tx', ty') (spec §6 step 5).

    sx = s·b/W, sy = s·b/H, tx' = (cx − W/2)/(W/2)/sx + tx, ty' = (cy − H/2)/(H/2)/sy + ty, with image_size
    [B, 2] = (H, W), center [B, 2] and box side b [B] in pixels. Rendering it with f at full resolution uses
    translation (tx', ty', 2f/(H·sy)) = ``crop_cam_to_full_translation(..., f)``.
    """
    _check_last(cam, (3,), "cam", "crop_cam_to_orig_cam")
    s, tx, ty = cam.unbind(-1)
    center = _like(center, cam)
    hw = _like(image_size, cam).expand(*cam.shape[:-1], 2)
    h, w = hw[..., 0], hw[..., 1]
    b = _like(box_size, cam)
    sx, sy = s * b / w, s * b / h
    return torch.stack((sx, sy, (center[..., 0] - w / 2) / (w / 2) / sx + tx,
                        (center[..., 1] - h / 2) / (h / 2) / sy + ty), dim=-1)


def estimate_translation(joints3d: Tensor, keypoints2d: Tensor, focal_length: float = 5000.,
                         crop_size: float = 224., fallback_scale: float = 0.9) -> Tensor:
    """Camera translation [B, 3] that best projects joints3d [B, N, 3] onto keypoints2d [B, N, 3] (crop pixels
    u, v and confidence), spec §3.5.

    Weighted linear least squares, weights √conf per equation, principal point (crop/2, crop/2):
        f·tx − (u − c)·tz = (u − c)·Z − f·X,     f·ty − (v − c)·tz = (v − c)·Z − f·Y,
    solved through the 3×3 normal equations for the whole batch at once (computed in float64, returned in
    the input dtype). The caller picks the joints (the trainer passes the 24 GT joints, indices 25:49).
    Samples with fewer than two joints of positive confidence are under-determined: they get the
    translation of the crop camera (fallback_scale, 0, 0), i.e. (0, 0, 2f/(crop·fallback_scale)).
    """
    _check_last(joints3d, (3,), "joints3d", "estimate_translation")
    _check_last(keypoints2d, (3,), "keypoints2d", "estimate_translation")
    if joints3d.dim() != 3 or joints3d.shape[:-1] != keypoints2d.shape[:-1]:
        raise ValueError(f"geometry.estimate_translation: joints3d {tuple(joints3d.shape)} and keypoints2d "
                         f"{tuple(keypoints2d.shape)} must agree on [B, N]")
    X = joints3d.to(torch.float64)
    kp = keypoints2d.to(torch.float64)
    conf = kp[..., 2].clamp_min(0)
    d = kp[..., :2] - crop_size / 2.                                      # [B, N, 2] offsets from centre
    f = float(focal_length)
    zero, one = torch.zeros_like(conf), torch.ones_like(conf)
    # rows of the design matrix for the x and y equations: [B, N, 2, 3]
    Q = torch.stack((torch.stack((f * one, zero, -d[..., 0]), -1),
                     torch.stack((zero, f * one, -d[..., 1]), -1)), dim=-2)
    c = d * X[..., 2:3] - f * X[..., :2]                                  # [B, N, 2]
    w = conf[..., None]                                                   # (√conf)² per equation
    A = torch.einsum("bnki,bnk,bnkj->bij", Q, w.expand_as(c), Q)
    rhs = torch.einsum("bnki,bnk,bnk->bi", Q, w.expand_as(c), c)
    ok = (conf > 0).sum(-1) >= 2
    eye = torch.eye(3, dtype=A.dtype, device=A.device)
    A = torch.where(ok[:, None, None], A, eye)
    sol, info = torch.linalg.solve_ex(A, rhs)
    ok = ok & (info == 0) & torch.isfinite(sol).all(-1)
    fallback = torch.zeros(3, dtype=sol.dtype, device=sol.device)
    fallback[2] = 2 * f / (crop_size * fallback_scale)    # a fill on the device, no host-to-device copy
    return torch.where(ok[:, None], sol, fallback).to(joints3d.dtype)


# ----------------------------------------------------------------------------------------------- Procrustes
def procrustes_params(S1: Tensor, S2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Similarity transform that best maps S1 [B, N, 3] onto S2 [B, N, 3] (least squares), spec §5.1.

    Centre both; K = X1·X2ᵀ (3×3); K = U S Vᵀ; R = V·diag(1, 1, sign det(U Vᵀ))·Uᵀ (no reflection);
    scale = tr(R K)/‖X1‖²; t = μ2 − scale·R·μ1. Returns (scale [B], R [B, 3, 3], t [B, 3]) such that
    S1_hat = scale·S1·Rᵀ + t.
    """
    _check_last(S1, (3,), "S1", "procrustes_params")
    if S1.shape != S2.shape or S1.dim() != 3:
        raise ValueError(f"geometry.procrustes_params: S1 and S2 must both be [B, N, 3], got "
                         f"{tuple(S1.shape)} and {tuple(S2.shape)}")
    mu1, mu2 = S1.mean(1, keepdim=True), S2.mean(1, keepdim=True)
    X1, X2 = S1 - mu1, S2 - mu2
    K = X1.transpose(1, 2) @ X2                                           # [B, 3, 3] = X1ᵀ X2 (points as rows)
    U, _, Vh = torch.linalg.svd(K)
    V = Vh.transpose(1, 2)
    sign = torch.where(torch.linalg.det(U @ Vh) < 0, -1.0, 1.0).to(S1.dtype)
    Z = torch.ones_like(K[..., 0])
    Z = torch.cat((Z[:, :2], sign[:, None]), dim=1)
    R = (V * Z[:, None, :]) @ U.transpose(1, 2)
    var1 = (X1 * X1).sum((1, 2)).clamp_min(torch.finfo(S1.dtype).tiny)
    scale = (R * K.transpose(1, 2)).sum((1, 2)) / var1                    # tr(R K)
    t = mu2[:, 0] - scale[:, None] * (R @ mu1[:, 0, :, None])[..., 0]
    return scale, R, t


def procrustes_align(S1: Tensor, S2: Tensor) -> Tensor:
    """S1 [B, N, 3] after the best similarity transform onto S2 [B, N, 3] (spec §5.1) -> [B, N, 3]."""
    scale, R, t = procrustes_params(S1, S2)
    return scale[:, None, None] * (S1 @ R.transpose(1, 2)) + t[:, None, :]
