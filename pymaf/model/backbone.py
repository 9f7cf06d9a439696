"""ResNet-50 trunk (spec §1.2) and its ImageNet initialisation.

The trunk is torchvision's ResNet-50 ("v1.5": stride 2 in the 3×3 conv of a bottleneck) without ``fc``. Its
children keep torchvision's names (``conv1``, ``bn1``, ``layer1``..``layer4``) so that the official
``feature_extractor.*`` entries and SPIN's flat HMR entries load unchanged. Random init is torchvision's:
conv weights N(0, sqrt(2 / (k²·out_channels))) (kaiming fan-out, which is also SPIN's HMR init), BN 1/0.

ImageNet weights are never downloaded: they are looked up in the torch hub cache and in
``<data_root>/pretrained_model/`` under torchvision's two names of the same V1 weights.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torchvision
from torch import nn

log = logging.getLogger("pymaf")

TRUNK_CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
IMAGENET_FILES = ("resnet50-19c8e357.pth", "resnet50-0676ba61.pth")  # torchvision V1 (old / new name)


def add_resnet50_trunk(module: nn.Module) -> None:
    """Attach a fresh torchvision ResNet-50 trunk (no ``fc``) to ``module`` as direct children.

    Used by :class:`ResNetBackbone` (PyMAF's ``feature_extractor``) and by the HMR baseline, whose SPIN
    state dict has the trunk at the top level (``conv1.weight``, ``layer1.0.conv1.weight``, ...).
    """
    net = torchvision.models.resnet50(weights=None)
    for name in TRUNK_CHILDREN:
        module.add_module(name, getattr(net, name))


def resnet_trunk_forward(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the trunk attached by :func:`add_resnet50_trunk`.

    x [B,3,224,224] ImageNet-normalised -> (layer4 map [B,2048,7,7], global average [B,2048]).
    The official AvgPool2d(7) equals the spatial mean on the 7×7 map of a 224² input.
    """
    x = module.maxpool(module.relu(module.bn1(module.conv1(x))))
    x = module.layer4(module.layer3(module.layer2(module.layer1(x))))
    return x, x.mean(dim=(2, 3))


class ResNetBackbone(nn.Module):
    """ResNet-50 feature extractor (spec §1.2): images [B,3,224,224] -> ([B,2048,7,7], [B,2048])."""

    def __init__(self) -> None:
        super().__init__()
        add_resnet50_trunk(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return resnet_trunk_forward(self, x)


def find_imagenet_weights(data_root: str | os.PathLike | None = None) -> Path:
    """Path of the torchvision ResNet-50 V1 ImageNet weights, never downloading them.

    Looks in ``<data_root>/pretrained_model/`` and in ``<torch hub dir>/checkpoints/`` for
    ``resnet50-19c8e357.pth`` or ``resnet50-0676ba61.pth``; raises FileNotFoundError listing the places.
    """
    folders = []
    if data_root is not None:
        folders.append(Path(data_root) / "pretrained_model")
    folders.append(Path(torch.hub.get_dir()) / "checkpoints")
    for folder in folders:
        for name in IMAGENET_FILES:
            if (folder / name).is_file():
                return folder / name
    looked = ", ".join(str(f / n) for f in folders for n in IMAGENET_FILES)
    raise FileNotFoundError(
        "ImageNet ResNet-50 weights not found (looked for " + looked + "). Download torchvision's "
        "ResNet50_Weights.IMAGENET1K_V1 file (https://download.pytorch.org/models/resnet50-0676ba61.pth) "
        "into <data_root>/pretrained_model/, or set model.backbone_weights to '' for random init.")


def load_trunk_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load a torchvision-layout ResNet-50 state dict into a trunk attached by :func:`add_resnet50_trunk`.

    Only ``fc.*`` may be left over (spec §1.2: the official loader is non-strict for exactly that reason); any
    other missing, unexpected or mis-shaped entry raises ValueError naming it.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in module.state_dict().items() if k.split(".")[0] in TRUNK_CHILDREN}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        raise ValueError(f"{path}: not a torchvision ResNet-50 state dict: missing {missing[:10]}, "
                         f"unexpected {unexpected[:10]}, wrong shape {bad[:10]}")
    module.load_state_dict(state, strict=False)
    log.info("loaded ImageNet backbone weights from %s", path)
