"""Shaded meshes composited on images (demo, spec §6), with the pure-PyTorch rasterizer.

Camera: OpenCV pinhole (x right, y down, z forward) at the full image resolution, focal length ``f`` and
principal point (default: the image centre (W/2, H/2)); a person's mesh is ``verts + translation`` in that
frame (e.g. from ``geometry.crop_cam_to_full_translation``). Nothing is flipped here: the official pyrender path
rotates the mesh 180° about x to reach OpenGL's frame (spec §6, §1.8), which this OpenCV frame does not need.

Shading: smooth Lambert, one directional light plus ambient, normals turned towards the camera (two-sided),
one base colour per person; the nearest person wins per pixel (one z-buffer for all people).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from pymaf.render.rasterizer import NEAR, project_vertices, rasterize

ArrayLike = Union[np.ndarray, Tensor, Sequence]
# colour of person 0 = the official demo's "purple"; then a fixed palette
PALETTE = ((0.55, 0.4, 0.9), (0.95, 0.6, 0.35), (0.35, 0.8, 0.55), (0.9, 0.45, 0.6), (0.4, 0.7, 0.95),
           (0.85, 0.85, 0.4), (0.6, 0.6, 0.6), (0.5, 0.9, 0.9))
LIGHT_DIR = (-0.3, -0.6, -1.0)  # direction TOWARDS the light, camera frame: up-left of the camera
AMBIENT, DIFFUSE = 0.35, 0.75


def _as_tensor(x: ArrayLike, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=dtype, device=device)


def _people(verts: ArrayLike, translation: ArrayLike, device: torch.device) -> Tensor:
    v = _as_tensor(verts, torch.float32, device)
    t = _as_tensor(translation, torch.float32, device)
    if v.dim() == 2:
        v = v[None]
    t = t.reshape(-1, 3)
    if v.dim() != 3 or v.shape[-1] != 3 or t.shape[0] != v.shape[0]:
        raise ValueError(f"verts must be [N,V,3] with translation [N,3], got {tuple(v.shape)} and {tuple(t.shape)}")
    return v + t[:, None]


def _vertex_normals(v: Tensor, faces: Tensor) -> Tensor:
    """[N,V,3] camera-frame vertices -> [N,V,3] unit area-weighted vertex normals."""
    tri = v[:, faces]  # [N,F,3,3]
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    N, V, _ = v.shape
    corners = (faces.reshape(1, -1) + V * torch.arange(N, device=v.device)[:, None]).reshape(-1)
    # along dim 0 of [N*V,3]: the same sums, ~2x faster than index_add_ along dim 1 of [N,V,3] on the CPU
    vn = torch.zeros(N * V, 3, dtype=v.dtype, device=v.device).index_add_(
        0, corners, fn.repeat_interleave(3, dim=1).reshape(-1, 3))
    return torch.nn.functional.normalize(vn.view(N, V, 3), dim=-1)


class ShadedPatch(NamedTuple):
    """The window of the image that the meshes can cover, shaded: rows top..top+h, columns left..left+w."""

    rgb: Tensor  # [h,w,3] float in [0,1] (0 off the meshes)
    mask: Tensor  # [h,w] bool, True on the meshes
    top: int
    left: int


def _covered_window(verts_px: Tensor, H: int, W: int, near: float = NEAR) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the pixels whose centres lie in the box of the projected vertices in front of the
    camera [n,3], clipped to the H x W image; h = w = 0 when there are none. No face outside it can cover a pixel
    (a face covers pixels in its own vertex box only, and faces with a vertex at z <= near are dropped)."""
    ok = (verts_px[:, 2] > near) & torch.isfinite(verts_px).all(-1)
    if not bool(ok.any()):
        return 0, 0, 0, 0
    v = verts_px[ok, :2]  # the rasterizer's dtype and arithmetic: its face boxes lie inside this one
    lo = torch.ceil(v.min(0).values - 0.5).clamp(0, 1 << 30)
    hi = torch.floor(v.max(0).values - 0.5).clamp(-1, 1 << 30)
    (c_lo, r_lo), (c_hi, r_hi) = lo.long().tolist(), hi.long().tolist()
    c_hi, r_hi = min(c_hi, W - 1), min(r_hi, H - 1)
    if c_lo > c_hi or r_lo > r_hi:
        return 0, 0, 0, 0
    return r_lo, c_lo, r_hi - r_lo + 1, c_hi - c_lo + 1


