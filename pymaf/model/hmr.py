"""HMR/SPIN baseline of Table 1 (spec §1.13): backbone → global feature → one regressor iterated (IEF).

Children: ``feature_extractor`` (the backbone, as in PyMAF) and ``regressor``; SPIN's flat names (``conv1.weight``,
``fc1.weight``, ...) are mapped onto them by ``pymaf.checkpoint`` so that SPIN's ``model_checkpoint.pt`` loads. The
IEF iterations share weights and the state is *not* detached.
"""
from __future__ import annotations

import torch
from torch import nn

from .body_output import ParametricBodyModel
from .regressor import Regressor


class HMR(ParametricBodyModel):
    """images [B,3,224,224] -> {'smpl_out': [out_0 (mean parameters), out_final], 'dp_out': []}.

    Only the final IEF step is returned (and supervised), as in SPIN; out_0 keeps the PyMAF convention that
    index 0 is the mean-parameter output. ``backbone``: images -> (map, global feature [B, backbone_channels])
    (``pymaf.model.backbone.build_backbone``); ``n_iter``: IEF steps (3).
    """

    def __init__(self, smpl: nn.Module, mean_params: dict, backbone: nn.Module, backbone_channels: int,
                 n_iter: int = 3) -> None:
        super().__init__(smpl, mean_params, None)                   # no sampled mesh: no sparse LBS
        self.n_iter = int(n_iter)                                     # >= 1 (config RANGES: model.hmr_iters)
        self.feature_extractor = backbone
        self.regressor = Regressor(backbone_channels)

    def forward(self, images: torch.Tensor, full_outputs: bool = False) -> dict[str, list]:
        """``full_outputs`` is accepted for interface parity with PyMAF (HMR has no sparse path)."""
        b = images.shape[0]
        _, g_feat = self.feature_extractor(images)                    # [B,C]
        pose, shape, cam = (p.expand(b, -1) for p in (self.init_pose, self.init_shape, self.init_cam))
        for _ in range(self.n_iter):                                  # IEF: Θ_{t+1} = Θ_t + R(φ_g, Θ_t)
            pose, shape, cam = self.regressor(g_feat, pose, shape, cam)
        return {"smpl_out": [self.mean_output(b), self.full_output(pose, shape, cam)], "dp_out": []}
