"""Reading, validating and writing SPIN-format ``.npz`` annotation files (spec §4.1).

One file holds N samples (one person crop each). Only ``imgname``, ``center`` and ``scale`` are required;
every other field has a documented default. All per-sample arrays are converted once at load time
(float32, the 49 keypoints concatenated, gender mapped to ints) so ``__getitem__`` only indexes.

| key | shape | dtype | meaning | default if absent |
|---|---|---|---|---|
| `imgname` | (N,) | str | image path relative to the dataset's image root | required |
| `center` | (N, 2) | float | bbox centre (x, y) in original-image pixels | required |
| `scale` | (N,) | float | bbox side / 200 (1.2 x tight keypoint box; 0.9 x mask box for H36M) | required |
| `part` | (N, 24, 3) | float | 2D GT keypoints, J24 order (§2.2): x, y (pixels), visibility 0/1 | zeros |
| `openpose` | (N, 25, 3) | float | matched OpenPose BODY_25 detection: x, y, confidence | zeros |
| `S` | (N, 24, 4) | float | 3D joints, J24 order, metres, root-centred, 4th column = confidence | zeros, has_pose_3d=0 |
| `pose` | (N, 72) | float | SMPL axis-angle, global orient in the camera frame | zeros |
| `shape` | (N, 10) | float | SMPL betas | zeros |
| `has_smpl` | (N,) | 0/1 | whether pose/shape are valid | 1 if pose and shape exist, else 0 |
| `gender` | (N,) | str | 'm' -> 0, 'f' (or anything else, official) -> 1, 'n' -> -1 (pymaf) | -1 |
| `maskname` | (N,) | str | LSP test: UPi-S1h silhouette PNG, relative to the upi-s1h root | '' |
| `partname` | (N,) | str | LSP test: UPi-S1h part-segmentation PNG | '' |
| `smpl_2dkps` | (N, 24, 3) | float | HEAD only: 2D SMPL-joint keypoints (pixels, conf), SMPL joint order | zeros |
| `cam_focal` | (N,) | float | pymaf extension (synthetic data): full-image focal length, pixels | absent |
| `cam_center` | (N, 2) | float | pymaf extension: principal point (x, y), pixels | absent |
| `cam_trans` | (N, 3) | float | pymaf extension: translation of the SMPL model frame in the camera | absent |

Accepted variants: ``scale`` as (N, 1); ``S`` as (N, 24, 3) (confidence 1 is appended). Unknown keys are
kept in ``SpinAnnotations.extra`` untouched. Object arrays (rare) are read with the project's restricted
unpickler (numpy arrays and plain values only), never ``np.load(allow_pickle=True)``.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np

from pymaf.body.model_file import load_npy_restricted, restricted_load
from pymaf.errors import BodyModelError, DataError, MissingFileError
from pymaf.paths import atomic_write

# key -> trailing shape (after N). Fields not listed here are passed through as `extra`.
FIELD_SHAPES: dict[str, tuple[int, ...]] = {
    "imgname": (), "center": (2,), "scale": (), "part": (24, 3), "openpose": (25, 3), "S": (24, 4),
    "pose": (72,), "shape": (10,), "has_smpl": (), "gender": (), "maskname": (), "partname": (),
    "smpl_2dkps": (24, 3), "cam_focal": (), "cam_center": (2,), "cam_trans": (3,),
}
REQUIRED_FIELDS = ("imgname", "center", "scale")
STRING_FIELDS = ("imgname", "gender", "maskname", "partname")
GENDER_CODES = {"m": 0, "f": 1, "n": -1}  # anything else -> 1 (official: "not 'm'" means female)


class SpinFormatError(DataError):
    """A SPIN-format file or array set that does not match the table in this module."""


@dataclass
class SpinAnnotations:
    """All samples of one SPIN-format file, as float32/int arrays ready for indexing.

    keypoints [N,49,3] = concat(openpose, part) in pixels with confidence (§4.1 loader default).
    """
    source: str
    imgname: np.ndarray          # (N,) str
    center: np.ndarray           # (N, 2) float64 (the official loader keeps the file's float64, §4.3)
    scale: np.ndarray            # (N,) float64
    keypoints: np.ndarray        # (N, 49, 3) float32
    pose_3d: np.ndarray          # (N, 24, 4) float32
    has_pose_3d: bool            # per-dataset flag: the file has `S`
    pose: np.ndarray             # (N, 72) float32
    betas: np.ndarray            # (N, 10) float32
    has_smpl: np.ndarray         # (N,) float32 0/1
    gender: np.ndarray           # (N,) int64: 0 male, 1 female, -1 unknown/neutral
    maskname: np.ndarray         # (N,) str
    partname: np.ndarray         # (N,) str
    smpl_2dkps: np.ndarray       # (N, 24, 3) float32
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.scale.shape[0])


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def load_pickle(f: BinaryIO, source: str, npy: bool = False) -> Any:
    """Unpickle ``f`` (Python 2 pickles too; with ``npy`` an object-dtype ``.npy`` payload) with the project's one
    restricted unpickler (``pymaf.body.model_file``); its errors become :class:`SpinFormatError`."""
    try:
        return (load_npy_restricted if npy else restricted_load)(f, source)
    except BodyModelError as e:
        raise SpinFormatError(str(e)) from None


def read_npz_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (object arrays through the restricted unpickler)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"SPIN-format annotation file not found: {path}")
    out: dict[str, np.ndarray] = {}
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise SpinFormatError(f"{path}: not a readable .npz (expected a zip of .npy arrays, as np.savez writes): "
                              "the file is truncated, corrupt or of another format") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise SpinFormatError(f"{path}: holds a single .npy array, expected an .npz of named fields")
    with npz:
        for key in npz.files:
            try:
                out[key] = npz[key]
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise SpinFormatError(f"{path}: field '{key}' is truncated or corrupt ({e})") from None
            except ValueError as e:
                if "allow_pickle" not in str(e):
                    raise SpinFormatError(f"{path}: cannot read field '{key}': {e}") from e
                with zipfile.ZipFile(path) as zf:
                    out[key] = load_pickle(io.BytesIO(zf.read(key + ".npy")), f"{path}: field '{key}'", npy=True)
    return out


def _strings(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "latin1")
    return np.array([x.decode("latin1") if isinstance(x, bytes) else str(x) for x in arr.ravel()]).reshape(arr.shape)


def validate_spin_arrays(arrays: Mapping[str, np.ndarray], source: str = "<arrays>") -> dict[str, np.ndarray]:
    """Check names, shapes and dtypes against the table; returns the (normalised) arrays.

    Raises SpinFormatError naming ``source``, the field, the shape found and the shape expected.
    Normalisations: scale (N,1) -> (N,), S (N,24,3) -> (N,24,4) with confidence 1, strings -> str dtype.
    """
    missing = [k for k in REQUIRED_FIELDS if k not in arrays]
    if missing:
        raise SpinFormatError(f"{source}: required field(s) {missing} missing (has: {sorted(arrays)})")
    n = int(np.asarray(arrays["imgname"]).shape[0]) if np.asarray(arrays["imgname"]).ndim else -1
    if n < 0:
        raise SpinFormatError(f"{source}: field 'imgname' must have shape (N,), found ()")
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if key not in FIELD_SHAPES:
            out[key] = arr
            continue
        if key == "scale" and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if key == "S" and arr.ndim == 3 and arr.shape[1:] == (24, 3):
            arr = np.concatenate([arr, np.ones(arr.shape[:2] + (1,), arr.dtype)], axis=-1)
        expected = (n,) + FIELD_SHAPES[key]
        if arr.shape != expected:
            raise SpinFormatError(f"{source}: field '{key}' has shape {_shape_str(arr.shape)}, "
                                  f"expected {_shape_str(expected)} (N = len(imgname) = {n})")
        if key in STRING_FIELDS:
            arr = _strings(arr)
        elif arr.dtype.kind not in "biuf":
            raise SpinFormatError(f"{source}: field '{key}' has dtype {arr.dtype}, expected a numeric array")
        elif not np.isfinite(arr).all():
            raise SpinFormatError(f"{source}: field '{key}' contains NaN or inf values")
        out[key] = arr
    return out


def _gender_codes(g: np.ndarray) -> np.ndarray:
    return np.array([GENDER_CODES.get(str(x).strip().lower(), 1) for x in g], dtype=np.int64)


def annotations_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "<arrays>") -> SpinAnnotations:
    """Validate ``arrays`` and fill every default of the table (spec §4.1 loader defaults)."""
    a = validate_spin_arrays(arrays, source)
    n = a["imgname"].shape[0]

    def f32(key: str, shape: tuple[int, ...]) -> np.ndarray:
        return a[key].astype(np.float32) if key in a else np.zeros((n,) + shape, np.float32)

    def f64(key: str, shape: tuple[int, ...]) -> np.ndarray:
        return a[key].astype(np.float64) if key in a else np.zeros((n,) + shape, np.float64)

    # centre, scale and keypoints stay float64 as in the official loader: the crop's integer corners and the
    # quantised keypoint targets truncate these values (§4.3), and a float32 copy moves them across pixels
    part, openpose = f64("part", (24, 3)), f64("openpose", (25, 3))
    has_pose_and_shape = "pose" in a and "shape" in a
    if "has_smpl" in a:
        has_smpl = a["has_smpl"].astype(np.float32)
    else:
        has_smpl = np.full(n, 1.0 if has_pose_and_shape else 0.0, np.float32)
    if not has_pose_and_shape:
        has_smpl[:] = 0.0
    empty = np.full(n, "", dtype="<U1")
    extra = {k: v for k, v in a.items() if k not in FIELD_SHAPES or k.startswith("cam_")}
    return SpinAnnotations(
        source=source, imgname=a["imgname"], center=a["center"].astype(np.float64),
        scale=a["scale"].astype(np.float64), keypoints=np.concatenate([openpose, part], axis=1),
        pose_3d=f32("S", (24, 4)), has_pose_3d="S" in a, pose=f32("pose", (72,)), betas=f32("shape", (10,)),
        has_smpl=has_smpl, gender=_gender_codes(a["gender"]) if "gender" in a else np.full(n, -1, np.int64),
        maskname=a.get("maskname", empty), partname=a.get("partname", empty),
        smpl_2dkps=f32("smpl_2dkps", (24, 3)), extra=extra)


def load_spin_npz(path: Path | str) -> SpinAnnotations:
    """Read and validate one SPIN-format file (see the module table)."""
    return annotations_from_arrays(read_npz_arrays(path), str(path))


def save_spin_npz(path: Path | str, **arrays: Any) -> Path:
    """Validate ``arrays`` against the table and write them (uncompressed, no pickles) to ``path``.

    Strings are stored as fixed-width unicode arrays so the file loads with ``allow_pickle=False``.
    """
    path = Path(path)
    checked = validate_spin_arrays({k: np.asarray(v) for k, v in arrays.items()}, str(path))
    for key in STRING_FIELDS:
        if key in checked:
            checked[key] = np.asarray(checked[key], dtype=str)
    return atomic_write(path, lambda f: np.savez(f, **checked))


def keypoint_box(kp: np.ndarray, rescale: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """SPIN's box from keypoints: kp [N, J, 3] (x, y, conf) -> center [N, 2], scale [N] = rescale * max side / 200.

    Only joints with conf > 0 count; rows without any such joint get center 0 and scale 0 (filter them out).
    """
    kp = np.asarray(kp, np.float64)
    vis = kp[..., 2] > 0
    big = np.where(vis[..., None], kp[..., :2], np.inf)
    lo, hi = big.min(axis=1), np.where(vis[..., None], kp[..., :2], -np.inf).max(axis=1)
    ok = vis.any(axis=1)
    center = np.where(ok[:, None], (lo + hi) / 2.0, 0.0)
    scale = np.where(ok, rescale * np.max(np.where(ok[:, None], hi - lo, 0.0), axis=1) / 200.0, 0.0)
    return center, scale
