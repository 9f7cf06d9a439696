"""A pure-PyTorch triangle rasterizer (z-buffer, barycentrics, depth) for CPU and CUDA.

Conventions (used by every renderer in this package):

* Screen space: ``verts_px[..., 0]`` is the column coordinate x and ``verts_px[..., 1]`` the row coordinate y,
  in pixels, continuous. Pixel (row i, column j) covers [j, j+1) x [i, i+1) and is sampled at its centre
  (j + 0.5, i + 0.5). So an OpenCV pinhole camera with principal point (W/2, H/2) looks at the centre of the
  image, and the crop camera of spec §1.8 (K = [[5000,0,112],[0,5000,112],[0,0,1]] on a 224 crop) maps the
  normalised crop coordinate u to x = 112·(u+1) exactly as the spec writes it. Rendering the 224 camera at
  another resolution S is a plain scaling of x and y by S/224 (what PyTorch3D does with ``image_size=(224,224)``
  in the camera and ``image_size=S`` in the rasterizer, spec §3.6).
* ``verts_px[..., 2]`` is the camera-space depth z (> 0 in front of the camera). Faces with a vertex at
  z <= ``near`` are dropped (no clipping: our meshes are whole bodies far in front of the camera).
* Back faces are rendered exactly like front faces (two-sided, no culling): the inside test accepts both
  windings, so a mesh and its winding-reversed copy give identical fragments. The nearest surface wins.
* Depth test: the nearest depth wins; exact ties go to the lower face index (deterministic on CPU and CUDA).
* A pixel centre exactly on an edge is inside (closed triangles): both faces of a shared edge claim it and the
  depth test picks one, so exact edge hits leave no crack.
* Precision: the inside test and the barycentrics run in the dtype of ``verts_px`` (float32, or float64 when
  given; half types are promoted to float32), relative to each face's first vertex; the depth key is float32.

Algorithm (vectorised, no Python loop over faces): for every face compute its pixel bounding box and keep the
faces whose box holds a pixel centre; expand "face x pixel of its box" candidates (``repeat_interleave``, or
``searchsorted`` over the flat candidate range when it is split into chunks, so memory stays bounded even for
huge faces); run the barycentric inside test on each candidate; scatter a packed int64 key
(float32 depth bits << 32 | face index; positive floats order like their bit patterns) into the pixel buffer
with ``scatter_reduce(amin)``; finally recompute barycentrics and depth of the winning face at the covered
pixels. One host sync per call (the number of candidates); the barycentrics are computed at every pixel
and kept on the covered ones, so every other shape is static (``compact=True``: at the covered pixels only).

Barycentrics are perspective-correct by default: the screen-space weights l_i are corrected with 1/z_i
(w_i ∝ l_i / z_i) and 1/z is interpolated affinely in screen space, which is exact for a pinhole camera (at
f = 5000 and z ≈ 50 m the correction is tiny, but it costs nothing and keeps the barycentrics exact for any
pinhole camera). With ``perspective_correct=False`` (orthographic or weak-perspective input, where z is
affine in screen space) the weights are the screen-space ones and the depth is their interpolation of z.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
from torch import Tensor

from pymaf.geometry import cam_to_translation

FOCAL_LENGTH, CROP_SIZE = 5000.0, 224  # the crop camera of spec §1.8 (IUV targets, LSP masks)

_INT64_MAX = torch.iinfo(torch.int64).max
NEAR = 1e-6  # faces with a vertex at z <= NEAR are dropped


class Fragments(NamedTuple):
    """Rasterizer output for a batch of B meshes on an H x W image."""

    face_idx: Tensor  # [B,H,W] int64, index into faces, -1 = background
    bary: Tensor  # [B,H,W,3] barycentric weights of the face's 3 vertices (0 on background)
    depth: Tensor  # [B,H,W] camera-space z of the visible surface, +inf on background


def project_vertices(verts: Tensor, translation: Tensor, focal_length: Union[float, Tensor],
                     principal_point: Tensor) -> Tensor:
    """Pinhole projection to the screen space of :func:`rasterize`.

    verts [B,V,3] (model frame), translation [B,3], focal_length float | [B] | [B,2] (fx, fy),
    principal_point [B,2] (cx, cy) in pixels -> [B,V,3] = (f·X/Z + cx, f·Y/Z + cy, Z) with (X,Y,Z) = verts + t.
    """
    if verts.dim() != 3 or verts.shape[-1] != 3:
        raise ValueError(f"project_vertices: verts must be [B,V,3], got {tuple(verts.shape)}")
    P = verts + translation[:, None, :].to(verts)
    if isinstance(focal_length, (int, float)):
        f: Union[float, Tensor] = float(focal_length)  # a Python float: no host-to-device copy per call
    else:
        f = torch.as_tensor(focal_length, dtype=verts.dtype, device=verts.device)
        f = (f.expand(verts.shape[0], 2) if f.dim() == 0 else f[:, None].expand(-1, 2) if f.dim() == 1 else f)
        f = f[:, None, :]
    pp = torch.as_tensor(principal_point, dtype=verts.dtype, device=verts.device).reshape(-1, 2)
    z = P[..., 2]
    xy = P[..., :2] / z[..., None] * f + pp[:, None, :]
    return torch.cat([xy, z[..., None]], dim=-1)


def project_crop_camera(verts: Tensor, cam: Tensor, size: int, focal_length: float = FOCAL_LENGTH,
                        crop_size: int = CROP_SIZE) -> Tensor:
    """verts [B,V,3] (model frame), cam [B,3] crop camera (s, tx, ty) of §1.8 -> [B,V,3] screen vertices of the
    crop rendered at size x size (focal length and centre scaled by size / crop_size); float64 stays float64."""
    dtype = torch.float64 if verts.dtype == torch.float64 else torch.float32
    verts, cam, scale = verts.to(dtype), cam.to(verts.device, dtype), size / crop_size
    pp = torch.full((verts.shape[0], 2), crop_size / 2 * scale, dtype=dtype, device=verts.device)
    return project_vertices(verts, cam_to_translation(cam, focal_length, crop_size), focal_length * scale, pp)


def _default_chunk(device: torch.device) -> int:
    """Candidates per chunk: ~150 MB of temporaries on CPU, ~1.2 GB on CUDA."""
    return 1 << 23 if device.type == "cuda" else 1 << 20


def _coefs(x0: Tensor, y0: Tensor, z0: Tensor, x1: Tensor, y1: Tensor, z1: Tensor, x2: Tensor, y2: Tensor,
           z2: Tensor, near: float, perspective_correct: bool) -> tuple[list[Tensor], Tensor]:
    """Per-face coefficients c = [x0, y0, a1, b1, a2, b2, q0, q1, q2] (each [n]) and the validity mask [n].

    l1 = a1·dx + b1·dy, l2 = a2·dx + b2·dy with (dx, dy) relative to vertex 0 (well conditioned for tiny
    faces far from the origin), l0 = 1 - l1 - l2; q_i = 1/z_i (perspective) or z_i (affine depth).
    Valid = non-degenerate, finite, every z > near.
    """
    e1x, e1y, e2x, e2y = x1 - x0, y1 - y0, x2 - x0, y2 - y0
    area = e1x * e2y - e1y * e2x
    finite = torch.isfinite(area + z0 + z1 + z2 + x0 + y0)
    valid = (area.abs() > 1e-12) & (z0 > near) & (z1 > near) & (z2 > near) & finite
    inv = 1.0 / torch.where(valid, area, torch.ones_like(area))
    q = [1.0 / z.clamp_min(near) for z in (z0, z1, z2)] if perspective_correct else [z0, z1, z2]
    return [x0, y0, e2y * inv, -e2x * inv, -e1y * inv, e1x * inv] + q, valid


def _weights(c: list[Tensor], px: Tensor, py: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Screen-space barycentrics (l0, l1, l2) at the centres of pixels (px, py) for coefficients c."""
    dx = px.to(c[0].dtype) + 0.5 - c[0]
    dy = py.to(c[0].dtype) + 0.5 - c[1]
    l1 = c[2] * dx + c[3] * dy
    l2 = c[4] * dx + c[5] * dy
    return 1.0 - l1 - l2, l1, l2


