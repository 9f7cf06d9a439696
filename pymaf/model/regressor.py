"""Parameter regressor R_t (spec §1.7): Θ_{t+1} = Θ_t + R_t(φ, Θ_t), with Θ = (pose 6D [144], shape [10], cam [3]).

The layers are attached by :func:`add_regressor_layers` so that the HMR baseline can carry them at the top
level under SPIN's names (``fc1``, ``decpose``, ...), while PyMAF nests one per iteration (``regressor.k``).
"""
from __future__ import annotations

import torch
from torch import nn

NPOSE, NSHAPE, NCAM = 24 * 6, 10, 3
NPARAM = NPOSE + NSHAPE + NCAM  # 157


def add_regressor_layers(module: nn.Module, feat_dim: int, hidden: int = 1024) -> None:
    """fc1 (feat_dim+157 → hidden) → Dropout(0.5) → fc2 (hidden → hidden) → Dropout(0.5) → decpose/decshape/deccam.

    No non-linearity between fc1 and fc2 (as HMR/SPIN). ``dec*`` weights: xavier-uniform, gain 0.01; the rest
    PyTorch default init (spec §1.12).
    """
    module.fc1 = nn.Linear(feat_dim + NPARAM, hidden)
    module.drop1 = nn.Dropout(0.5)
    module.fc2 = nn.Linear(hidden, hidden)
    module.drop2 = nn.Dropout(0.5)
    module.decpose = nn.Linear(hidden, NPOSE)
    module.decshape = nn.Linear(hidden, NSHAPE)
    module.deccam = nn.Linear(hidden, NCAM)
    for head in (module.decpose, module.decshape, module.deccam):
        nn.init.xavier_uniform_(head.weight, gain=0.01)


def regressor_step(module: nn.Module, feat: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor,
                   cam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One residual update with the layers of :func:`add_regressor_layers`.

    feat [B,F], pose [B,144] (6D, §1.9), shape [B,10], cam [B,3] -> updated (pose, shape, cam).
    The input order cat(feature, pose, shape, cam) is what the official fc1 weights expect.
    """
    x = torch.cat((feat, pose.to(feat.dtype), shape.to(feat.dtype), cam.to(feat.dtype)), dim=1)
    x = module.drop2(module.fc2(module.drop1(module.fc1(x))))
    return (pose + module.decpose(x).to(pose.dtype), shape + module.decshape(x).to(shape.dtype),
            cam + module.deccam(x).to(cam.dtype))


class Regressor(nn.Module):
    """R_t of one PyMAF iteration: (feat [B,F], pose [B,144], shape [B,10], cam [B,3]) -> updated (pose, shape, cam)."""

    def __init__(self, feat_dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.feat_dim = feat_dim
        add_regressor_layers(self, feat_dim, hidden)

    def forward(self, feat: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor,
                cam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return regressor_step(self, feat, pose, shape, cam)
