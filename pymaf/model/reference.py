"""The straightforward official-style forward of a PyMAF or HMR network (spec §1.10, §8): the baseline of
``scripts/benchmark_inference.py`` and what tests compare the fast ``model(images)`` against (same numbers)."""
from __future__ import annotations

import torch
from torch import nn

from .hmr import HMR


def reference_forward(model: nn.Module, images: torch.Tensor, dmap: torch.Tensor | None = None) -> dict[str, list]:
    """``model``'s outputs computed the official way: the SMPL layer (smplx) on the mean parameters for every
    sample and at every iteration, full outputs everywhere, PyMAF's IUV head always (when it has one), and the
    dense ``dmap`` [431,6890] down-sampling when given (else index selection).

    images [B,3,224,224] -> ``{'smpl_out': [out_0, ..., out_T], 'dp_out': [iuv] or []}`` as ``model(images,
    full_outputs=True)``; for HMR only out_0 and the final IEF step.
    """
    b = images.shape[0]
    feat, g_feat = model.feature_extractor(images)
    pose, shape, cam = (p.expand(b, -1) for p in (model.init_pose, model.init_shape, model.init_cam))
    smpl_out = [model.full_output(pose, shape, cam, smpl_layer=True)]
    if isinstance(model, HMR):                                         # IEF on the global feature
        for _ in range(model.n_iter):
            pose, shape, cam = model.regressor(g_feat, pose, shape, cam)
        return {"smpl_out": smpl_out + [model.full_output(pose, shape, cam, smpl_layer=True)], "dp_out": []}
    for t in range(model.n_iter):
        feat = model.deconv_stage(t, feat)
        out = smpl_out[-1]
        pose, shape, cam = (out[k].detach() for k in ("pred_pose", "pred_shape", "pred_cam"))
        verts = out["verts"].detach()                                  # M̃_t: dense Dmap, or index selection
        verts = (dmap.to(verts.dtype) @ verts if dmap is not None else verts[:, model.vertex_ids]) if t else None
        phi = model.maf_extractor[t](feat, model.sampling_points(t, verts, cam))
        smpl_out.append(model.full_output(*model.regressor[t](phi, pose, shape, cam), smpl_layer=True))
    return {"smpl_out": smpl_out, "dp_out": [model.dp_head(feat)] if model.dp_head is not None else []}
