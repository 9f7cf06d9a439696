"""SMPL layer on ``smplx.SMPL`` returning the 49-joint convention of spec §2.1-2.2.

Differences from the official wrapper (spec §10.10): no ``nn.Parameter`` is created
(``create_*=False``), and every buffer is non-persistent, so checkpoints carry no SMPL arrays.
Model arrays come from ``pymaf.body.model_file`` (chumpy-free) and are handed to smplx as a
``data_struct``; smplx never opens a file itself.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import smplx
import torch
from smplx.utils import Struct

from pymaf.errors import BodyModelError, MissingFileError

from .joints import JOINT_MAP, NUM_EXTRA_JOINTS, VERTEX_JOINT_IDS
from .model_file import NUM_VERTS, load_smpl_model, validate_smpl_model

if TYPE_CHECKING:
    from .files import BodyFiles

NUM_BETAS = 10
NUM_H36M_JOINTS = 17


class SMPLOutput(NamedTuple):
    vertices: torch.Tensor     # [B, 6890, 3]
    joints: torch.Tensor       # [B, 49, 3] (§2.2)
    smpl_joints: torch.Tensor  # [B, 24, 3] SMPL kinematic joints


def _check_regressor(arr: np.ndarray, rows: int, what: str, source: str = "") -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != (rows, NUM_VERTS):
        hint = ""
        if what == "J_regressor_extra" and arr.shape == (14, NUM_VERTS):
            hint = (" (this is GraphCMR's 14-row file; PyMAF needs SPIN's 9-row J_regressor_extra.npy "
                    "from SPIN's data.tar.gz, spec §10.22)")
        where = f"{source}: " if source else ""
        raise BodyModelError(f"{where}{what} has shape {arr.shape}, expected ({rows}, {NUM_VERTS}){hint}")
    if not np.isfinite(arr).all():
        raise BodyModelError(f"{source or what}: {what} contains non-finite values")
    return arr


class SMPL(smplx.SMPL):
    """SMPL with the 49 PyMAF/SPIN joints (§2).

    model: dict of SMPL arrays (``load_smpl_model`` output); j_regressor_extra: [9, 6890] (SPIN's
    file, §2.3); j_regressor_h36m: [17, 6890] or None. Buffers (all non-persistent): smplx's
    arrays, ``J_regressor_extra``, ``J_regressor_h36m`` (if given), ``joint_map`` [49], ``faces``
    [13776, 3] long. Use ``.to(dtype/device)`` as for any module (float64 works).
    """

    def __init__(self, model: dict, j_regressor_extra: np.ndarray,
                 j_regressor_h36m: np.ndarray | None = None) -> None:
        model = validate_smpl_model(model)
        extra = _check_regressor(j_regressor_extra, NUM_EXTRA_JOINTS, "J_regressor_extra")
        h36m = None if j_regressor_h36m is None else _check_regressor(
            j_regressor_h36m, NUM_H36M_JOINTS, "J_regressor_h36m")
        # smplx prints a warning for models with < 300 shape components; silence it.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(
                model_path="", data_struct=Struct(**model), num_betas=NUM_BETAS,
                create_betas=False, create_global_orient=False, create_body_pose=False,
                create_transl=False, batch_size=1, dtype=torch.float32)
        # smplx keeps `faces` as a numpy attribute and `faces_tensor` as a buffer: keep one buffer.
        del self.faces
        del self.faces_tensor
        own = {
            "faces": torch.as_tensor(model["f"], dtype=torch.long),
            "J_regressor_extra": torch.as_tensor(extra, dtype=torch.float32),
            "J_regressor_h36m": None if h36m is None else torch.as_tensor(h36m, dtype=torch.float32),
            "joint_map": torch.tensor(JOINT_MAP, dtype=torch.long),
        }
        for name, buf in own.items():
            self.register_buffer(name, buf, persistent=False)
        sel = self.vertex_joint_selector.extra_joints_idxs.tolist()
        if sel != VERTEX_JOINT_IDS:  # guards against a different smplx version
            raise RuntimeError(f"smplx vertex joints {sel} differ from spec §2.1 {VERTEX_JOINT_IDS}")
        for module in self.modules():  # checkpoints must not carry SMPL arrays (§10.10)
            for name, buf in list(module.named_buffers(recurse=False)):
                module.register_buffer(name, buf, persistent=False)

    def forward(self, betas: torch.Tensor, body_pose: torch.Tensor, global_orient: torch.Tensor,
                pose2rot: bool = False) -> SMPLOutput:  # type: ignore[override]
        """betas [B,10]; body_pose [B,23,3,3] and global_orient [B,1,3,3] (rotation matrices), or
        with ``pose2rot=True`` axis-angles body_pose [B,69] and global_orient [B,3].
        Returns vertices [B,6890,3], joints [B,49,3], smpl_joints [B,24,3] (no translation)."""
        if pose2rot:
            body_pose = body_pose.reshape(body_pose.shape[0], -1)
            global_orient = global_orient.reshape(global_orient.shape[0], -1)
        else:
            body_pose = body_pose.reshape(body_pose.shape[0], -1, 3, 3)
            global_orient = global_orient.reshape(global_orient.shape[0], -1, 3, 3)
        out = super().forward(betas=betas, body_pose=body_pose, global_orient=global_orient, pose2rot=pose2rot)
        vertices = out.vertices
        joints45 = out.joints                                    # 24 SMPL + 21 vertex joints
        extra = torch.einsum("jv,bvc->bjc", self.J_regressor_extra, vertices)
        joints = torch.cat([joints45, extra], dim=1)[:, self.joint_map]
        return SMPLOutput(vertices=vertices, joints=joints, smpl_joints=joints45[:, :24])

    def h36m_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 17 H36M joints ``J_regressor_h36m @ vertices``: [B,V,3] -> [B,17,3] (rows of §2.3)."""
        if self.J_regressor_h36m is None:
            raise RuntimeError("this SMPL layer was built without J_regressor_h36m "
                               "(pass j_regressor_h36m / use build_smpl)")
        return torch.einsum("jv,bvc->bjc", self.J_regressor_h36m, vertices)


