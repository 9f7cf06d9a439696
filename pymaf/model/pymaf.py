"""PyMAF: pyramidal mesh alignment feedback (paper §3, spec §1).

Module names follow the official ``pymaf_net`` state dict (``feature_extractor``, ``deconv_layers.0..8``,
``maf_extractor.k``, ``regressor.k``, ``dp_head``) so that ``PyMAF_model_checkpoint.pt`` loads through
``pymaf.checkpoint.load_checkpoint``. Differences from the official module, none of which changes a number:
one shared SMPL layer instead of one per regressor (§10.10); the mean parameters ``init_*`` live on the model
(the official ``regressor.0.init_*``); index selection instead of three dense ``Dmap`` buffers (§10.11);
no state on the MAF extractors (§10.12); the mean-parameter output is precomputed (§8.1); at inference the
intermediate meshes are 431-vertex sparse LBS (§8.2) and the IUV head is skipped (§10.13).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pymaf.body.joints import IDX431
from pymaf.geometry import project_crop

from .body_output import ParametricBodyModel
from .iuv_head import IUVHead
from .maf_extractor import MAFExtractor
from .pyramid import make_deconv_layers, make_points_grid, stage_slices
from .regressor import Regressor

GRID_SIZE = 21  # iteration 0 samples a 21×21 grid (spec §1.4)


class PyMAF(ParametricBodyModel):
    """images [B,3,224,224] (ImageNet-normalised RGB) -> {'smpl_out': [out_0..out_T], 'dp_out': [...]}.

    Args:
        cfg: ``pymaf.config.ModelConfig`` (n_iter, mlp_dim, deconv_filters, deconv_kernels, aux_supv_on).
        smpl: the shared body layer (``pymaf.body.smpl.SMPL``).
        mean_params: dict(pose [144], shape [10], cam [3]) (``load_mean_params``).
        backbone, backbone_channels: images -> (map [B,C,7,7], ...) and C (``pymaf.model.backbone.build_backbone``).
        vertex_ids: the 431 down-sampled vertex ids (``load_mesh_downsampling``), default Appendix A.
    """

    def __init__(self, cfg, smpl: nn.Module, mean_params: dict, backbone: nn.Module, backbone_channels: int,
                 vertex_ids: torch.Tensor | np.ndarray | list | None = None) -> None:
        super().__init__(smpl, mean_params, IDX431 if vertex_ids is None else vertex_ids)   # Appendix A default
        self.n_iter = int(cfg.n_iter)
        self.stages = stage_slices(self.n_iter, len(cfg.deconv_filters))
        self.feature_extractor = backbone
        self.deconv_layers = make_deconv_layers(backbone_channels, list(cfg.deconv_filters), list(cfg.deconv_kernels))
        self.register_buffer("points_grid", make_points_grid(GRID_SIZE), persistent=False)   # [1,2,441]
        self.maf_extractor = nn.ModuleList(MAFExtractor(list(cfg.mlp_dim), cfg.maf_last_slope) for _ in range(self.n_iter))
        n_points = [GRID_SIZE ** 2] + [len(self.vertex_ids)] * (self.n_iter - 1)
        self.regressor = nn.ModuleList(Regressor(cfg.mlp_dim[-1] * n) for n in n_points)
        self.dp_head = IUVHead(cfg.deconv_filters[-1]) if cfg.aux_supv_on else None

    def deconv_stage(self, t: int, feat: torch.Tensor) -> torch.Tensor:
        """φ_s^t: apply the deconv blocks of iteration t (spec §1.3) to the previous map (not detached)."""
        for i in range(*self.stages[t]):                              # (no Sequential slice: compile-friendly)
            feat = self.deconv_layers[i](feat)
        return feat

    def sampling_points(self, t: int, verts: torch.Tensor | None, cam: torch.Tensor) -> torch.Tensor:
        """X_t [B,N,2]: the 21×21 grid for t = 0, else Π(M̃_t) = ``verts`` (the 431 vertices of Θ_t, [B,431,3])
        projected with the detached camera (spec §1.10)."""
        if t == 0:
            return self.points_grid.transpose(1, 2).expand(cam.shape[0], -1, -1)
        with torch.autocast(device_type=cam.device.type, enabled=False):
            return project_crop(verts, cam.to(verts.dtype))

    def forward(self, images: torch.Tensor, full_outputs: bool = False) -> dict[str, list]:
        """Run the mesh alignment feedback loop (paper Eq. 3).

        images: [B,3,224,224]. Returns ``{'smpl_out': [out_0, ..., out_T], 'dp_out': [iuv] or []}``:
        out_0 is the mean-parameter output, out_{t+1} the output of regressor t (keys: ``body_output`` docs).

        * training mode, or ``full_outputs=True``: every out is a full dict, and ``dp_out`` holds the IUV maps
          (when the model has a ``dp_head``);
        * eval mode (default): the intermediate outs are *sparse* (parameters, ``rotmat``, ``verts_431``), the last
          one is full, and the IUV head is skipped (``dp_out == []``).

        The meshes come from :class:`~pymaf.model.body_output.FastLBS` (the SMPL skinning, compile-friendly), also
        in training; out_0 is the precomputed mean output (expanded views). The straightforward official
        computation (same numbers) is :func:`pymaf.model.reference.reference_forward`.
        """
        full = self.training or full_outputs
        feat, _ = self.feature_extractor(images)                      # backbone map [B,C,7,7]
        out = self.mean_output(images.shape[0])                       # Θ_0: mean parameters, precomputed mesh
        smpl_out = [out]
        for t in range(self.n_iter):
            feat = self.deconv_stage(t, feat)                         # φ_s^t
            pose, shape, cam = (out[k].detach() for k in ("pred_pose", "pred_shape", "pred_cam"))  # Θ_t (§1.10)
            verts = self.downsampled_verts(out).detach() if t else None   # M̃_t [B,431,3]
            points = self.sampling_points(t, verts, cam)              # X_t = grid, or Π(M̃_t) for t > 0
            phi = self.maf_extractor[t](feat, points)                 # φ_p^t = f(F(φ_s^t, X_t))
            pose, shape, cam = self.regressor[t](phi, pose, shape, cam)   # Θ_{t+1} = Θ_t + R_t(Θ_t, φ_p^t)
            out = (self.full_output if full or t == self.n_iter - 1 else self.sparse_output)(pose, shape, cam)
            smpl_out.append(out)
        return {"smpl_out": smpl_out, "dp_out": [self.dp_head(feat)] if (self.dp_head is not None and full) else []}
