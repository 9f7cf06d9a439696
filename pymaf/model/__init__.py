"""The networks: PyMAF (paper §3) and the HMR/SPIN baseline (spec §1.13), and their constructor (``build_model``)."""
from .build import build_model
from .hmr import HMR
from .pymaf import PyMAF
from .body_output import FULL_KEYS, SPARSE_KEYS, ParametricBodyModel

__all__ = ["PyMAF", "HMR", "ParametricBodyModel", "build_model", "FULL_KEYS", "SPARSE_KEYS"]
