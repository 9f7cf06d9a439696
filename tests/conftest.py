"""Shared fixtures: the built-in body model generated once per test session (shared by xdist workers)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # two xdist workers on two cores: no oversubscription


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by all xdist workers of this session (generation is atomic)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / "pymaf-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def body_root(cache_root: Path) -> Path:
    """Data root of the generated built-in body model (SMPL-format files in the real formats)."""
    from pymaf.body.files import builtin_root
    return builtin_root(cache_root)


@pytest.fixture(scope="session")
def body_files(body_root: Path):
    """BodyFiles of the built-in body model, resolved exactly as for a real data root."""
    from pymaf.body.files import resolve_body_files
    return resolve_body_files(body_root)
