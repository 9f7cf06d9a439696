"""Build a network from a ModelConfig and the body-model files; wrap it with the runtime speed options."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .backbone import build_backbone, find_imagenet_weights, load_trunk_weights
from .hmr import HMR
from .pymaf import PyMAF

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_model(cfg, body_files, data_root: str | os.PathLike | None = None) -> nn.Module:
    """A PyMAF or HMR network (``cfg.arch``) on the ``cfg.backbone`` trunk, on the CPU in training mode, with the
    backbone initialised per ``cfg.backbone_weights`` ('' random, 'imagenet' from the torch cache /
    ``<data_root>/pretrained_model``, or a file path; never downloaded).

    cfg: ``pymaf.config.ModelConfig``; body_files: ``pymaf.body.files.BodyFiles`` (SMPL neutral, mean params,
    regressors, optional mesh_downsampling.npz for the 431 vertex ids).
    """
    from pymaf.body.model_file import load_mesh_downsampling
    from pymaf.body.smpl import build_smpl, load_mean_params

    if cfg.arch not in ("pymaf", "hmr"):
        raise ValueError(f"model.arch must be 'pymaf' or 'hmr', got {cfg.arch!r}")
    smpl = build_smpl(body_files, "neutral")
    mean_params = load_mean_params(body_files.mean_params)
    ids_file = body_files.mesh_downsampling
    vertex_ids = load_mesh_downsampling(ids_file) if ids_file is not None else None   # None: Appendix A's
    backbone, channels = build_backbone(cfg)
    weights = cfg.backbone_weights
    if weights:
        path = find_imagenet_weights(backbone, data_root if data_root is not None else body_files.root) \
            if weights == "imagenet" else Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"model.backbone_weights: file not found: {path}")
        load_trunk_weights(backbone, path)
    if cfg.arch == "hmr":
        return HMR(smpl, mean_params, backbone, channels, n_iter=cfg.hmr_iters)
    return PyMAF(cfg, smpl, mean_params, backbone, channels, vertex_ids)


class InferenceModel(nn.Module):
    """Runs ``model`` under the runtime options: autocast (bf16/fp16 for the convolutional part; SMPL and the
    camera math stay float32) and channels_last input. Same call signature and outputs as ``model``."""

    def __init__(self, model: nn.Module, amp: str = "none", channels_last: bool = False) -> None:
        super().__init__()
        if amp not in AMP_DTYPES:
            raise ValueError(f"runtime.amp must be one of {sorted(AMP_DTYPES)}, got {amp!r}")
        self.model = model
        self.amp = amp
        self.channels_last = channels_last

    def forward(self, images: torch.Tensor, **kwargs) -> dict[str, list]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        dtype = AMP_DTYPES[self.amp]
        with torch.autocast(device_type=images.device.type, dtype=dtype, enabled=dtype is not None):
            return self.model(images, **kwargs)


def optimize(model: nn.Module, runtime) -> nn.Module:
    """Move ``model`` to ``runtime.device`` and apply ``runtime.channels_last`` / ``amp`` / ``compile``.

    Returns a callable module for inference; keep using ``model`` itself for ``state_dict``/checkpoints.
    ``runtime``: ``pymaf.config.RuntimeConfig`` (device, amp 'none'|'bf16'|'fp16', channels_last, compile).
    """
    model.to(runtime.device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    wrapped: nn.Module = InferenceModel(model, runtime.amp, runtime.channels_last)
    if runtime.compile:
        wrapped = torch.compile(wrapped)
    return wrapped
