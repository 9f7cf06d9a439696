"""HMR/SPIN baseline of Table 1 (spec §1.13): ResNet-50 → global feature → one regressor iterated (IEF).

State-dict names are SPIN's flat ones (``conv1.weight``, ``layer1.0.conv1.weight``, ``fc1.weight``,
``decpose.weight``, ``init_pose``, ...), so SPIN's ``model_checkpoint.pt`` loads through
``pymaf.checkpoint.load_checkpoint``. The IEF iterations share weights and the state is *not* detached.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .backbone import add_resnet50_trunk, resnet_trunk_forward
from .regressor import add_regressor_layers, regressor_step
from .smpl_head import ParametricBodyModel


class HMR(ParametricBodyModel):
    """images [B,3,224,224] -> {'smpl_out': [out_0 (mean parameters), out_final], 'dp_out': []}.

    Only the final IEF step is returned (and supervised), as in SPIN; out_0 keeps the PyMAF convention that
    index 0 is the mean-parameter output. ``n_iter``: IEF steps (3).
    """

    def __init__(self, smpl: nn.Module, mean_params: dict, n_iter: int = 3,
                 vertex_ids: torch.Tensor | np.ndarray | list | None = None) -> None:
        super().__init__(smpl, mean_params, vertex_ids)
        if n_iter < 1:
            raise ValueError(f"model.hmr_iters must be >= 1, got {n_iter}")
        self.n_iter = int(n_iter)
        add_resnet50_trunk(self)
        add_regressor_layers(self, 2048)

    def forward(self, images: torch.Tensor, full_outputs: bool = False, reference: bool = False,
                dmap: torch.Tensor | None = None) -> dict[str, list]:
        """``full_outputs``/``reference`` are accepted for interface parity with PyMAF (HMR has no sparse path);
        ``reference=True`` computes out_0 with a full SMPL forward instead of the precomputed one."""
        b = images.shape[0]
        _, g_feat = resnet_trunk_forward(self, images)                # [B,2048]
        pose, shape, cam = (p.expand(b, -1) for p in (self.init_pose, self.init_shape, self.init_cam))
        out0 = self.full_output(pose, shape, cam, smpl_layer=True) if reference else self.mean_output(b)
        for _ in range(self.n_iter):                                  # IEF: Θ_{t+1} = Θ_t + R(φ_g, Θ_t)
            pose, shape, cam = regressor_step(self, g_feat, pose, shape, cam)
        return {"smpl_out": [out0, self.full_output(pose, shape, cam, smpl_layer=reference)], "dp_out": []}