def rasterize(verts_px: Tensor, faces: Tensor, image_size: tuple[int, int], *,
              perspective_correct: bool = True, near: float = NEAR,
              chunk_size: Optional[int] = None, compact: bool = False,
              origin: tuple[int, int] = (0, 0)) -> Fragments:
    """Rasterize a batch of triangle meshes sharing one face list (see the module docstring).

    verts_px [B,V,3] screen-space vertices (x, y pixels; z depth > 0), faces [F,3] long,
    image_size (H, W) -> :class:`Fragments` (face_idx [B,H,W], bary [B,H,W,3], depth [B,H,W]).
    ``origin`` (row, column): render only the H x W window of the screen whose top-left pixel is ``origin``
    (the vertices stay in full-screen pixels); the result equals that window of a full-screen render bit for
    bit (the same pixel centres enter the same arithmetic), at the cost of the window only.
    ``chunk_size`` bounds the number of face-pixel candidates processed at once (memory ~150 B each).
    ``compact``: compute barycentrics at the covered pixels only (one more host sync, 3-4x faster on the CPU for
    large, sparsely covered images such as full-frame overlays); the default computes them at every pixel with
    static shapes, the right choice inside a GPU training step (IUV targets at 56²). Same fragments either way.
    Barycentrics are differentiable w.r.t. ``verts_px`` for the fixed visibility; the visibility is not.
    """
    if verts_px.dim() != 3 or verts_px.shape[-1] != 3:
        raise ValueError(f"rasterize: verts_px must be [B,V,3], got {tuple(verts_px.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"rasterize: faces must be [F,3], got {tuple(faces.shape)}")
    H, W = int(image_size[0]), int(image_size[1])
    B, V, F = verts_px.shape[0], verts_px.shape[1], faces.shape[0]
    if F >= 2 ** 31:
        raise ValueError(f"rasterize: at most 2^31-1 faces, got {F}")
    device = verts_px.device
    faces = faces.to(device=device, dtype=torch.long)
    if not verts_px.is_floating_point() or verts_px.dtype in (torch.float16, torch.bfloat16):
        verts_px = verts_px.float()
    chunk = int(chunk_size or _default_chunk(device))
    top, left = int(origin[0]), int(origin[1])

    with torch.no_grad():
        comp = verts_px.detach().reshape(B * V, 3).T.contiguous()  # [3,B*V]: x, y, z rows
        vid = (faces.T[:, None, :] + (torch.arange(B, device=device) * V)[None, :, None]).reshape(3, -1)  # [3,B*F]
        x = [comp[0].index_select(0, vid[k]) for k in range(3)]
        y = [comp[1].index_select(0, vid[k]) for k in range(3)]
        # pixel j is a candidate iff its centre j + 0.5 lies in [min x, max x]
        x_lo = torch.ceil(torch.minimum(torch.minimum(x[0], x[1]), x[2]) - 0.5).clamp(left, left + W).long()
        x_hi = torch.floor(torch.maximum(torch.maximum(x[0], x[1]), x[2]) - 0.5).clamp(left - 1, left + W - 1).long()
        y_lo = torch.ceil(torch.minimum(torch.minimum(y[0], y[1]), y[2]) - 0.5).clamp(top, top + H).long()
        y_hi = torch.floor(torch.maximum(torch.maximum(y[0], y[1]), y[2]) - 0.5).clamp(top - 1, top + H - 1).long()
        nx = (x_hi - x_lo + 1).clamp_min(0)
        counts = nx * (y_hi - y_lo + 1).clamp_min(0)  # [B*F] candidate pixels per face
        xyz = []
        for k in range(3):
            xyz += [x[k], y[k], comp[2].index_select(0, vid[k])]
        c, valid = _coefs(*xyz, near, perspective_correct)
        counts = counts * valid  # faces without a candidate repeat 0 times: no compaction (and no sync) needed
        cum = counts.cumsum(0)
        total = int(cum[-1]) if cum.numel() else 0  # the one host sync: the number of candidates
        # per face: first candidate, bbox width, bbox corner, flat face (gathered one by one below: an
        # index_select along dim 1 of their [5,B*F] stack measured 4x slower than five 1-D gathers on the CPU)
        ints = (cum - counts, nx, x_lo, y_lo, torch.arange(B * F, device=device))
        zbuf = torch.full((B * H * W,), _INT64_MAX, dtype=torch.long, device=device)
        for c0 in range(0, total, chunk):
            n = min(chunk, total - c0)
            if n == total:  # common case: one chunk, repeat_interleave is cheaper than a search
                a = torch.repeat_interleave(torch.arange(B * F, device=device), counts, output_size=total)
            else:
                a = torch.searchsorted(cum, torch.arange(c0, c0 + n, device=device), right=True)
            start, w, xl, yl, fid = (t.index_select(0, a) for t in ints)
            local = torch.arange(c0, c0 + n, device=device) - start
            row = torch.div(local, w, rounding_mode="floor")
            px, py = xl + local - row * w, yl + row
            ca = [t.index_select(0, a) for t in c]
            l0, l1, l2 = _weights(ca, px, py)
            inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
            # depth > 0 inside a valid face (all z > near), so its float32 bits order like the depths
            s = ca[6] * l0 + ca[7] * l1 + ca[8] * l2
            d = (1.0 / s if perspective_correct else s).float()
            b = torch.div(fid, F, rounding_mode="floor")
            key = torch.where(inside, (d.view(torch.int32).long() << 32) | (fid - b * F), _INT64_MAX)
            zbuf.scatter_reduce_(0, b * (H * W) + (py - top) * W + (px - left), key, reduce="amin")
        hit = zbuf != _INT64_MAX
        win = torch.where(hit, zbuf & 0xFFFFFFFF, 0)  # winning face (face 0 stands in on the background)
        face_idx = torch.where(hit, win, -1).view(B, H, W)
        if compact:
            pix = hit.nonzero().squeeze(1)  # host sync
            win, hit = win.index_select(0, pix), hit.index_select(0, pix)
        else:
            pix = torch.arange(B * H * W, device=device)

    # barycentrics and depth of the winning face at every pixel (kept on the covered ones: static shapes, no
    # sync), or at the covered pixels only (compact); autograd to verts_px if needed
    b = torch.div(pix, H * W, rounding_mode="floor")
    rem = pix - b * (H * W)
    py = torch.div(rem, W, rounding_mode="floor")
    if verts_px.requires_grad:
        comp = verts_px.reshape(B * V, 3).T
    xyz = []
    for k in range(3):
        xyz += list(comp.index_select(1, b * V + faces[:, k].index_select(0, win)).unbind(0))
    if not compact:  # background pixels see a fixed unit triangle at z = 1: finite values, zero gradients
        xyz = [torch.where(hit, t, v) for t, v in zip(xyz, (0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0))]
    c = _coefs(*xyz, near, perspective_correct)[0]
    l = torch.stack(_weights(c, rem - py * W + left, py + top), dim=-1)  # [B*H*W,3], full-screen pixel centres
    q = torch.stack(c[6:9], dim=-1)
    if perspective_correct:
        lq = l * q
        s = lq.sum(-1)
        bary, depth = lq / s[:, None], 1.0 / s
    else:
        bary, depth = l, (l * q).sum(-1)
    if compact:
        dt = bary.dtype
        bary = torch.zeros(B * H * W, 3, dtype=dt, device=device).index_copy_(0, pix, bary).view(B, H, W, 3)
        depth = torch.full((B * H * W,), float("inf"), dtype=dt, device=device).index_copy_(0, pix, depth)
    else:
        bary = torch.where(hit[:, None], bary, 0.0).view(B, H, W, 3)
        depth = torch.where(hit, depth, float("inf"))
    return Fragments(face_idx, bary, depth.view(B, H, W))


def interpolate(fragments: Fragments, faces: Tensor, attrs: Tensor) -> Tensor:
    """Barycentric interpolation of per-vertex attributes: attrs [B,V,C] or [V,C] -> [B,H,W,C] (0 on bg)."""
    B, H, W = fragments.face_idx.shape
    hit = fragments.face_idx >= 0
    vid = faces.to(attrs.device)[fragments.face_idx.clamp_min(0)]  # [B,H,W,3]
    if attrs.dim() == 2:
        a = attrs[vid]  # [B,H,W,3,C]
    else:
        a = attrs[torch.arange(B, device=attrs.device).view(B, 1, 1, 1), vid]
    out = (fragments.bary.to(a.dtype)[..., None] * a).sum(-2)
    return out * hit[..., None].to(out.dtype)
