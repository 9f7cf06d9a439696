"""SPIN final fits as pseudo-GT SMPL (the conference-era setting [P0], spec §3.4, §10.24).

Files (SPIN ``spin_fits.tar.gz``, folder ``<data_root>/final_fits/``):
- ``h36m.npy``: [N, 82] float = pose (72) + betas (10), built from the MoSh npz; every row is valid.
- ``<dataset>.npz``: ``pose`` [N, 72], ``betas`` [N, 10], ``valid_fit`` [N] (0/1).

In mixed training [P0] overwrites each dataset's ``pose``, ``betas`` and ``has_smpl`` with the fits and their
validity, and zeros the betas of any fit with a component |beta| > 3. Because the dataset applies the same
rotation and flip to whatever pose it holds, overwriting the annotations before augmentation is equivalent to
[P0]'s per-batch lookup by (dataset_name, sample_index). ``valid_fit = fit_valid | has_smpl`` of [P0] reduces to
the fit's validity here, since the GT rows of H36M are the MoSh fits themselves.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pymaf.data.spin_npz import SpinAnnotations, SpinFormatError, read_npz_arrays
from pymaf.errors import MissingFileError


@dataclass(frozen=True)
class FinalFits:
    pose: np.ndarray    # [N, 72] float32 axis-angle (camera frame)
    betas: np.ndarray   # [N, 10] float32
    valid: np.ndarray   # [N] float32 0/1


def _check(arr: np.ndarray, shape: tuple[int, ...], source: str, key: str) -> np.ndarray:
    if arr.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, arr.shape)):
        found = "(" + ", ".join(map(str, arr.shape)) + ")"
        want = "(" + ", ".join("N" if s == -1 else str(s) for s in shape) + ")"
        raise SpinFormatError(f"{source}: field '{key}' has shape {found}, expected {want}")
    return arr


def load_final_fits(path: Path | str) -> FinalFits:
    """Read ``h36m.npy`` ([N, 82]) or a ``<dataset>.npz`` (pose, betas, valid_fit); shapes are validated."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"final fits file not found: {path} "
                                "(SPIN's spin_fits.tar.gz, unpacked into <data_root>/final_fits/)")
    if path.suffix == ".npy":
        arr = _check(np.load(path, allow_pickle=False), (-1, 82), str(path), "<array>")
        return FinalFits(arr[:, :72].astype(np.float32), arr[:, 72:].astype(np.float32),
                         np.ones(arr.shape[0], np.float32))
    a = read_npz_arrays(path)
    for key in ("pose", "betas", "valid_fit"):
        if key not in a:
            raise SpinFormatError(f"{path}: field '{key}' missing (has: {sorted(a)})")
    n = a["pose"].shape[0]
    pose = _check(a["pose"], (n, 72), str(path), "pose")
    betas = _check(a["betas"], (n, 10), str(path), "betas")
    valid = _check(a["valid_fit"].reshape(-1) if a["valid_fit"].ndim == 2 else a["valid_fit"], (n,), str(path),
                   "valid_fit")
    return FinalFits(pose.astype(np.float32), betas.astype(np.float32), valid.astype(np.float32))


def apply_final_fits(ann: SpinAnnotations, fits: FinalFits, max_abs_beta: float | None = 3.0) -> SpinAnnotations:
    """A copy of ``ann`` with pose/betas/has_smpl taken from ``fits`` (§3.4 [P0]).

    Betas rows with any |beta| > ``max_abs_beta`` are zeroed (None disables that, as HEAD does).
    """
    if len(fits.pose) != len(ann):
        raise SpinFormatError(f"final fits have {len(fits.pose)} rows but {ann.source} has {len(ann)} samples")
    betas = fits.betas.copy()
    if max_abs_beta is not None:
        betas[(np.abs(betas) > max_abs_beta).any(axis=1)] = 0.0
    return replace(ann, pose=fits.pose.copy(), betas=betas, has_smpl=fits.valid.copy())
