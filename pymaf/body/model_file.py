"""Read and write SMPL-format body-model files without chumpy (spec §9, §1.6); the project's one restricted
unpickler (also used for SPIN-format object arrays and 3DPW sequence files, ``pymaf.data.spin_npz``).

* ``load_smpl_model``: the official SMPL v1.0 ``.pkl`` (Python-2 pickles holding chumpy arrays and a
  scipy sparse ``J_regressor``) or our ``.npz``. Pickles go through ``RestrictedUnpickler``: only a
  whitelist of globals (numpy array reconstruction, scipy sparse matrices, chumpy classes) can be
  named; chumpy and scipy objects become inert stubs that are turned into NumPy/SciPy afterwards.
  No pickled code is ever executed and chumpy need not be installed.
* ``save_smpl_npz``: the validated arrays as a plain ``.npz`` (no pickles).
* ``load_npy_restricted`` / ``load_mesh_downsampling``: GraphCMR's ``mesh_downsampling.npz`` holds
  object arrays of scipy sparse matrices; they are unpickled with the same restricted unpickler
  (never ``np.load(allow_pickle=True)``).
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from pymaf.errors import BodyModelError, MissingFileError
from pymaf.paths import atomic_write

NUM_VERTS = 6890
NUM_FACES = 13776
NUM_JOINTS = 24

# key -> expected shape; None = any size >= 10 on that axis (shape blend shapes).
SMPL_KEYS: dict[str, tuple[int | None, ...]] = {
    "v_template": (NUM_VERTS, 3),
    "shapedirs": (NUM_VERTS, 3, None),
    "posedirs": (NUM_VERTS, 3, 9 * (NUM_JOINTS - 1)),
    "J_regressor": (NUM_JOINTS, NUM_VERTS),
    "weights": (NUM_VERTS, NUM_JOINTS),
    "kintree_table": (2, NUM_JOINTS),
    "f": (NUM_FACES, 3)}
_INT_KEYS = ("kintree_table", "f")
MIN_BETAS = 10


# ----------------------------------------------------------------------------- restricted unpickler
class ForbiddenGlobalError(BodyModelError, pickle.UnpicklingError):
    """A pickle named a global outside the whitelist (it could execute code)."""


class _Stub:
    """Inert stand-in for a pickled object: nothing runs, only its constructor arguments and state are kept."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Stub":
        obj = object.__new__(cls)
        obj.state = {}
        obj.args = args
        return obj


class ChumpyStub(_Stub):
    """Inert stand-in for a pickled chumpy object: keeps the class name and the pickled state."""

    chumpy_class = "chumpy.?"

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"_state": state}

    def __repr__(self) -> str:
        return f"<{self.chumpy_class} stub, keys={sorted(self.state)}>"


class SparseStub(_Stub):
    """Inert stand-in for a pickled scipy sparse matrix (old or new scipy module path)."""

    sparse_format = "csc"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"scipy sparse {self.sparse_format} state is not a dict")
        self.state = state

    def to_scipy(self) -> sp.spmatrix:
        s = self.state
        shape = s.get("_shape", s.get("shape"))
        if shape is None:
            raise ValueError(f"pickled {self.sparse_format} matrix has no shape")
        shape = tuple(int(n) for n in shape)
        if self.sparse_format == "coo":
            row = s["row"] if "row" in s else s["coords"][0]
            col = s["col"] if "col" in s else s["coords"][1]
            return sp.coo_matrix((np.asarray(s["data"]), (np.asarray(row), np.asarray(col))), shape=shape)
        ctor = sp.csc_matrix if self.sparse_format == "csc" else sp.csr_matrix
        return ctor((np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])), shape=shape)


def _sparse_stub(fmt: str) -> type:
    return type(f"{fmt}_matrix_stub", (SparseStub,), {"sparse_format": fmt})


_SPARSE_STUBS = {fmt: _sparse_stub(fmt) for fmt in ("csc", "csr", "coo")}


