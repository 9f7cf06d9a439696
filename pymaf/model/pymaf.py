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

from pymaf.geometry import project_crop

from .backbone import ResNetBackbone
from .iuv_head import IUVHead
from .maf_extractor import MAFExtractor
from .pyramid import make_deconv_layers, make_points_grid, stage_slices
from .regressor import Regressor
from .smpl_head import ParametricBodyModel, default_vertex_ids

GRID_SIZE = 21  # iteration 0 samples a 21×21 grid (spec §1.4)


class PyMAF(ParametricBodyModel):
    """images [B,3,224,224] (ImageNet-normalised RGB) -> {'smpl_out': [out_0..out_T], 'dp_out': [...]}.

    Args:
        cfg: ``pymaf.config.ModelConfig`` (n_iter, mlp_dim, deconv_filters, deconv_kernels, aux_supv_on).
        smpl: the shared body layer (``pymaf.body.smpl.SMPL``).
        mean_params: dict(pose [144], shape [10], cam [3]) (``load_mean_params``).
        vertex_ids: the 431 down-sampled vertex ids (``load_mesh_downsampling``), default Appendix A.
    """

    def __init__(self, cfg, smpl: nn.Module, mean_params: dict,
                 vertex_ids: torch.Tensor | np.ndarray | list | None = None) -> None:
        ids = default_vertex_ids() if vertex_ids is None else vertex_ids
        super().__init__(smpl, mean_params, ids)
        self.n_iter = int(cfg.n_iter)
        self.stages = stage_slices(self.n_iter, len(cfg.deconv_filters))
        self.feature_extractor = ResNetBackbone()
        self.deconv_layers = make_deconv_layers(2048, list(cfg.deconv_filters), list(cfg.deconv_kernels))
        self.register_buffer("points_grid", make_points_grid(GRID_SIZE), persistent=False)   # [1,2,441]
        self.maf_extractor = nn.ModuleList(MAFExtractor(list(cfg.mlp_dim)) for _ in range(self.n_iter))
        n_points = [GRID_SIZE ** 2] + [len(self.vertex_ids)] * (self.n_iter - 1)
        self.regressor = nn.ModuleList(Regressor(cfg.mlp_dim[-1] * n) for n in n_points)
        self.dp_head = IUVHead(cfg.deconv_filters[-1]) if cfg.aux_supv_on else None

    def deconv_stage(self, t: int, feat: torch.Tensor) -> torch.Tensor:
        """φ_s^t: apply the deconv blocks of iteration t (spec §1.3) to the previous map (not detached)."""
        start, stop = self.stages[t]
        for i in range(start, stop):
            feat = self.deconv_layers[i](feat)
        return feat

    def sampling_points(self, t: int, out: dict[str, torch.Tensor], cam: torch.Tensor,
                        dmap: torch.Tensor | None = None) -> torch.Tensor:
        """X_t [B,N,2]: the 21×21 grid for t = 0, else Π(M̃_t) = the 431 vertices of ``out`` projected with the
        detached camera (spec §1.10). ``dmap`` [431,6890] reproduces the official dense down-sampling."""
        b = cam.shape[0]
        if t == 0:
            return self.points_grid.transpose(1, 2).expand(b, -1, -1)
        if dmap is not None:
            verts = torch.matmul(dmap.to(out["verts"].dtype), out["verts"].detach())
        else:
            verts = self.downsampled_verts(out).detach()
        with torch.autocast(device_type=cam.device.type, enabled=False):
            return project_crop(verts, cam.to(verts.dtype))

    def forward(self, images: torch.Tensor, full_outputs: bool = False, reference: bool = False,
                dmap: torch.Tensor | None = None) -> dict[str, list]:
        """Run the mesh alignment feedback loop (paper Eq. 3).

        images: [B,3,224,224]. Returns ``{'smpl_out': [out_0, ..., out_T], 'dp_out': [iuv] or []}``:
        out_0 is the mean-parameter output, out_{t+1} the output of regressor t (keys: ``smpl_head`` docs).

        * training mode, or ``full_outputs=True``: every out is a full dict, and ``dp_out`` holds the IUV maps
          (when the model has a ``dp_head``);
        * eval mode (default): the intermediate outs are *sparse* (parameters, ``rotmat``, ``verts_431``), the last
          one is full, and the IUV head is skipped (``dp_out == []``);
        * ``reference=True``: the straightforward official computation (spec §1.10, §8): the SMPL layer (smplx) on
          the mean parameters for every sample and at every iteration, the IUV head always, and the dense
          ``dmap`` [431,6890] down-sampling when given. Same numbers; used as the baseline and in tests.

        Outside ``reference`` the meshes come from :class:`~pymaf.model.smpl_head.FastLBS` (the same skinning,
        compile-friendly), also in training; out_0 is always the precomputed mean output (expanded views).
        """
        full = self.training or full_outputs or reference
        b = images.shape[0]
        feat, _ = self.feature_extractor(images)                      # layer4 map [B,2048,7,7]
        if reference:
            out = self.full_output(*(p.expand(b, -1) for p in (self.init_pose, self.init_shape, self.init_cam)),
                                   smpl_layer=True)
        else:
            out = self.mean_output(b)                                 # Θ_0: mean parameters, precomputed mesh
        smpl_out = [out]
        for t in range(self.n_iter):
            feat = self.deconv_stage(t, feat)                         # φ_s^t
            pose, shape, cam = (out["pred_pose"].detach(), out["pred_shape"].detach(),
                                out["pred_cam"].detach())             # Θ_t, detached (spec §1.10)
            points = self.sampling_points(t, out, cam, dmap)          # X_t = grid, or Π(M̃_t) for t > 0
            phi = self.maf_extractor[t](feat, points)                 # φ_p^t = f(F(φ_s^t, X_t))
            pose, shape, cam = self.regressor[t](phi, pose, shape, cam)   # Θ_{t+1} = Θ_t + R_t(Θ_t, φ_p^t)
            last = t == self.n_iter - 1
            if full or last:
                out = self.full_output(pose, shape, cam, smpl_layer=reference)
            else:
                out = self.sparse_output(pose, shape, cam)
            smpl_out.append(out)
        dp_out = [self.dp_head(feat)] if (self.dp_head is not None and full) else []
        return {"smpl_out": smpl_out, "dp_out": dp_out}
