"""Training checkpoints: model, optimiser, AMP scaler, sampler position and every RNG, written atomically.

Layout (``<log_dir>/checkpoints/``): ``latest.pt`` (every ``train.checkpoint_every`` steps and at the end) and
``best.pt`` (best validation ``train.best_metric`` of the last iteration, default PA-MPJPE as spec §3.8). The ``model`` key holds the plain
state dict (no DDP/compile prefixes), so ``pymaf.api.load_model(checkpoint=...)`` reads these files too.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pymaf.errors import CheckpointError, MissingFileError



def rng_state() -> dict[str, Any]:
    """Every RNG the training loop draws from: python, numpy, torch CPU (and CUDA when present), as types that
    ``torch.load(weights_only=True)`` reads (the numpy key array as an int64 tensor), so that every checkpoint
    the trainer writes loads without unpickling arbitrary objects."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, step: int, epoch: int,
               batch_in_epoch: int, best: dict, config: dict, sampler_state: dict | None = None) -> dict[str, Any]:
    """The checkpoint dict (official keys 'model', 'optimizer', 'epoch', 'total_step_count' kept, §3.8)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "sampler": sampler_state, "rng": rng_state(), "epoch": epoch, "batch_idx": batch_in_epoch,
            "total_step_count": step, "best": best, "config": config}


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint written by the trainer (:func:`make_state`, ``pymaf.checkpoint.atomic_save``).

    Keep ``map_location`` on the CPU for resuming: the RNG states must be host tensors (numpy reads them), and
    ``load_state_dict`` of the model and the optimiser moves what belongs on the device (Adam's step counters
    stay on the host, as PyTorch keeps them)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"--resume: no checkpoint at {path} (expected <log_dir>/checkpoints/latest.pt); "
                               "start without --resume, or set train.log_dir to the run to continue")
    state = torch.load(path, map_location=map_location, weights_only=True)
    for key in ("model", "optimizer", "rng", "total_step_count"):
        if key not in state:
            raise CheckpointError(f"not a training checkpoint ({path}): missing key '{key}'; --resume needs the "
                                  "checkpoints/latest.pt that train.py writes")
    return state
