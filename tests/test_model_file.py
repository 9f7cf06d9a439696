"""Chumpy-free SMPL model files, restricted unpickling, mesh_downsampling (spec §9, §1.6)."""
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from types import FunctionType

import numpy as np
import pytest
import scipy.sparse as sp

from pymaf.body import joints as J
from pymaf.body import model_file as mf

from helpers import load_script

REPO = Path(__file__).resolve().parents[1]


def random_smpl_model(seed: int = 0) -> dict:
    """``test_smpl.random_model`` in the official SMPL .pkl layout of the released files: sparse J_regressor,
    uint32 f, root parent 2**32-1."""
    from helpers import random_model
    m = random_model(seed)
    kintree = m["kintree_table"].astype(np.int64)
    kintree[0, 0] = 2**32 - 1
    return {**m, "J_regressor": sp.csc_matrix(m["J_regressor"]), "kintree_table": kintree,
            "f": m["f"].astype(np.uint32)}


# ---------------------------------------------------------------- writing Python-2 style chumpy pickles
class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler that writes what Python 2's cPickle wrote for the SMPL files: byte strings
    as BINSTRING (read back as latin1 str) and the old module paths of numpy/scipy/builtins."""

    RENAMES = {"numpy._core.multiarray": "numpy.core.multiarray", "scipy.sparse._csc": "scipy.sparse.csc",
               "scipy.sparse._csr": "scipy.sparse.csr", "builtins": "__builtin__", "copyreg": "copy_reg"}
    dispatch = pickle._Pickler.dispatch.copy()

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name) if getattr(obj, "__module__", None) is None else obj.__module__
        self.write(pickle.GLOBAL + f"{self.RENAMES.get(module, module)}\n{name}\n".encode())
        self.memoize(obj)

    def save_bytes(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + n.to_bytes(4, "little")) + obj)
        self.memoize(obj)

    dispatch[FunctionType] = save_global
    dispatch[bytes] = save_bytes


def _fake_chumpy(monkeypatch):
    """Install fake `chumpy`, `chumpy.ch`, `chumpy.reordering`, `chumpy.ch_ops` modules whose objects
    pickle like chumpy's: __getstate__ = __dict__ minus the weak caches, the array under 'x'."""
    pkg = types.ModuleType("chumpy")
    mods = {name: types.ModuleType(f"chumpy.{name}") for name in ("ch", "reordering", "ch_ops")}

    class Ch:
        def __init__(self, **terms):
            self._dirty_vars, self._itr, self._depends_on_deps = set(), None, {}
            self._make_dense = self._make_sparse = False
            self._parents, self._cache = object(), {"r": None}  # unpicklable in chumpy; dropped below
            self.__dict__.update(terms)

        def __getstate__(self):
            state = dict(self.__dict__)
            del state["_parents"], state["_cache"]
            return state

    classes = {"ch": ["Ch"], "reordering": ["Reshape", "Select", "transpose"], "ch_ops": ["add", "multiply", "sqrt"]}
    for modname, names in classes.items():
        for cname in names:
            cls = Ch if cname == "Ch" else type(cname, (Ch,), {})
            cls.__module__, cls.__qualname__, cls.__name__ = f"chumpy.{modname}", cname, cname
            setattr(mods[modname], cname, cls)
    monkeypatch.setitem(sys.modules, "chumpy", pkg)
    for name, mod in mods.items():
        setattr(pkg, name, mod)
        monkeypatch.setitem(sys.modules, f"chumpy.{name}", mod)
    return mods


def write_chumpy_pkl(path: Path, model: dict, monkeypatch, py2_style: bool = True) -> None:
    """Write `model` like the released SMPL .pkl: shapedirs/v_template as chumpy objects,
    plus the extra keys of the real files (one of them a chumpy op we cannot evaluate)."""
    with monkeypatch.context() as mp:
        ch = _fake_chumpy(mp)
        Ch = ch["ch"].Ch
        data = dict(model)
        data["shapedirs"] = Ch(x=model["shapedirs"])
        half = model["v_template"] / 2
        data["v_template"] = ch["ch_ops"].add(x1=Ch(x=half), x2=ch["reordering"].Reshape(a=Ch(x=half.ravel()), newshape=half.shape))
        data["J"] = ch["reordering"].Select(a=Ch(x=np.arange(72.0)), idxs=np.arange(72), preferred_shape=(24, 3))
        data["weights_prior"] = ch["ch_ops"].sqrt(x=Ch(x=np.ones(3)))  # unused and unsupported: ignored
        data.update(bs_style="lbs", bs_type="lrotmin", vert_sym_idxs=np.arange(6890),
                    pose_training_info={"subjects": [1, 2], "ok": True})
        with open(path, "wb") as fh:
            (Py2StylePickler(fh, protocol=2) if py2_style else pickle.Pickler(fh, protocol=2)).dump(data)
    assert "chumpy" not in sys.modules


