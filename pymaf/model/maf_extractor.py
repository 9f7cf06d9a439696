"""Mesh-aligned feature extraction: point sampling F(φ_s, X) and the point-wise MLP f (spec §1.4, §1.5).

Stateless (spec §10.12): the feature map and the points are arguments, nothing is stored on the module.
The 431-vertex down-sampling is an index selection done by the caller (spec §1.6, §10.11); this module
has no ``Dmap`` buffer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sample_points(feat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear point features: feat [B,C,H,W], points [B,N,2] (x, y in [-1, 1]) -> [B,C,N].

    ``align_corners=True`` puts ±1 on the corner pixel *centres*, although projected points use ±1 at the
    crop edges: a half-pixel mismatch baked into the official weights (spec §1.4, §10.8). Zero padding.
    """
    # sampled in the points' precision (float32 under autocast too: bf16 coordinates would move the points)
    grid = points.unsqueeze(2)                                                  # [B,N,1,2]
    return F.grid_sample(feat.to(points.dtype), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)[..., 0]


class MAFExtractor(nn.Module):
    """Point-wise MLP with a dense skip (spec §1.5): [B,C0,H,W] map + [B,N,2] points -> [B, dims[-1]·N].

    With dims = [256, 128, 64, 5]: conv0 256→128, conv1 (128+256)→64, conv2 (64+256)→5, all Conv1d(k=1).
    Every layer after the first sees cat([hidden, raw point feature]); LeakyReLU(0.01) after the hidden
    layers, LeakyReLU(``last_slope``) after the last: 0 = the official ReLU; > 0 keeps a signal where the output
    is negative (``model.maf_last_slope``). The output is flattened channel-major (all N values of channel 0 first),
    the layout the official ``regressor.*.fc1`` weights expect.
    """

    def __init__(self, dims: list[int], last_slope: float = 0.0) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"model.mlp_dim needs at least 2 entries, got {dims}")
        self.num_layers, self.last_slope = len(dims) - 1, float(last_slope)
        for i in range(self.num_layers):
            in_ch = dims[i] + (dims[0] if i > 0 else 0)
            self.add_module(f"conv{i}", nn.Conv1d(in_ch, dims[i + 1], kernel_size=1))

    def reduce(self, point_feat: torch.Tensor) -> torch.Tensor:
        """The MLP alone: point features [B,C0,N] -> [B, dims[-1]·N] (channel-major flatten)."""
        h = point_feat
        for i in range(self.num_layers):
            conv = getattr(self, f"conv{i}")
            h = conv(h if i == 0 else torch.cat((h, point_feat), dim=1))
            h = F.leaky_relu(h, 0.01 if i < self.num_layers - 1 else self.last_slope)   # slope 0: ReLU
        return h.flatten(1)

    def forward(self, feat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """feat [B,C0,H,W], points [B,N,2] normalised crop coordinates -> [B, dims[-1]·N]."""
        return self.reduce(sample_points(feat, points))
