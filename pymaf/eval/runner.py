"""The batched prediction loop shared by every protocol (spec §5.1).

A *predictor* is any callable ``batch -> dict`` that receives the collated batch (tensors already on the
device) and returns at least::

    verts  [B, 6890, 3]  predicted mesh in the SMPL model frame (no translation), metres
    cam    [B, 3]        crop camera (s, tx, ty) of §1.8

and optionally ``joints`` [B, 49, 3] (the 49 joints of §2.2, needed by the COCO protocol),
``theta`` [B, 85] (cam 3, betas 10, axis-angle pose 72; saved with ``--save-samples``). ``model_predictor`` adapts a
PyMAF/HMR network (``smpl_out[-1]``, complete in eval mode); tests inject a stub that returns GT + offset.

An *evaluator* has ``update(batch, pred)`` (accumulates, on the device, without a host sync),
``running() -> dict[str, float]`` (the metrics so far, including the current batch: spec §10.16 fix; called on
log steps only), ``compute() -> dict`` and ``samples() -> dict[str, np.ndarray]`` (per-sample arrays).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

import numpy as np
import torch

from pymaf.data.loader import to_device
from pymaf.errors import DataError

Predictor = Callable[[Mapping[str, Any]], Mapping[str, torch.Tensor]]


class Evaluator(Protocol):
    def update(self, batch: Mapping[str, Any], pred: Mapping[str, torch.Tensor]) -> None: ...

    def running(self) -> dict[str, float]: ...

    def compute(self) -> dict[str, Any]: ...

    def samples(self) -> dict[str, np.ndarray]: ...


def model_predictor(model: torch.nn.Module, output: int = -1) -> Predictor:
    """Wrap a network (or its ``pymaf.runtime.apply_runtime`` wrapper) whose forward(img [B,3,224,224]) returns
    ``{'smpl_out': [out_0, ..., out_T]}`` (or one output dict) with ``verts``, ``theta`` [B,85], ``kp_3d`` [B,49,3].

    ``output``: which ``smpl_out`` entry (§5.1: -1, the last iteration; 0 is the mean-parameter initialisation,
    full in eval mode too); cam = theta[:, :3]. The model is put in eval mode (the caller restores train mode)."""
    model.eval()

    @torch.no_grad()
    def predict(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = model(batch["img"])
        last = out["smpl_out"][output] if isinstance(out, Mapping) and "smpl_out" in out else out
        theta = last["theta"].float()
        res = {"verts": last["verts"].float(), "cam": theta[:, :3], "theta": theta}
        if "kp_3d" in last:
            res["joints"] = last["kp_3d"].float()
        return res

    return predict


@dataclass
class RunResult:
    metrics: dict[str, Any]
    samples: dict[str, np.ndarray]
    num_samples: int
    seconds: float

    @property
    def samples_per_s(self) -> float:
        return self.num_samples / self.seconds if self.seconds > 0 else float("nan")


def run_evaluation(predictor: Predictor, loader: Iterable[Mapping[str, Any]], evaluator: Evaluator,
                   device: torch.device | str = "cpu", log_every: int = 50,
                   log: Callable[[str], None] | None = print) -> RunResult:
    """Run ``predictor`` over ``loader`` and feed ``evaluator``; prints the running metrics every
    ``log_every`` batches (they include the current batch, §10.16 fix) and returns the final metrics."""
    device = torch.device(device)
    n, t0 = 0, time.perf_counter()
    step = -1
    for step, batch in enumerate(loader):
        batch = to_device(batch, device)
        with torch.no_grad():
            pred = predictor(batch)
            evaluator.update(batch, pred)
        n += int(pred["verts"].shape[0])
        if log is not None and log_every > 0 and (step + 1) % log_every == 0:
            log(f"[{step + 1} batches, {n} samples] "
                + "  ".join(f"{k}: {v:.2f}" for k, v in evaluator.running().items()))
    if step < 0:
        raise DataError("run_evaluation: the dataset yielded no batch (its file has no sample?); expected at "
                        "least one sample")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return RunResult(evaluator.compute(), evaluator.samples(), n, seconds)
