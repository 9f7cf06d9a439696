"""Helpers that several test modules share (imported as ``from helpers import ...``; pytest puts tests/ on the path)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from pymaf.body import joints as J

V = 6890
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (to call its ``main(argv)``), without putting scripts/ on sys.path."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_model(seed: int = 0) -> dict:
    """Random SMPL-format arrays with the real shapes: SMPL's parent list, normalised skinning weights,
    a J_regressor with rows summing to 1, shape/pose blend shapes of plausible size."""
    rng = np.random.default_rng(seed)
    jreg = np.zeros((24, V))
    for j in range(24):
        jreg[j, rng.choice(V, 8, replace=False)] = rng.dirichlet(np.ones(8))
    weights = rng.random((V, 24)) ** 4
    weights /= weights.sum(1, keepdims=True)
    return {
        "v_template": rng.normal(scale=0.3, size=(V, 3)),
        "shapedirs": rng.normal(scale=0.01, size=(V, 3, 10)),
        "posedirs": rng.normal(scale=0.01, size=(V, 3, 207)),
        "J_regressor": jreg,
        "weights": weights,
        "kintree_table": np.array([J.SMPL_PARENTS, list(range(24))]),
        "f": rng.integers(0, V, size=(13776, 3)),
    }


def random_regressor(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reg = rng.random((rows, V)) * (rng.random((rows, V)) < 0.002)
    return reg / reg.sum(1, keepdims=True)
