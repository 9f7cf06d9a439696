"""DensePose IUV maps of SMPL meshes: the ground truth of the auxiliary IUV loss (spec §3.3, §3.5, §3.6).

Reads ``UV_data/UV_Processed.mat`` (DensePose's ``densepose_uv_data``, or the built-in stand-in in the same
format) with SciPy:

* ``All_FaceIndices`` (F_dp,): part 1..24 of each DensePose face;
* ``All_Faces`` (F_dp,3): 1-based indices into the DensePose vertices;
* ``All_U_norm``, ``All_V_norm`` (V_dp,): texture coordinates in [0,1];
* ``All_vertices`` (1,V_dp): 1-based SMPL vertex id of every DensePose vertex (duplicated along UV seams).

The renderer re-indexes the SMPL vertices by ``All_vertices - 1`` and rasterises the DensePose faces with the
crop camera of spec §3.6 (K = [[5000,0,112],[0,5000,112],[0,0,1]] on the 224 crop, rasterised at ``size``).
Channel 0 = part/24 is constant per face (the face's part id; HEAD interpolates per-vertex part ids, which is
the same value wherever the vertex ids agree with the face, and the official ``dp_vert_pid.npy`` cache is not
needed); channels 1, 2 = U, V are interpolated with perspective-correct barycentrics as PyTorch3D does for a
perspective camera. Background is 0 in every channel. Nothing is cached on disk.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import Tensor, nn

from pymaf.render.rasterizer import CROP_SIZE, FOCAL_LENGTH, Fragments, project_crop_camera, rasterize

DENSEPOSE_PARTS = 24  # fine DensePose body parts, ids 1..24 (0 = background), spec §3.6
# DensePose left/right part pairs (1-based part ids; 1, 2 = torso back/front and 23, 24 = head right/left)
DP_FLIP_PAIRS = ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
                 (21, 22), (23, 24))


def dp_flip_part_perm() -> Tensor:
    """[25] long: part id -> its mirror part id (0 = background and 1, 2 map to themselves)."""
    perm = torch.arange(DENSEPOSE_PARTS + 1)
    for a, b in DP_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def load_uv_processed(path: Union[str, Path]) -> dict[str, np.ndarray]:
    """Read and validate UV_Processed.mat -> dict(faces [F,3] int64 0-based, face_parts [F] int64 1..24,
    u [V], v [V] float32, vert_ids [V] int64 0-based SMPL ids)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing DensePose UV file {path} (UV_data/UV_Processed.mat from DensePose's "
                                f"densepose_uv_data.tar.gz, or the built-in body model)")
    mat = loadmat(str(path))

    def field(name: str) -> np.ndarray:
        if name not in mat:
            raise ValueError(f"{path}: field {name!r} missing (expected All_FaceIndices, All_Faces, All_U_norm, "
                             f"All_V_norm, All_vertices)")
        return np.asarray(mat[name])

    faces = field("All_Faces")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{path}: All_Faces must be (F,3), found {faces.shape}")
    parts = field("All_FaceIndices").reshape(-1)
    u, v = field("All_U_norm").reshape(-1), field("All_V_norm").reshape(-1)
    vert_ids = field("All_vertices").reshape(-1)
    F, V = faces.shape[0], vert_ids.shape[0]
    if parts.shape != (F,):
        raise ValueError(f"{path}: All_FaceIndices must have {F} entries (one per face), found {parts.shape}")
    for name, arr in (("All_U_norm", u), ("All_V_norm", v)):
        if arr.shape != (V,):
            raise ValueError(f"{path}: {name} must have {V} entries (one per All_vertices), found {arr.shape}")
    faces = faces.astype(np.int64) - 1
    if faces.min() < 0 or faces.max() >= V:
        raise ValueError(f"{path}: All_Faces must be 1-based indices in 1..{V}, found {faces.min() + 1}.."
                         f"{faces.max() + 1}")
    parts = parts.astype(np.int64)
    if parts.min() < 1 or parts.max() > DENSEPOSE_PARTS:
        raise ValueError(f"{path}: All_FaceIndices must be parts 1..{DENSEPOSE_PARTS}, found "
                         f"{parts.min()}..{parts.max()}")
    vert_ids = vert_ids.astype(np.int64) - 1
    if vert_ids.min() < 0:
        raise ValueError(f"{path}: All_vertices must be 1-based SMPL vertex ids, found {vert_ids.min() + 1}")
    return dict(faces=faces, face_parts=parts, u=u.astype(np.float32), v=v.astype(np.float32), vert_ids=vert_ids)


