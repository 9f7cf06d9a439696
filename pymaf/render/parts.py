"""Silhouettes and 6-part masks of SMPL meshes for the LSP segmentation evaluation (spec §5.3).

The official evaluation renders SPIN's per-face 2x2x2 colour cube (``vertex_texture.npy``, (1,F,2,2,2,3)) with
neural_renderer (ambient 1, no directional light, no anti-aliasing) and looks each pixel's colour up in
``cube_parts.npy`` ((100,92,17), values 1..6): ``cube_parts[floor(100 R), floor(100 G), floor(100 B)]``.

Decision: each face gets ONE colour, the mean of its 8 cube texels, i.e. the trilinear value at the cube
centre. In SPIN's file every face's 8 texels hold the same part colour, so this equals what neural_renderer
samples at any barycentric position; for a non-constant cube it is the face's average colour. The part label
is therefore a per-face constant, looked up once at construction (indices clamped to the table's shape).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import Tensor, nn

from pymaf.render.rasterizer import CROP_SIZE, FOCAL_LENGTH, project_crop_camera, rasterize


def face_part_labels(vertex_texture: np.ndarray, cube_parts: np.ndarray) -> np.ndarray:
    """vertex_texture (1,F,T,T,T,3) in [0,1], cube_parts (X,Y,Z) -> [F] uint8 part label per face (0..6)."""
    colour = vertex_texture.reshape(vertex_texture.shape[1], -1, 3).mean(1)  # [F,3] cube-centre colour
    idx = np.floor(100.0 * colour).astype(np.int64)
    idx = np.clip(idx, 0, np.array(cube_parts.shape) - 1)
    return np.asarray(cube_parts[idx[:, 0], idx[:, 1], idx[:, 2]]).round().astype(np.uint8)


class PartRenderer(nn.Module):
    """Silhouette mask and part map (0 = background, 1..6 parts) of meshes under the crop camera of §5.3."""

    def __init__(self, vertex_texture: Union[str, Path], cube_parts: Union[str, Path], faces: Tensor,
                 focal_length: float = FOCAL_LENGTH, crop_size: int = CROP_SIZE):
        super().__init__()
        tex = np.load(vertex_texture, allow_pickle=False)
        cube = np.load(cube_parts, allow_pickle=False)
        faces = torch.as_tensor(faces, dtype=torch.long)
        if faces.dim() != 2 or faces.shape[1] != 3:
            raise ValueError(f"PartRenderer: faces must be [F,3], got {tuple(faces.shape)}")
        F = faces.shape[0]
        if tex.ndim != 6 or tex.shape[0] != 1 or tex.shape[1] != F or tex.shape[-1] != 3:
            raise ValueError(f"{vertex_texture}: expected shape (1,{F},T,T,T,3) (one colour cube per face), "
                             f"found {tex.shape}")
        if cube.ndim != 3:
            raise ValueError(f"{cube_parts}: expected a 3-D lookup table like (100,92,17), found {cube.shape}")
        self.focal_length, self.crop_size = float(focal_length), int(crop_size)
        self.register_buffer("faces", faces, persistent=False)  # [F,3]
        labels = torch.from_numpy(face_part_labels(tex, cube)).long()
        self.register_buffer("face_labels", labels, persistent=False)  # [F] 0..6

    @torch.no_grad()
    def forward(self, verts: Tensor, cam: Tensor, size: int = 224) -> tuple[Tensor, Tensor]:
        """verts [B,V,3], cam [B,3] crop cam (s,tx,ty) -> (mask [B,size,size] uint8 0/1, parts [B,size,size] uint8)."""
        v_px = project_crop_camera(verts, cam, size, self.focal_length, self.crop_size)
        frag = rasterize(v_px, self.faces, (size, size))
        hit = frag.face_idx >= 0
        parts = torch.where(hit, self.face_labels[frag.face_idx.clamp_min(0)], torch.zeros_like(frag.face_idx))
        return hit.to(torch.uint8), parts.to(torch.uint8)