def shade_meshes(verts_cam: Tensor, faces: ArrayLike, focal_length: float, principal_point: tuple[float, float],
                 image_size: tuple[int, int], colors: Optional[ArrayLike] = None) -> ShadedPatch:
    """Render N camera-frame meshes [N,V,3] into an H x W image -> :class:`ShadedPatch`: only the window that
    the meshes can cover is rasterised and shaded (``rasterize(origin=...)``: equal to that window of a
    full-frame render bit for bit), so the cost follows the people's size, not the frame's."""
    N, V, _ = verts_cam.shape
    H, W = int(image_size[0]), int(image_size[1])
    device = verts_cam.device
    faces = _as_tensor(faces, torch.long, device)
    F = faces.shape[0]
    all_faces = (faces[None] + V * torch.arange(N, device=device)[:, None, None]).reshape(-1, 3)
    flat = verts_cam.reshape(1, N * V, 3)
    pp = torch.tensor([principal_point], dtype=flat.dtype, device=device)
    screen = project_vertices(flat, torch.zeros(1, 3, device=device), focal_length, pp)
    top, left, h, w = _covered_window(screen[0], H, W)
    if h == 0:
        return ShadedPatch(torch.zeros(0, 0, 3, device=device), torch.zeros(0, 0, dtype=torch.bool, device=device),
                           0, 0)
    frag = rasterize(screen, all_faces, (h, w), compact=True, origin=(top, left))  # sparse: compact wins on CPU
    hit = frag.face_idx[0] >= 0
    pix = hit.reshape(-1).nonzero().squeeze(1)  # shade the covered pixels only
    fid = frag.face_idx.reshape(-1)[pix]
    bary = frag.bary.reshape(-1, 3)[pix]
    vn = _vertex_normals(verts_cam, faces).reshape(N * V, 3)
    tri = all_faces[fid]  # [n,3]
    normal = sum(bary[:, k:k + 1] * vn.index_select(0, tri[:, k]) for k in range(3))
    # two-sided: turn normals towards the camera, per face. A face whose wound normal fn points away from the
    # camera (fn · centroid > 0) has its vertex normals flipped; so does a face wound against its vertex normals.
    v0, v1, v2 = (flat[0].index_select(0, all_faces[:, k]) for k in range(3))
    fn = torch.cross(v1 - v0, v2 - v0, dim=-1)  # [N*F,3]
    away = (fn * (v0 + v1 + v2)).sum(-1) > 0
    against = (fn * vn.index_select(0, all_faces[:, 0])).sum(-1) < 0
    flip = (away ^ against)[fid]
    normal = torch.nn.functional.normalize(torch.where(flip[:, None], -normal, normal), dim=-1)
    light = torch.nn.functional.normalize(torch.tensor(LIGHT_DIR, device=device), dim=0)
    lum = (AMBIENT + DIFFUSE * (normal @ light).clamp_min(0)).clamp_max(1.0)
    if colors is None:
        colors = [PALETTE[i % len(PALETTE)] for i in range(N)]
    col = _as_tensor(colors, torch.float32, device)
    if col.numel() == N * V * 3:  # per-vertex colours [N,V,3], interpolated with the barycentrics
        vcol = col.reshape(N * V, 3)
        albedo = sum(bary[:, k:k + 1] * vcol.index_select(0, tri[:, k]) for k in range(3))
    else:
        albedo = col.reshape(N, 3)[torch.div(fid, F, rounding_mode="floor")]
    rgb = torch.zeros(h * w, 3, device=device).index_copy_(0, pix, albedo * lum[:, None])
    return ShadedPatch(rgb.view(h, w, 3), hit, top, left)


def _principal_point(principal_point: Optional[tuple[float, float]], H: int, W: int) -> tuple[float, float]:
    return (W / 2.0, H / 2.0) if principal_point is None else (float(principal_point[0]), float(principal_point[1]))


