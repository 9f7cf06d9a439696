"""Exports: one ``.npz`` per person and frame, the official ``output.pkl`` layout (spec §6 step 6, written with
plain pickle: joblib reads it too), OBJ meshes (trimesh) and per-track BVH / glTF animations
(``AnimationRecorder``; ``pymaf.demo.animation``).

``.npz`` fields (float32 unless said; camera = OpenCV pinhole of the full image, x right, y down, z forward):

* ``pose`` [72] SMPL axis-angle (global orient first), ``rotmat`` [24,3,3] the same as rotation matrices,
  ``betas`` [10];
* ``translation`` [3] metres: camera-frame mesh = ``vertices + translation`` (spec §6 step 5 done right:
  ``geometry.crop_cam_to_full_translation``); ``focal_length`` [2] (fx, fy) pixels, ``principal_point`` [2]
  (cx, cy) pixels, ``K`` [3,3] intrinsics, ``image_size`` [2] int (h, w);
* ``pred_cam`` [3] crop camera (s, tx, ty) of §1.8, ``orig_cam`` [4] the official (sx, sy, tx, ty);
* ``joints3d`` [49,3] (spec §2.2 order) and ``vertices`` [6890,3] in the model frame (metres, no translation);
  ``joints2d`` [49,2] their projection in full-image pixels;
* ``bbox`` [5] (x1, y1, x2, y2, score) input box, ``box_center`` [2], ``box_size`` (side of the square crop);
* ``track_id``, ``frame_index`` (int), ``frame_name`` (str), ``smoothed`` (bool).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

NPZ_FLOAT_KEYS = ("pose", "rotmat", "betas", "translation", "focal_length", "principal_point", "K", "pred_cam",
                  "orig_cam", "joints3d", "vertices", "joints2d", "bbox", "box_center", "box_size")


def save_person_npz(path: str | Path, record: dict[str, Any]) -> None:
    """Write one person-frame record (fields in the module docstring) to ``path`` (.npz, uncompressed)."""
    out = {}
    for k, v in record.items():
        if k in NPZ_FLOAT_KEYS:
            out[k] = np.asarray(v, dtype=np.float32)
        else:
            out[k] = np.asarray(v)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)


class OfficialPklWriter:
    """Accumulates records into the official demo's ``output.pkl``: {track_id: {'pred_cam' [N,3], 'orig_cam'
    [N,4], 'verts' [N,6890,3], 'pose' [N,72], 'betas' [N,10], 'joints3d' [N,49,3], 'joints2d' None,
    'bboxes' [N,4] (cx, cy, side, side), 'frame_ids' [N]}} (spec §6 steps 4-6)."""

    def __init__(self) -> None:
        self.tracks: dict[int, dict[str, list]] = {}

    def add(self, record: dict[str, Any]) -> None:
        t = self.tracks.setdefault(int(record["track_id"]), {k: [] for k in (
            "pred_cam", "orig_cam", "verts", "pose", "betas", "joints3d", "bboxes", "frame_ids")})
        c, s = np.asarray(record["box_center"]), float(record["box_size"])
        for k, v in (("pred_cam", record["pred_cam"]), ("orig_cam", record["orig_cam"]),
                     ("verts", record["vertices"]), ("pose", record["pose"]), ("betas", record["betas"]),
                     ("joints3d", record["joints3d"]), ("bboxes", [c[0], c[1], s, s]),
                     ("frame_ids", int(record["frame_index"]))):
            t[k].append(v)

    def result(self) -> dict[int, dict[str, Any]]:
        out = {}
        for tid, t in self.tracks.items():
            d: dict[str, Any] = {k: np.asarray(v, dtype=np.int64 if k == "frame_ids" else np.float32)
                                 for k, v in t.items()}
            d["joints2d"] = None
            out[tid] = d
        return out

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(self.result(), f, protocol=pickle.HIGHEST_PROTOCOL)


def save_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a mesh [V,3] / [F,3] as OBJ with trimesh (no vertex merging or reordering)."""
    import trimesh
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False).export(str(path))


@dataclass
class AnimationRecorder:
    """Collects the demo's per-person records (``run.py``) and writes one BVH and/or GLB per track
    (``pymaf.demo.animation`` / ``bvh`` / ``gltf``: skeleton, axes, what the skin is)."""
    bvh: bool = False
    glb: bool = False
    tracks: dict[int, dict[str, list]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        """A person-frame record with ``track_id``, ``frame_index``, ``rotmat`` [24,3,3], ``betas`` [10],
        ``translation`` [3] (the demo's record, see ``pymaf.demo.export``)."""
        t = self.tracks.setdefault(int(record["track_id"]), {"frame": [], "rotmat": [], "betas": [], "trans": []})
        t["frame"].append(int(record["frame_index"]))
        t["rotmat"].append(np.asarray(record["rotmat"], np.float64))
        t["betas"].append(np.asarray(record["betas"], np.float64))
        t["trans"].append(np.asarray(record["translation"], np.float64))

    def export(self, out: str | Path, stem: str, smpl: torch.nn.Module, fps: float) -> list[dict[str, Any]]:
        """Write ``<out>/animation/<stem>_p<id:03d>.bvh|.glb``; returns one summary entry per track."""
        from pymaf.demo.animation import build_animation
        from pymaf.demo.bvh import write_bvh
        from pymaf.demo.gltf import write_glb
        entries = []
        for tid in sorted(self.tracks):
            t = self.tracks[tid]
            anim = build_animation(smpl, np.array(t["frame"]), np.stack(t["rotmat"]), np.stack(t["betas"]),
                                   np.stack(t["trans"]), fps)
            base = Path(out) / "animation" / f"{stem}_p{tid:03d}"  # (stem may hold dots: no with_suffix)
            entry: dict[str, Any] = {"track_id": tid, "start_frame": int(anim.frame_indices[0]),
                                     "num_frames": len(anim.frame_indices), "fps": anim.fps}
            if self.bvh:
                write_bvh(f"{base}.bvh", anim)
                entry["bvh"] = f"{base}.bvh"
            if self.glb:
                write_glb(f"{base}.glb", anim)
                entry["glb"] = f"{base}.glb"
            entries.append(entry)
        return entries