@pytest.fixture(scope="module")
def model():
    return random_smpl_model(0)


def _assert_same_model(loaded: dict, ref: dict) -> None:
    assert set(loaded) == set(mf.SMPL_KEYS)
    for k in ("v_template", "shapedirs", "posedirs", "weights"):
        assert loaded[k].dtype == np.float64
        np.testing.assert_array_equal(loaded[k], ref[k], err_msg=k)
    np.testing.assert_array_equal(loaded["J_regressor"], ref["J_regressor"].toarray())
    assert loaded["f"].dtype == np.int64 and loaded["kintree_table"].dtype == np.int64
    np.testing.assert_array_equal(loaded["f"], ref["f"])
    assert loaded["kintree_table"].tolist() == [J.SMPL_PARENTS, list(range(24))]


def test_chumpy_absent():
    assert importlib.util.find_spec("chumpy") is None, "these tests check loading WITHOUT chumpy"


@pytest.mark.parametrize("py2_style", [True, False])
def test_load_chumpy_pkl_without_chumpy(tmp_path, model, monkeypatch, py2_style):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pkl(path, model, monkeypatch, py2_style)
    raw = path.read_bytes()
    assert b"chumpy.ch\nCh\n" in raw and (b"numpy.core.multiarray" in raw) == py2_style
    _assert_same_model(mf.load_smpl_model(path), model)


def test_chumpy_stub_evaluation():
    buf = io.BytesIO()
    with pytest.MonkeyPatch.context() as mp:
        ch = _fake_chumpy(mp)
        x = ch["ch"].Ch(x=np.arange(6.0))
        obj = {"t": ch["reordering"].transpose(a=ch["reordering"].Reshape(a=x, newshape=(2, 3)), axes=(1, 0)),
               "m": ch["ch_ops"].multiply(x1=x, x2=x), "bad": ch["ch_ops"].sqrt(x=x)}
        pickle.dump(obj, buf, protocol=2)
    buf.seek(0)
    out = mf.restricted_load(buf)
    np.testing.assert_array_equal(out["t"], np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(out["m"], np.arange(6.0) ** 2)
    assert isinstance(out["bad"], mf.ChumpyStub)
    with pytest.raises(ValueError, match="chumpy.ch_ops.sqrt"):
        mf.to_numpy(out["bad"], strict=True)


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("func_name", ["os.system", "builtins.eval", "builtins.getattr", "numpy.load"])
def test_forbidden_global_raises(tmp_path, func_name):
    mod, name = func_name.rsplit(".", 1)
    func = getattr(__import__(mod), name)
    marker = tmp_path / "pwned"
    payload = {"f": np.zeros((13776, 3)), "v_template": _Evil(func, f"touch {marker}")}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=rf"{name}'") as err:
        mf.load_smpl_model(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_truncated_pkl(tmp_path, model, monkeypatch):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pkl(path, model, monkeypatch)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt") as err:
        mf.load_smpl_model(path)
    assert str(path) in str(err.value)


def test_wrong_shape_and_missing_key(tmp_path, model):
    bad = {**model, "posedirs": model["posedirs"][:, :, :200]}
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError) as err:
        mf.load_smpl_model(path)
    msg = str(err.value)
    assert "'posedirs'" in msg and "(6890, 3, 200)" in msg and "(6890, 3, 207)" in msg and str(path) in msg
    few = {**model, "shapedirs": model["shapedirs"][:, :, :5]}
    with pytest.raises(ValueError, match=r"'shapedirs'.*\(6890, 3, >=10\)"):
        mf.validate_smpl_model(few)
    missing = {k: v for k, v in model.items() if k != "weights"}
    path.write_bytes(pickle.dumps(missing, protocol=2))
    with pytest.raises(ValueError, match="missing key 'weights'"):
        mf.load_smpl_model(path)
    with pytest.raises(ValueError, match="'f' has vertex ids"):
        mf.validate_smpl_model({**model, "f": model["f"].astype(np.int64) + 6890})
    with pytest.raises(FileNotFoundError):
        mf.load_smpl_model(tmp_path / "nope.pkl")


def test_npz_round_trip_and_truncation(tmp_path, model):
    path = tmp_path / "m.npz"
    mf.save_smpl_npz(model, path)
    loaded = mf.load_smpl_model(path)
    _assert_same_model(loaded, model)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(mf.SMPL_KEYS)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="m.npz"):
        mf.load_smpl_model(path)