def vertex_parts_from_faces(faces: np.ndarray, face_parts: np.ndarray, num_verts: int) -> np.ndarray:
    """[V] int64 part id per DensePose vertex: the most frequent part of its faces (ties -> lowest id; 0 if unused).

    Replaces HEAD's slow search that writes ``data/dp_vert_pid.npy``.
    """
    counts = np.zeros((num_verts, DENSEPOSE_PARTS + 1), dtype=np.int64)
    np.add.at(counts, (faces.reshape(-1), np.repeat(face_parts, 3)), 1)
    return counts.argmax(1)


class IUVRenderer(nn.Module):
    """IUV maps [B,3,size,size] = (I/24, U, V) of SMPL meshes under the crop camera (spec §3.6).

    All tensors are non-persistent buffers (they stay out of checkpoints); ``.to(device)`` moves them.
    """

    def __init__(self, uv_processed: Union[str, Path], size: int = 56,
                 focal_length: float = FOCAL_LENGTH, crop_size: int = CROP_SIZE):
        super().__init__()
        d = load_uv_processed(uv_processed)
        self.size, self.focal_length, self.crop_size = int(size), float(focal_length), int(crop_size)
        self.num_smpl_verts = int(d["vert_ids"].max()) + 1  # checked on the host, no device sync per call
        self.register_buffer("vert_ids", torch.from_numpy(d["vert_ids"]), persistent=False)  # [V_dp]
        self.register_buffer("faces", torch.from_numpy(d["faces"]), persistent=False)  # [F_dp,3]
        self.register_buffer("face_parts", torch.from_numpy(d["face_parts"]), persistent=False)  # [F_dp]
        vparts = vertex_parts_from_faces(d["faces"], d["face_parts"], len(d["vert_ids"]))
        self.register_buffer("vert_parts", torch.from_numpy(vparts), persistent=False)  # [V_dp]
        tex = np.stack([vparts / DENSEPOSE_PARTS, d["u"], d["v"]], axis=1).astype(np.float32)
        self.register_buffer("vert_texture", torch.from_numpy(tex), persistent=False)  # [V_dp,3] (I/24,U,V)

    def extra_repr(self) -> str:
        return f"size={self.size}, faces={self.faces.shape[0]}, verts={self.vert_ids.shape[0]}"

    def rasterize(self, verts: Tensor, cam: Tensor) -> Fragments:
        """Fragments of the DensePose mesh: verts [B,V_smpl,3], cam [B,3] (s, tx, ty) -> [B,size,size]."""
        if verts.dim() != 3 or verts.shape[-1] != 3:
            raise ValueError(f"IUVRenderer: verts must be [B,V,3], got {tuple(verts.shape)}")
        if self.num_smpl_verts > verts.shape[1]:
            raise ValueError(f"IUVRenderer: All_vertices refers to SMPL vertex {self.num_smpl_verts} but "
                             f"verts has {verts.shape[1]} vertices")
        v_px = project_crop_camera(verts.index_select(1, self.vert_ids), cam, self.size, self.focal_length,
                                   self.crop_size)
        return rasterize(v_px, self.faces, (self.size, self.size))

    @torch.no_grad()
    def forward(self, verts: Tensor, cam: Tensor) -> Tensor:
        """verts [B,V_smpl,3] (model frame), cam [B,3] crop camera (s, tx, ty) of §1.8 -> [B,3,size,size] in [0,1]."""
        frag = self.rasterize(verts, cam)
        B, S = frag.face_idx.shape[:2]
        flat = frag.face_idx.reshape(-1)
        hit = (flat >= 0)[:, None]
        f = flat.clamp_min(0)  # every pixel (static shapes, no sync); the background is zeroed below
        bary = frag.bary.reshape(-1, 3)
        uv_tex = self.vert_texture[:, 1:].to(bary.dtype)
        uv = sum(bary[:, k:k + 1] * uv_tex.index_select(0, self.faces[:, k].index_select(0, f)) for k in range(3))
        part = self.face_parts.index_select(0, f).to(bary.dtype)[:, None] / DENSEPOSE_PARTS
        iuv = torch.where(hit, torch.cat([part, uv.clamp(0, 1)], dim=1), 0.0).float()
        return iuv.view(B, S, S, 3).permute(0, 3, 1, 2).contiguous()


def iuv_part_index(iuv: Tensor) -> Tensor:
    """[B,3,H,W] IUV image -> [B,H,W] long part index round(24·I) in 0..24 (spec §3.3)."""
    return torch.round(iuv[:, 0] * DENSEPOSE_PARTS).long()
