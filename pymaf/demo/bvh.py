"""BVH writer for a ``SkeletonAnimation`` (axis convention: ``pymaf.demo.animation``).

Layout: the SMPL 24-joint hierarchy named as ``SMPL_JOINT_NAMES``; OFFSETs in metres (the rest T-pose of the
person's shape); the root has OFFSET 0 and 6 channels ``Xposition Yposition Zposition Zrotation Xrotation
Yrotation`` (the pelvis' world position, not relative to a rest position, so every reader agrees), the others
3 channels ``Zrotation Xrotation Yrotation``: a joint's local rotation is ``Rz(z) Rx(x) Ry(y)`` (the
conventional BVH order, intrinsic, degrees). Leaves (head, feet, hands) get an End Site along their bone.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pymaf.demo.animation import SkeletonAnimation

ROT_CHANNELS = "Zrotation Xrotation Yrotation"
END_SITE_LENGTH = 0.05  # metres; only drawn by viewers


def euler_zxy_degrees(rotmat: np.ndarray) -> np.ndarray:
    """Rotation matrices [...,3,3] -> angles [...,3] (z, x, y) in degrees with R = Rz(z) Rx(x) Ry(y)."""
    shape = rotmat.shape[:-2]
    return Rotation.from_matrix(rotmat.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True).reshape(*shape, 3)


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in v)


def write_bvh(path: str | Path, anim: SkeletonAnimation) -> None:
    """Write ``anim`` as a BVH file at ``path`` (parent folders created)."""
    children: dict[int, list[int]] = {i: [] for i in range(len(anim.names))}
    for i, p in enumerate(anim.parents):
        if p >= 0:
            children[int(p)].append(i)
    offsets = anim.offsets
    s = io.StringIO()
    s.write("HIERARCHY\n")

    def joint(i: int, depth: int) -> None:
        pad = "  " * depth
        s.write(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {anim.names[i]}\n{pad}{{\n")
        off = np.zeros(3) if depth == 0 else offsets[i]
        s.write(f"{pad}  OFFSET {_fmt(off)}\n")
        s.write(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {ROT_CHANNELS}\n" if depth == 0
                else f"{pad}  CHANNELS 3 {ROT_CHANNELS}\n")
        for c in children[i]:
            joint(c, depth + 1)
        if not children[i]:
            bone = offsets[i]
            n = np.linalg.norm(bone)
            end = bone / n * END_SITE_LENGTH if n > 0 else np.array([0.0, END_SITE_LENGTH, 0.0])
            s.write(f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {_fmt(end)}\n{pad}  }}\n")
        s.write(f"{pad}}}\n")

    joint(0, 0)
    order: list[int] = []  # channel order = depth-first order of the hierarchy

    def visit(i: int) -> None:
        order.append(i)
        for c in children[i]:
            visit(c)

    visit(0)
    euler = euler_zxy_degrees(anim.rotations)  # [T,24,3]
    s.write(f"MOTION\nFrames: {len(anim.frame_indices)}\nFrame Time: {1.0 / anim.fps:.8f}\n")
    for t in range(len(anim.frame_indices)):
        s.write(_fmt(np.concatenate([anim.root_position[t], *(euler[t, i] for i in order)])) + "\n")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(s.getvalue())