def test_convert_smpl_round_trip(tmp_path, model, monkeypatch, capsys):
    convert_smpl = load_script("convert_smpl")
    pkl, npz = tmp_path / "SMPL_MALE.pkl", tmp_path / "out" / "SMPL_MALE.npz"
    write_chumpy_pkl(pkl, model, monkeypatch)
    assert convert_smpl.main(["--in", str(pkl), "--out", str(npz)]) == 0
    assert "wrote" in capsys.readouterr().out
    a, b = mf.load_smpl_model(pkl), mf.load_smpl_model(npz)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(SystemExit):  # exists, no --force
        convert_smpl.main(["--in", str(pkl), "--out", str(npz)])
    from pymaf.cli import run_cli
    assert run_cli(convert_smpl.main, ["--in", str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_convert_smpl_cli_error(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "convert_smpl.py"), "--in", str(tmp_path / "a.pkl"),
                          "--out", str(tmp_path / "a.npz")], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and "SMPL model file not found" in res.stderr and "Traceback" not in res.stderr


# ---------------------------------------------------------------- mesh_downsampling.npz
class MyMesh:  # stands for GraphCMR's pickled mesh class; loading `M` would need it
    def __init__(self, v):
        self.v = v


def _selection(rows, n_cols, fmt):
    m = sp.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), n_cols))
    return m.asformat(fmt)


def _downsampling_mats(seed=0):
    rng = np.random.default_rng(seed)
    others = np.setdiff1d(np.arange(6890), J.IDX431)
    sel0 = np.sort(np.concatenate([J.IDX431, rng.choice(others, 1723 - 431, replace=False)]))
    sel1 = np.searchsorted(sel0, J.IDX431)
    return _selection(sel0, 6890, "csc"), _selection(sel1, 1723, "csr")


def _obj(*items):
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def write_mesh_downsampling(path, d0, d1, *, py2_style=False):
    arrays = {"A": _obj(sp.eye(6890, format="csc"), sp.eye(1723, format="csc"), sp.eye(431, format="csc")),
              "U": _obj(d0.T.tocsc(), d1.T.tocsc()), "D": _obj(d0, d1),
              "F": _obj(np.zeros((13776, 3), np.int64), np.zeros((3442, 3), np.int64)), "M": _obj(MyMesh(1), MyMesh(2))}
    np.savez(path, **arrays)
    if py2_style:  # rewrite D.npy as Python 2 wrote it: old module paths, latin1 byte strings
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (2,)})
        Py2StylePickler(buf, protocol=2).dump(arrays["D"])
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        members["D.npy"] = buf.getvalue()
        with zipfile.ZipFile(path, "w") as zf:
            for n, data in members.items():
                zf.writestr(n, data)


@pytest.mark.parametrize("py2_style", [False, True])
def test_mesh_downsampling(tmp_path, py2_style):
    path = tmp_path / "mesh_downsampling.npz"
    write_mesh_downsampling(path, *_downsampling_mats(), py2_style=py2_style)
    if py2_style:
        with zipfile.ZipFile(path) as zf:
            assert b"scipy.sparse.csc\ncsc_matrix" in zf.read("D.npy")
    idx = mf.load_mesh_downsampling(path)
    assert idx.dtype == np.int64 and idx.tolist() == J.IDX431


def test_mesh_downsampling_rejects_non_selection(tmp_path):
    d0, d1 = _downsampling_mats()
    path = tmp_path / "md.npz"
    bad = d1.tolil()
    bad[3, 7] = 1.0  # a row with two ones
    write_mesh_downsampling(path, d0, bad.tocsr())
    with pytest.raises(ValueError, match="one 1 per row"):
        mf.load_mesh_downsampling(path)
    write_mesh_downsampling(path, d0, d1 * 0.5)
    with pytest.raises(ValueError, match="0/1 selection"):
        mf.load_mesh_downsampling(path)
    write_mesh_downsampling(path, d0, d1[:400])
    with pytest.raises(ValueError, match=r"\(431, 6890\)"):
        mf.load_mesh_downsampling(path)
    np.savez(path, D=_obj(d0, _Evil(os.system, "true")))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        mf.load_mesh_downsampling(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt"):
        mf.load_mesh_downsampling(path)


def test_load_npy_restricted_plain(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for arr in (a, np.asfortranarray(a)):
        np.save(tmp_path / "a.npy", arr)
        out = mf.load_npy_restricted(tmp_path / "a.npy")
        np.testing.assert_array_equal(out, a)
    (tmp_path / "a.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-8])
    with pytest.raises(ValueError, match="truncated"):
        mf.load_npy_restricted(tmp_path / "a.npy")


def test_bad_kintree(model):
    kt = model["kintree_table"].copy()
    kt[0, 5] = 7
    with pytest.raises(ValueError, match="'kintree_table' has invalid parents"):
        mf.validate_smpl_model({**model, "kintree_table": kt})
