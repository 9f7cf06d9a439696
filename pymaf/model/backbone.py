"""Backbones (spec §1.2): a registry of image trunks keyed by ``model.backbone``, and their ImageNet initialisation.

A backbone is a module with ``forward(images [B,3,224,224]) -> (map [B,C,7,7], global mean [B,C])`` and an
``out_channels`` attribute (C); optionally ``imagenet_files`` / ``imagenet_url`` for ``backbone_weights='imagenet'``
and ``input_res`` (``model.input_res``: the side it resizes its input to; the map is then ~input_res/32).
Add one with a line in :data:`BACKBONES` (name -> constructor without arguments).

The ResNets are torchvision's ("v1.5": stride 2 in the 3×3 conv of a bottleneck) without ``avgpool``/``fc``. Their
children keep torchvision's names (``conv1``, ``bn1``, ``layer1``..``layer4``) so that the official
``feature_extractor.*`` entries load unchanged. Random init is torchvision's: conv weights kaiming fan-out (also
SPIN's HMR init), BN 1/0. ImageNet weights are never downloaded: they are looked up in the torch hub cache and in
``<data_root>/pretrained_model/`` under torchvision's names of the V1 weights.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from functools import partial
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from pymaf import paths
from pymaf.errors import ConfigError, MissingFileError

log = logging.getLogger("pymaf")

TRUNK_CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class ResNetTrunk(nn.Sequential):
    """torchvision ResNet-``depth`` without ``fc``: images [B,3,224,224] -> (layer4 map [B,C,7,7], mean [B,C]),
    C = 512 (18, 34) or 2048 (50, 101, 152). The official AvgPool2d(7) equals the spatial mean of the 7×7 map."""

    def __init__(self, depth: int) -> None:
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        super().__init__(OrderedDict((name, getattr(net, name)) for name in TRUNK_CHILDREN))
        self.out_channels = net.fc.in_features
        self.imagenet_url = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1.url
        entry = paths.FILES[f"resnet{depth}_imagenet"]   # the names check_data.py reports: current, then older
        self.imagenet_files = tuple(Path(rel).name for rel in entry.alternatives + (entry.rel,))
        self.input_res = 224                                   # model.input_res: set by build_backbone

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] != self.input_res or x.shape[-2] != self.input_res:
            x = F.interpolate(x, size=(self.input_res,) * 2, mode="bilinear", align_corners=False, antialias=True)
        x = super().forward(x)
        return x, x.mean(dim=(2, 3))


BACKBONES = {f"resnet{d}": partial(ResNetTrunk, d) for d in (18, 34, 50, 101, 152)}


def build_backbone(cfg) -> tuple[nn.Module, int]:
    """(module, out_channels) of ``cfg.backbone`` (``pymaf.config.ModelConfig``), randomly initialised."""
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"model.backbone must be one of {sorted(BACKBONES)}, got {cfg.backbone!r}")
    module = BACKBONES[cfg.backbone]()
    if hasattr(module, "input_res"):
        module.input_res = int(cfg.input_res)
    elif cfg.input_res != 224:
        raise ConfigError(f"model.input_res={cfg.input_res}: backbone {cfg.backbone!r} takes 224 only")
    return module, int(module.out_channels)


def infer_backbone(state: dict[str, torch.Tensor], prefix: str = "feature_extractor.") -> str | None:
    """The registered ResNet whose blocks a state dict holds under ``prefix`` (bottleneck or basic blocks, number
    of layer2/layer3 blocks), or None when it is none of them."""
    def blocks(layer: str) -> int:
        return len({k[len(prefix):].split(".")[1] for k in state if k.startswith(f"{prefix}{layer}.")})
    key = (f"{prefix}layer1.0.conv3.weight" in state, blocks("layer2"), blocks("layer3"))   # bottleneck?, counts
    return {(False, 2, 2): "resnet18", (False, 4, 6): "resnet34", (True, 4, 6): "resnet50",
            (True, 4, 23): "resnet101", (True, 8, 36): "resnet152"}.get(key)


def find_imagenet_weights(backbone: nn.Module, data_root: str | os.PathLike | None = None) -> Path:
    """Path of ``backbone``'s ImageNet weights (its ``imagenet_files``), never downloading them.

    Looks in ``<data_root>/pretrained_model/`` and in ``<torch hub dir>/checkpoints/``; raises MissingFileError
    naming the files, the places and the URL.
    """
    names = getattr(backbone, "imagenet_files", ())
    if not names:
        raise ConfigError(f"model.backbone_weights='imagenet': no ImageNet weights known for {type(backbone).__name__}")
    folders = ([Path(data_root) / "pretrained_model"] if data_root is not None else []) + \
        [Path(torch.hub.get_dir()) / "checkpoints"]
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    looked = ", ".join(str(f / n) for f in folders for n in names)
    raise MissingFileError(
        f"ImageNet backbone weights not found (looked for {looked}). Download {backbone.imagenet_url} into "
        "<data_root>/pretrained_model/, or set model.backbone_weights to '' for random init.")


def load_trunk_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load a torchvision-layout state dict into a backbone (e.g. :class:`ResNetTrunk`).

    Only ``fc.*`` may be left over (spec §1.2: the official loader is non-strict for exactly that reason); any
    other missing, unexpected or mis-shaped entry raises ValueError naming it.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        raise ValueError(f"{path}: not a torchvision {type(module).__name__} state dict: missing {missing[:10]}, "
                         f"unexpected {unexpected[:10]}, wrong shape {bad[:10]}")
    module.load_state_dict(state, strict=False)
    log.info("loaded ImageNet backbone weights from %s", path)