def _load_plain_npy(path: os.PathLike | str) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            return np.load(fh, allow_pickle=False)
    except FileNotFoundError:
        raise MissingFileError(f"body-model file not found: {path}") from None
    except (ValueError, OSError, EOFError) as e:
        raise BodyModelError(f"{path}: truncated or corrupt .npy ({e})") from None


def build_smpl(files: "BodyFiles", gender: str = "neutral") -> SMPL:
    """SMPL layer for ``gender`` ('neutral'|'male'|'female') from a ``BodyFiles`` set, with the
    extra (9 rows) and H36M (17 rows) regressors loaded."""
    if gender not in files.smpl:
        raise BodyModelError(f"no SMPL model for gender '{gender}' (available: {sorted(files.smpl)})")
    model = load_smpl_model(files.smpl[gender])
    extra = _check_regressor(_load_plain_npy(files.j_regressor_extra), NUM_EXTRA_JOINTS,
                             "J_regressor_extra", str(files.j_regressor_extra))
    h36m = _check_regressor(_load_plain_npy(files.j_regressor_h36m), NUM_H36M_JOINTS,
                            "J_regressor_h36m", str(files.j_regressor_h36m))
    return SMPL(model, extra, h36m)


_MEAN_KEYS = {"pose": 144, "shape": 10, "cam": 3}


def load_mean_params(path: os.PathLike | str) -> dict[str, np.ndarray]:
    """``smpl_mean_params.npz`` (§2.5) -> dict(pose [144], shape [10], cam [3]), all float32.
    Leading/trailing singleton axes are accepted; anything else raises ValueError naming the key."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            data = {k: npz[k] for k in _MEAN_KEYS if k in npz.files}
            found = sorted(npz.files)
    except FileNotFoundError:
        raise MissingFileError(f"mean-parameter file not found: {path}") from None
    except (ValueError, OSError, EOFError) as e:
        raise BodyModelError(f"{path}: truncated or corrupt .npz ({e})") from None
    out: dict[str, np.ndarray] = {}
    for key, n in _MEAN_KEYS.items():
        if key not in data:
            raise BodyModelError(f"{path}: missing key '{key}' (expected shape ({n},)); found keys {found}")
        arr = data[key]
        if arr.squeeze().shape != (n,) or arr.dtype.kind not in "fiu":
            raise BodyModelError(f"{path}: key '{key}' has shape {arr.shape} dtype {arr.dtype}, expected ({n},) float")
        arr = arr.reshape(n).astype(np.float32)
        if not np.isfinite(arr).all():
            raise BodyModelError(f"{path}: key '{key}' contains non-finite values")
        out[key] = arr
    return out
