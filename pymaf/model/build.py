"""Build a network from a ModelConfig and the body-model files (the runtime options: ``pymaf.runtime``)."""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .backbone import build_backbone, find_imagenet_weights, load_trunk_weights
from .hmr import HMR
from .pymaf import PyMAF


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
