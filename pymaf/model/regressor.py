"""Parameter regressor R_t (spec §1.7): Θ_{t+1} = Θ_t + R_t(φ, Θ_t), with Θ = (pose 6D [144], shape [10], cam [3]).

PyMAF nests one per iteration (``regressor.k``); the HMR baseline has one (``regressor``), whose SPIN names
(``fc1``, ``decpose``, ... at the top level) ``pymaf.checkpoint`` maps onto it.
"""
from __future__ import annotations

import torch
from torch import nn

NPOSE, NSHAPE, NCAM = 24 * 6, 10, 3
NPARAM = NPOSE + NSHAPE + NCAM  # 157


class Regressor(nn.Module):
    """(feat [B,F], pose [B,144] (6D, §1.9), shape [B,10], cam [B,3]) -> updated (pose, shape, cam).

    fc1 (F+157 → hidden) → Dropout(0.5) → fc2 (hidden → hidden) → Dropout(0.5) → decpose/decshape/deccam, no
    non-linearity between fc1 and fc2 (as HMR/SPIN). ``dec*`` weights: xavier-uniform, gain 0.01; the rest PyTorch
    default init (spec §1.12). The input order cat(feature, pose, shape, cam) is what the official fc1 expects.
    """

    def __init__(self, feat_dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feat_dim + NPARAM, hidden)
        self.drop1 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(0.5)
        self.decpose = nn.Linear(hidden, NPOSE)
        self.decshape = nn.Linear(hidden, NSHAPE)
        self.deccam = nn.Linear(hidden, NCAM)
        for head in (self.decpose, self.decshape, self.deccam):
            nn.init.xavier_uniform_(head.weight, gain=0.01)

    def forward(self, feat: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor,
                cam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.cat((feat, pose.to(feat.dtype), shape.to(feat.dtype), cam.to(feat.dtype)), dim=1)
        x = self.drop2(self.fc2(self.drop1(self.fc1(x))))
        return (pose + self.decpose(x).to(pose.dtype), shape + self.decshape(x).to(shape.dtype),
                cam + self.deccam(x).to(cam.dtype))
