"""The runtime options (``pymaf.config.RuntimeConfig``: device, autocast, channels_last, fuse, torch.compile),
applied in one place for training, evaluation, the demo and the benchmarks (DESIGN rule 10).

For inference (``apply_runtime(..., inference=True)``: eval, demo, benchmarks) ``runtime.fuse`` runs an exact
rewritten copy of the network (``pymaf.model.inference``: BatchNorm folded, sub-pixel first deconv) and
``runtime.compile`` compiles with weight freezing (inductor ``freezing``: the weights become constants, folded
and pre-packed); training compiles without it.

Autocast covers the network's forward only (SMPL and the camera math inside it stay float32; the training
losses are computed outside it). bf16 and fp16 autocast run on the CPU as well as on CUDA: the RuntimeConfig
is what ran, and reports record it (``dataclasses.asdict``)."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from pymaf.errors import ConfigError
from pymaf.model.inference import can_pack_weights, fuse_for_inference

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class RuntimeModel(nn.Module):
    """``module`` run under ``runtime``: channels_last input and autocast (``runtime.amp``). Same call
    signature and outputs as ``module``: images [B,3,224,224] -> ``{'smpl_out': [...], ...}``."""

    def __init__(self, module: nn.Module, runtime: Any) -> None:
        super().__init__()
        if runtime.amp not in AMP_DTYPES:
            raise ConfigError(f"runtime.amp must be one of {sorted(AMP_DTYPES)}, got {runtime.amp!r}")
        self.module, self.runtime = module, runtime

    def forward(self, images: torch.Tensor, **kwargs: Any) -> Any:
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        dtype = AMP_DTYPES[self.runtime.amp]
        with torch.autocast(device_type=images.device.type, dtype=dtype, enabled=dtype is not None):
            return self.module(images, **kwargs)


def apply_runtime(model: nn.Module, runtime: Any, wrap: Callable[[nn.Module], nn.Module] | None = None,
                  inference: bool = False) -> nn.Module:
    """Move ``model`` to ``runtime.device`` (in place; channels_last weights with ``runtime.channels_last``) and
    return ``RuntimeModel(model)``, passed through ``wrap`` (the trainer's DDP) and then ``torch.compile`` with
    ``runtime.compile``. ``runtime``: a ``pymaf.config.RuntimeConfig``. Keep ``model`` for ``state_dict``.

    ``inference=True`` (``model`` in eval mode, called under ``torch.inference_mode`` / ``no_grad``): with
    ``runtime.fuse`` the returned network runs ``fuse_for_inference(model)``, a copy (``model`` keeps its layout and
    weights, only its device changes), with the convolution weights pre-cast to the autocast dtype; compiling
    freezes the weights."""
    if runtime.amp not in AMP_DTYPES:
        raise ConfigError(f"runtime.amp must be one of {sorted(AMP_DTYPES)}, got {runtime.amp!r}")
    model.to(runtime.device)
    if inference and runtime.fuse:  # pre-packed oneDNN weights where exact: CPU, channels_last, eager
        pack = runtime.channels_last and not runtime.compile and can_pack_weights(runtime.device)
        model = fuse_for_inference(model, AMP_DTYPES[runtime.amp], pack_weights=pack)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    net: nn.Module = RuntimeModel(model, runtime)
    if wrap is not None:
        net = wrap(net)
    if not runtime.compile:
        return net
    return FrozenCompiled(torch.compile(net)) if inference else torch.compile(net)


class FrozenCompiled(nn.Module):
    """A ``torch.compile``d inference network whose (re)compilations freeze the weights: inductor's ``freezing``
    (weights as constants: folded, pre-packed for oneDNN, convolution + ReLU / add fused). The flag is patched
    around each call because ``torch.compile(options={"freezing": True})`` does not reach the freezing pass
    (checked on torch 2.14: the graph kept plain ``mkldnn_convolution`` calls) and a process-wide setting would
    also freeze the training graphs."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        import torch._inductor.config as inductor_config
        with inductor_config.patch(freezing=True):
            return self.module(*args, **kwargs)