def render_overlay(image: ArrayLike, verts: ArrayLike, faces: ArrayLike, translation: ArrayLike,
                   focal_length: float, principal_point: Optional[tuple[float, float]] = None,
                   colors: Optional[ArrayLike] = None, alpha: float = 1.0,
                   device: Union[str, torch.device] = "cpu") -> np.ndarray:
    """Composite shaded meshes on an image.

    image [H,W,3] uint8 RGB, verts [N,V,3] (model frame, metres), faces [F,3], translation [N,3],
    focal_length in pixels, principal_point (cx, cy) (None = image centre), colors [N,3] or per vertex [N,V,3]
    in 0..1 (None = palette, person 0 purple), alpha = mesh opacity -> [H,W,3] uint8 RGB. Pixels off the meshes are unchanged.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"render_overlay: image must be [H,W,3] uint8 RGB, got {img.shape} {img.dtype}")
    H, W = img.shape[:2]
    device = torch.device(device)
    p = shade_meshes(_people(verts, translation, device), faces, focal_length,
                     _principal_point(principal_point, H, W), (H, W), colors)
    out = img.copy()
    m = p.mask.cpu().numpy()
    window = (slice(p.top, p.top + m.shape[0]), slice(p.left, p.left + m.shape[1]))
    src, dst = img[window], out[window]  # views: dst writes into out
    mesh = p.rgb[p.mask].cpu().numpy() * 255.0
    dst[m] = np.clip(np.round(src[m] * (1.0 - alpha) + mesh * alpha), 0, 255).astype(np.uint8)
    return out


def _rotate_about_y(v: Tensor, angle_deg: float) -> Tensor:
    """Rotate each mesh [N,V,3] about the vertical (y) axis through its own centroid."""
    a = math.radians(angle_deg)
    R = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]],
                     dtype=v.dtype, device=v.device)
    c = v.mean(1, keepdim=True)
    return (v - c) @ R.T + c


def render_side_view(verts: ArrayLike, faces: ArrayLike, translation: ArrayLike, focal_length: float,
                     image_size: tuple[int, int], principal_point: Optional[tuple[float, float]] = None,
                     colors: Optional[ArrayLike] = None, angle_deg: float = 90.0,
                     background: tuple[int, int, int] = (25, 25, 25),
                     device: Union[str, torch.device] = "cpu") -> np.ndarray:
    """Side view: each person rotated by ``angle_deg`` about the vertical axis through its centroid (spec §6),
    on a near-black background. Same camera and arguments as :func:`render_overlay`; image_size (H, W)
    -> [H,W,3] uint8 RGB."""
    H, W = int(image_size[0]), int(image_size[1])
    device = torch.device(device)
    v = _rotate_about_y(_people(verts, translation, device), angle_deg)
    p = shade_meshes(v, faces, focal_length, _principal_point(principal_point, H, W), (H, W), colors)
    out = np.empty((H, W, 3), np.uint8)
    out[...] = np.asarray(background, dtype=np.uint8)
    m = p.mask.cpu().numpy()
    out[p.top:p.top + m.shape[0], p.left:p.left + m.shape[1]][m] = np.clip(
        np.round(p.rgb[p.mask].cpu().numpy() * 255.0), 0, 255).astype(np.uint8)
    return out


def render_crop_overlays(crops: Sequence[np.ndarray], verts: Tensor, cam: Tensor, faces: ArrayLike,
                         focal_length: float = 5000.0, device: Union[str, torch.device] = "cpu") -> list[np.ndarray]:
    """Each mesh over its crop with the crop camera of §1.8: crops N x [S,S,3] uint8 RGB, verts [N,V,3],
    cam [N,3] (s, tx, ty) -> N x [S,S,3] uint8 RGB."""
    from pymaf.geometry import cam_to_translation
    out = []
    for i, crop in enumerate(crops):
        size = float(crop.shape[0])
        trans = cam_to_translation(cam[i:i + 1].float(), focal_length, size)
        out.append(render_overlay(crop, verts[i:i + 1].float(), faces, trans, focal_length, (size / 2, size / 2),
                                  device=device))
    return out

