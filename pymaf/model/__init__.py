"""The networks: PyMAF (paper §3) and the HMR/SPIN baseline (spec §1.13), plus build/speed helpers."""
from .build import InferenceModel, build_model, optimize
from .hmr import HMR
from .pymaf import PyMAF
from .body_output import FULL_KEYS, SPARSE_KEYS, ParametricBodyModel

__all__ = ["PyMAF", "HMR", "ParametricBodyModel", "build_model", "optimize", "InferenceModel",
           "FULL_KEYS", "SPARSE_KEYS"]
