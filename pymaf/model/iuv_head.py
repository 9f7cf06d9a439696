"""Auxiliary dense-correspondence (IUV) head (paper §3.3, spec §1.11). Used in training only."""
from __future__ import annotations

import torch
from torch import nn


class IUVHead(nn.Module):
    """Four independent 3×3 convs on the finest map [B,C,56,56] (module ``dp_head``).

    Returns logits/regressions at the map's resolution: ``predict_uv_index`` [B,25,H,W] (background + 24
    DensePose parts), ``predict_ann_index`` [B,15,H,W] (background + 14 coarse parts), ``predict_u`` and
    ``predict_v`` [B,25,H,W]. Created in the official order u, v, ann, uv_index; default init.
    """

    def __init__(self, in_channels: int = 256) -> None:
        super().__init__()
        self.predict_u = nn.Conv2d(in_channels, 25, kernel_size=3, stride=1, padding=1)
        self.predict_v = nn.Conv2d(in_channels, 25, kernel_size=3, stride=1, padding=1)
        self.predict_ann_index = nn.Conv2d(in_channels, 15, kernel_size=3, stride=1, padding=1)
        self.predict_uv_index = nn.Conv2d(in_channels, 25, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"predict_u": self.predict_u(x), "predict_v": self.predict_v(x),
                "predict_uv_index": self.predict_uv_index(x), "predict_ann_index": self.predict_ann_index(x)}
