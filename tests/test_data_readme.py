"""The tracked data/README.md: it lists every file the registry (pymaf/paths.py) knows, it is the only tracked
file under data/, and a fresh clone's data/ holding only it works as the data root (check_data, the built-in
body model, the quickstart's synthetic dataset) without anything rewriting it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pymaf import paths

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "data" / "README.md"


def test_data_readme_holds_the_registry_table():
    assert paths.registry_markdown() in README.read_text(), \
        "data/README.md is stale: paste the output of `python scripts/check_data.py --markdown`"


def test_every_registered_path_is_in_data_readme():
    text = README.read_text()
    rels = [r for e in paths.FILES.values() for r in (e.rel, *e.alternatives)]
    rels += [f for d in paths.DATASETS.values() for f in (d.train, d.eval, d.eft, d.fits) if f]
    rels += [f"{d.images}/" for d in paths.DATASETS.values()]
    missing = [r for r in rels if f"`{r}" not in text]
    assert not missing, missing


def test_gitignore_tracks_only_data_readme():
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(ROOT), "rev-parse"],
                                                      capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")

    def ignored(rel: str) -> bool:
        return subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", rel]).returncode == 0
    assert not ignored("data/README.md")
    for rel in ("data/smpl/SMPL_NEUTRAL.pkl", "data/J_regressor_extra.npy", "data/synthetic/info.json",
                "data/datasets/3dpw/x.jpg", "data/notes.md"):
        assert ignored(rel), rel


def test_fresh_clone_data_folder_with_only_the_readme(tmp_path, monkeypatch, cache_root, body_root):
    """cwd = a fresh clone whose data/ holds only README.md: check_data reports (exit 0), the built-in body model
    is used, the quickstart's synthetic dataset is generated under data/synthetic/, and README.md is unchanged."""
    from pymaf.body.files import has_real_smpl, resolve_body_files
    from pymaf.config import load_config
    from pymaf.train.data_adapter import ensure_synthetic
    (tmp_path / "data").mkdir()
    shutil.copy(README, tmp_path / "data" / "README.md")
    before = (tmp_path / "data" / "README.md").read_bytes()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.ENV_DATA_ROOT, raising=False)
    monkeypatch.setenv(paths.ENV_CACHE, str(cache_root))  # the session's built-in body model (body_root)
    res = subprocess.run([sys.executable, str(ROOT / "scripts/check_data.py")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"data root: {(tmp_path / 'data').resolve()}" in res.stdout and "missing" in res.stdout
    root = paths.resolve_data_root(None)
    assert not has_real_smpl(root) and resolve_body_files(root).builtin
    cfg = load_config(None, ["data.synthetic_num_train=2", "data.synthetic_num_val=1"])
    ensure_synthetic(cfg, root)
    assert (tmp_path / "data/synthetic/synthetic_train.npz").is_file()
    assert (tmp_path / "data" / "README.md").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["README.md", "synthetic"]
