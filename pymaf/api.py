"""Public entry point for notebooks, evaluation and the demo: ``pymaf.load_model``."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn


def load_model(checkpoint: str | os.PathLike | dict | None = None, data_root: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", cfg: Any = None, announce: bool = True) -> nn.Module:
    """A PyMAF (or HMR) network in eval mode on ``device``.

    checkpoint: the released ``PyMAF_model_checkpoint.pt``, SPIN's ``model_checkpoint.pt`` (-> HMR), one of
        ours, or None for random init (or the ImageNet backbone when ``cfg.backbone_weights == 'imagenet'``).
    data_root: where the SMPL files live (``--data-root``, else $PYMAF_DATA, else ./data); without a real SMPL
        model the built-in body model is used.
    announce: log that the built-in body model is used (False where the caller has said so already).
    cfg: a ``pymaf.config.Config`` or ``ModelConfig``; None = inferred from the checkpoint (arch, n_iter, MLP and
        deconv sizes), else the defaults.

    ``model(images)`` with images [B,3,224,224] ImageNet-normalised RGB returns
    ``{'smpl_out': [out_0, ..., out_T], 'dp_out': [...]}``; see ``pymaf.model.body_output`` for the keys.
    """
    from pymaf.body.files import resolve_body_files
    from pymaf.checkpoint import infer_model_config, load_checkpoint, read_checkpoint
    from pymaf.config import ModelConfig
    from pymaf.model import build_model
    from pymaf.paths import resolve_data_root

    model_cfg = getattr(cfg, "model", cfg)
    if model_cfg is not None and not isinstance(model_cfg, ModelConfig):
        raise TypeError(f"cfg must be a pymaf.config.Config or ModelConfig, got {type(cfg).__name__}")
    state = meta = None
    if checkpoint is not None:
        state, meta = read_checkpoint(checkpoint)
        if model_cfg is None:
            model_cfg = ModelConfig(**infer_model_config(state, meta))
        # the checkpoint overwrites the backbone: no need to look for ImageNet weights
        model_cfg = dataclasses.replace(model_cfg, backbone_weights="")
    model_cfg = model_cfg or ModelConfig()
    root = resolve_data_root(data_root)
    model = build_model(model_cfg, resolve_body_files(root, announce), data_root=root)
    if checkpoint is not None:
        load_checkpoint(model, {**meta, "model": state})
    return model.to(device).eval()
