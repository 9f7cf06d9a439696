"""pymaf: PyMAF (ICCV 2021) monocular 3D human mesh recovery.

``pymaf.load_model(...)`` is the public entry point; it is imported lazily so that ``import pymaf`` stays light.
"""
from __future__ import annotations

from typing import Any

__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from pymaf.api import load_model
        return load_model
    raise AttributeError(f"module 'pymaf' has no attribute {name!r}")