def _safe_codecs_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` as Python 3 protocol-2 pickles use it for bytes; only text codecs."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not allowed")
    return text.encode(encoding, errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric  # numpy >= 2

    allowed: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for mod in ("__builtin__", "builtins"):
        allowed[(mod, "set")] = set
        allowed[(mod, "frozenset")] = frozenset
        allowed[(mod, "object")] = object
        allowed[(mod, "bytearray")] = bytearray
        allowed[(mod, "str")] = str
        allowed[(mod, "bytes")] = bytes
    allowed[("_codecs", "encode")] = _safe_codecs_encode
    for mod in ("copy_reg", "copyreg"):
        allowed[(mod, "_reconstructor")] = _safe_reconstructor
    for fmt, stub in _SPARSE_STUBS.items():
        for mod in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
            for kind in ("matrix", "array"):
                allowed[(mod, f"{fmt}_{kind}")] = stub
    return allowed


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """`copy_reg._reconstructor` (protocol 0/1 objects) restricted to our stub classes."""
    if not (isinstance(cls, type) and issubclass(cls, _Stub) and base is object):
        raise pickle.UnpicklingError(f"copy_reg._reconstructor({cls!r}, {base!r}) is not allowed")
    return cls.__new__(cls)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler (latin1, for Python-2 pickles) that only resolves whitelisted globals.

    chumpy classes (any ``chumpy`` or ``chumpy.*`` module) map to ``ChumpyStub`` subclasses and
    scipy csc/csr/coo matrices to ``SparseStub``; anything else raises ``ForbiddenGlobalError``
    (a ``pickle.UnpicklingError``) naming the global and the file.
    """

    def __init__(self, file: IO[bytes], source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        self._allowed = _allowed_globals()
        self._chumpy: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            full = f"{module}.{name}"
            if full not in self._chumpy:
                self._chumpy[full] = type(f"{name}_stub", (ChumpyStub,), {"chumpy_class": full})
            return self._chumpy[full]
        obj = self._allowed.get((module, name))
        if obj is None:
            raise ForbiddenGlobalError(
                f"{self.source}: the pickle names the global '{module}.{name}', which is not allowed (only numpy "
                "arrays, scipy sparse matrices, chumpy arrays and plain values are read; the file may be malicious)")
        return obj


# ----------------------------------------------------------------------------- stub -> numpy
def _chumpy_value(obj: ChumpyStub) -> np.ndarray:
    """Evaluate a chumpy stub. A plain ``Ch`` holds its array under 'x' (chumpy's ``__getstate__`` is
    its ``__dict__`` minus caches); Reshape/transpose/Select/add/subtract/multiply/divide/negative
    are evaluated from their terms. Anything else raises ValueError."""
    cls = obj.chumpy_class.rsplit(".", 1)[-1]
    s = obj.state

    def val(*names: str) -> np.ndarray:
        for k in names:
            if k in s:
                return np.asarray(to_numpy(s[k], strict=True))
        raise KeyError(names[0])

    try:
        if cls == "Ch":
            return val("x")
        if cls in ("Reshape", "reshape"):
            return val("a").reshape(s["newshape"])
        if cls == "transpose":
            return np.transpose(val("a"), s.get("axes"))
        if cls == "Select":
            out = val("a").ravel()[np.asarray(s["idxs"])]
            return out.reshape(s["preferred_shape"]) if "preferred_shape" in s else out
        if cls in _CH_BINARY:
            return _CH_BINARY[cls](val("x1", "a"), val("x2", "b"))
        if cls == "negative":
            return np.negative(val("x", "a"))
    except KeyError as e:
        raise ValueError(f"chumpy object {obj.chumpy_class} lacks the field {e} (fields: {sorted(s)})") from None
    raise ValueError(f"cannot convert chumpy object {obj.chumpy_class} (fields: {sorted(s)}) to an array")


_CH_BINARY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide}


def to_numpy(obj: Any, strict: bool = False) -> Any:
    """Replace stubs by arrays: chumpy -> ndarray, sparse -> scipy sparse; recurses into containers
    and object arrays. A chumpy object that cannot be evaluated raises ValueError if ``strict``,
    else stays a stub (so that unused keys of a model file cannot break loading)."""
    if isinstance(obj, ChumpyStub):
        try:
            return _chumpy_value(obj)
        except ValueError:
            if strict:
                raise
            return obj
    if isinstance(obj, SparseStub):
        return obj.to_scipy()
    if isinstance(obj, dict):
        return {k: to_numpy(v, strict) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_numpy(v, strict) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        out = np.empty(obj.shape, dtype=object)
        for i, v in enumerate(obj.flat):
            out.flat[i] = to_numpy(v, strict)
        return out
    return obj


def restricted_load(file: IO[bytes], source: str = "<pickle>") -> Any:
    """Unpickle with ``RestrictedUnpickler`` and convert stubs (``to_numpy``).

    Raises ``ForbiddenGlobalError`` for a non-whitelisted global and ValueError (naming ``source``)
    for a truncated or corrupt stream.
    """
    try:
        obj = RestrictedUnpickler(file, source).load()
    except ForbiddenGlobalError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, UnicodeDecodeError, MemoryError) as e:
        raise BodyModelError(f"{source}: truncated or corrupt pickle ({type(e).__name__}: {e})") from None
    return to_numpy(obj)


# ----------------------------------------------------------------------------- SMPL model files
def _fmt_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join(f">={MIN_BETAS}" if n is None else str(n) for n in shape) + ")"


def validate_smpl_model(model: dict[str, Any], source: str = "<dict>") -> dict[str, np.ndarray]:
    """Check and normalise the 7 SMPL arrays (shapes in ``SMPL_KEYS``).

    Returns a new dict of those keys only: float arrays as float64, ``J_regressor`` dense,
    ``kintree_table``/``f`` int64 with the root parent set to -1 (the .pkl stores 2**32-1).
    Raises ValueError naming ``source``, the key, the expected and the found shape.
    """
    if not isinstance(model, dict):
        raise BodyModelError(f"{source}: expected a dict of SMPL arrays, found {type(model).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, shape in SMPL_KEYS.items():
        if key not in model:
            raise BodyModelError(f"{source}: missing key '{key}' (expected shape {_fmt_shape(shape)}); "
                             f"found keys {sorted(map(str, model))}")
        try:
            v = to_numpy(model[key], strict=True)
        except ValueError as e:
            raise BodyModelError(f"{source}: key '{key}': {e}") from None
        if sp.issparse(v):
            v = v.toarray()
        try:
            v = np.asarray(v)
        except Exception as e:  # noqa: BLE001 - report any conversion failure with the key
            raise BodyModelError(f"{source}: key '{key}' is not an array ({type(v).__name__}: {e})") from None
        ok = v.ndim == len(shape) and all(
            (n >= MIN_BETAS if want is None else n == want) for n, want in zip(v.shape, shape))
        if not ok or v.dtype.kind not in "fiub":
            raise BodyModelError(f"{source}: key '{key}' has shape {tuple(v.shape)} dtype {v.dtype}, "
                             f"expected shape {_fmt_shape(shape)} numeric")
        if key in _INT_KEYS:
            if key == "kintree_table":
                v = v.astype(np.int64)
                v[0, 0] = -1
                bad = [j for j in range(1, NUM_JOINTS) if not 0 <= v[0, j] < j]
                if bad:  # smplx walks the chain in index order: parents must come first
                    raise BodyModelError(f"{source}: key 'kintree_table' has invalid parents {v[0].tolist()} "
                                     f"at joints {bad} (expected 0 <= parent[j] < j)")
            elif v.min() < 0 or v.max() >= NUM_VERTS:
                raise BodyModelError(f"{source}: key 'f' has vertex ids in [{v.min()}, {v.max()}], "
                                 f"expected [0, {NUM_VERTS - 1}]")
            out[key] = np.ascontiguousarray(v, dtype=np.int64)
        else:
            v = np.ascontiguousarray(v, dtype=np.float64)
            if not np.isfinite(v).all():
                raise BodyModelError(f"{source}: key '{key}' contains non-finite values")
            out[key] = v
    return out


def load_smpl_model(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load an SMPL-format model from the official SMPL v1.0 ``.pkl`` (no chumpy needed) or ``.npz``.

    Returns v_template (6890,3), shapedirs (6890,3,>=10), posedirs (6890,3,207), J_regressor (24,6890)
    dense, weights (6890,24) as float64, kintree_table (2,24) and f (13776,3) as int64.
    Raises FileNotFoundError, ``pickle.UnpicklingError`` (forbidden global) or ValueError (truncated
    file, missing key, wrong shape; the message names the file, the key and both shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"SMPL model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return validate_smpl_model(_load_npz_keys(path, tuple(SMPL_KEYS)), str(path))
    if suffix != ".pkl":
        raise BodyModelError(f"{path}: unknown SMPL model format '{suffix}' (expected .pkl or .npz)")
    with open(path, "rb") as fh:
        data = restricted_load(fh, str(path))
    return validate_smpl_model(data, str(path))


def _load_npz_keys(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the given keys (those present) of an .npz without pickles; clear errors for bad zips."""
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            for key in keys:
                if key in npz.files:
                    out[key] = npz[key]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        raise BodyModelError(f"{path}: truncated, corrupt or unsupported .npz ({type(e).__name__}: {e})") from None
    return out


def save_smpl_npz(model: dict[str, Any], path: str | os.PathLike) -> None:
    """Validate ``model`` and write its 7 SMPL arrays to ``path`` (.npz, no pickles), atomically."""
    arrays = validate_smpl_model(model, str(path))
    atomic_write(path, lambda f: np.savez(f, **arrays))


# ----------------------------------------------------------------------------- .npy / mesh_downsampling
def load_npy_restricted(file: IO[bytes] | str | os.PathLike, source: str | None = None) -> np.ndarray:
    """Read one ``.npy`` payload; object arrays are unpickled with ``RestrictedUnpickler`` (stubs
    converted), other arrays are read with ``allow_pickle=False``."""
    if not hasattr(file, "read"):
        source = source or str(file)
        with open(file, "rb") as fh:
            return load_npy_restricted(fh, source)
    source = source or "<npy>"
    fmt = np.lib.format
    try:
        version = fmt.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(file)
        else:
            shape, fortran, dtype = fmt._read_array_header(file, version)  # noqa: SLF001 (v3.0)
        if not dtype.hasobject:
            arr = np.frombuffer(file.read(), dtype=dtype, count=int(np.prod(shape)))
            return arr.reshape(shape, order="F" if fortran else "C").copy()
    except ValueError as e:
        raise BodyModelError(f"{source}: truncated or corrupt .npy ({e})") from None
    arr = restricted_load(file, source)
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise BodyModelError(f"{source}: object payload is {type(arr).__name__} "
                         f"{getattr(arr, 'shape', '')}, header says shape {tuple(shape)}")
    return arr


def load_mesh_downsampling(path: str | os.PathLike, num_verts: int = NUM_VERTS,
                           num_selected: int = 431) -> np.ndarray:
    """Vertex ids selected by GraphCMR's ``Dmap = D[1] @ D[0]`` (§1.6), as int64 [num_selected].

    Only the ``D`` member is read (``M`` holds pickled mesh classes and is never touched).
    Raises ValueError unless Dmap is [num_selected, num_verts] with exactly one 1 per row and 0
    elsewhere.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"mesh downsampling file not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            if "D.npy" not in zf.namelist():
                raise BodyModelError(f"{path}: missing key 'D' (found {sorted(zf.namelist())})")
            payload = zf.read("D.npy")
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise BodyModelError(f"{path}: truncated or corrupt .npz ({type(e).__name__}: {e})") from None
    d = load_npy_restricted(io.BytesIO(payload), f"{path}:D")
    mats = [sp.csr_matrix(m) if sp.issparse(m) else None for m in np.asarray(d, dtype=object).ravel()]
    if len(mats) < 2 or any(m is None for m in mats[:2]):
        raise BodyModelError(f"{path}: key 'D' should hold 2 sparse matrices, found {d!r:.200}")
    d0, d1 = mats[0], mats[1]
    if d0.shape[1] != num_verts or d1.shape[1] != d0.shape[0]:
        raise BodyModelError(f"{path}: key 'D' has matrices {d0.shape} and {d1.shape}, expected "
                         f"(n1, {num_verts}) and ({num_selected}, n1)")
    dmap = (d1 @ d0).tocsr()
    dmap.eliminate_zeros()
    if dmap.shape != (num_selected, num_verts):
        raise BodyModelError(f"{path}: D[1] @ D[0] has shape {dmap.shape}, expected ({num_selected}, {num_verts})")
    counts = np.diff(dmap.indptr)
    if not (np.all(counts == 1) and np.allclose(dmap.data, 1.0)):
        raise BodyModelError(f"{path}: D[1] @ D[0] is not a 0/1 selection matrix with one 1 per row "
                         f"(non-zeros per row in [{counts.min()}, {counts.max()}])")
    return dmap.indices.astype(np.int64)
