import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pymaf import paths

ROOT = Path(__file__).resolve().parents[1]


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.ENV_DATA_ROOT, raising=False)
    assert paths.resolve_data_root(None) == Path("data")
    monkeypatch.setenv(paths.ENV_DATA_ROOT, str(tmp_path / "env"))
    assert paths.resolve_data_root(None) == tmp_path / "env"
    assert paths.resolve_data_root(str(tmp_path / "cli")) == tmp_path / "cli"


def test_dataset_registry():
    assert paths.dataset_npz(Path("d"), "3dpw", "eval") == Path("d/dataset_extras/3dpw_test.npz")
    assert paths.dataset_npz(Path("d"), "synthetic-val", "train") == Path("d/synthetic/synthetic_val.npz")
    with pytest.raises(KeyError, match="no 'eval' split"):
        paths.dataset_npz(Path("d"), "mpii", "eval")
    with pytest.raises(KeyError, match="unknown dataset"):
        paths.dataset_npz(Path("d"), "nope", "eval")


def _check(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/check_data.py"), "--data-root", str(root), *extra],
                          capture_output=True, text=True)


def test_check_data_empty_root_lists_missing(tmp_path):
    res = _check(tmp_path)
    assert res.returncode == 0, res.stderr  # nothing wrong, just missing
    for entry in paths.FILES.values():
        line = next(l for l in res.stdout.splitlines() if l.startswith(entry.rel))
        assert "missing" in line and "get:" in line
    assert _check(tmp_path, "--require", "model").returncode == 1


def test_check_data_flags_graphcmr_regressor(tmp_path):
    np.save(tmp_path / "J_regressor_extra.npy", np.zeros((14, 6890)))
    res = _check(tmp_path)
    assert res.returncode == 1
    line = next(l for l in res.stdout.splitlines() if l.startswith("J_regressor_extra.npy"))
    assert "wrong content" in line and "GraphCMR" in line


def test_check_data_wrong_shape(tmp_path):
    np.savez(tmp_path / "smpl_mean_params.npz", pose=np.zeros(72), shape=np.zeros(10), cam=np.zeros(3))
    res = _check(tmp_path)
    assert res.returncode == 1
    assert "found (72,), expected (144)" in res.stdout


def test_check_data_on_builtin_body(body_root):
    res = _check(body_root, "--require", "model", "iuv-loss")
    assert res.returncode == 0, res.stdout + res.stderr


def test_registry_protocols_and_mixtures():
    """Every protocol key of the registry is a 3D protocol and every 3D protocol scores a registered dataset; the
    mixture presets are the registry's groups (spec §4.5)."""
    from pymaf.data.mixed import PARTITIONS
    from pymaf.eval.pose3d import POSE3D_PROTOCOLS, protocol_for
    keys = {d.protocol for d in paths.DATASETS.values() if d.protocol}
    assert keys == set(POSE3D_PROTOCOLS)
    assert protocol_for("synthetic-val") is POSE3D_PROTOCOLS["synthetic-val"] and protocol_for("lsp") is None
    assert PARTITIONS["spin"] == [(("h36m",), 0.3), (("lsp-orig", "mpii", "lspet", "coco"), 0.6),
                                  (("mpi-inf-3dhp",), 0.1)]
    assert PARTITIONS["eft"][1] == (("lsp-orig", "mpii", "lspet", "coco-full"), 0.3)
    assert paths.dataset_npz(Path("d"), "coco", "eft") == Path("d/dataset_extras/coco_2014_train_eft.npz")
    assert paths.dataset_image_root(Path("d"), "synthetic-val") == Path("d/synthetic")
