"""From regressed parameters to the per-iteration output dict: one shared SMPL layer, a 431-vertex sparse LBS,
and the mean-parameter output precomputed once (spec §1.7, §8.1-8.2, §10.10-10.11).

Output dict of one iteration (spec §1.7), all batched:

=============  =============  =========================================================================
key            shape          meaning
=============  =============  =========================================================================
theta          [B,85]         cat(cam 3, shape 10, axis-angle pose 72)
verts          [B,6890,3]     SMPL vertices (model frame, no translation)
kp_2d          [B,49,2]       the 49 joints projected with the crop camera, normalised [-1, 1] (§1.8)
kp_3d          [B,49,3]       the 49 joints of §2.2
smpl_kp_3d     [B,24,3]       the 24 SMPL kinematic joints
rotmat         [B,24,3,3]     joint rotations
pred_cam       [B,3]          crop camera (s, tx, ty)
pred_shape     [B,10]         betas
pred_pose      [B,144]        24 × 6D (row-major 3×2, §1.9)
=============  =============  =========================================================================

A *sparse* output (intermediate iterations at inference) carries only ``pred_cam``, ``pred_shape``,
``pred_pose``, ``rotmat`` and ``verts_431`` [B,431,3] (the down-sampled mesh the next iteration projects).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pymaf.body.joints import H36M_TO_J14
from pymaf.geometry import project_crop, rot6d_to_rotmat, rotmat_to_axis_angle

FULL_KEYS = ("theta", "verts", "kp_2d", "kp_3d", "smpl_kp_3d", "rotmat", "pred_cam", "pred_shape", "pred_pose")
SPARSE_KEYS = ("pred_cam", "pred_shape", "pred_pose", "rotmat", "verts_431")


class FastLBS(nn.Module):
    """SMPL linear blend skinning for inference and training, exact up to float rounding (spec §8.2).

    * the rest joints come from J = J_reg·(T + S·β) = (J_reg·T) + (J_reg·S)·β, precomputed in float64, so no
      full-resolution array is needed for them;
    * the kinematic chain is evaluated level by level (9 batched matmuls for SMPL's 24 joints, no ``.item()``),
      so ``torch.compile`` captures it in one graph and GPUs see few kernels;
    * :meth:`subset` skins only the selected rows (431 at the intermediate iterations); :meth:`full` skins the
      whole mesh with the SMPL layer's own arrays (no copies).

    All buffers are non-persistent. ``smpl``: the body layer (smplx arrays ``v_template``, ``shapedirs``,
    ``posedirs``, ``J_regressor``, ``lbs_weights``, ``parents``); ``vertex_ids``: rows for :meth:`subset`.
    """

    def __init__(self, smpl: nn.Module, vertex_ids: torch.Tensor | None) -> None:
        super().__init__()
        dtype = smpl.v_template.dtype
        j_reg = smpl.J_regressor.double()
        self.register_buffer("j_template", (j_reg @ smpl.v_template.double()).to(dtype), persistent=False)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcl->jcl", j_reg, smpl.shapedirs.double()).to(dtype),
                             persistent=False)                                   # [24,3,L]
        if vertex_ids is not None:
            ids = vertex_ids.long()
            n = smpl.v_template.shape[0]
            posedirs = smpl.posedirs.reshape(-1, n, 3)[:, ids]                   # [207,K,3]
            for name, buf in (("sub_v_template", smpl.v_template[ids]), ("sub_shapedirs", smpl.shapedirs[ids]),
                              ("sub_posedirs", posedirs.reshape(posedirs.shape[0], -1)),
                              ("sub_lbs_weights", smpl.lbs_weights[ids])):
                self.register_buffer(name, buf.contiguous(), persistent=False)
        parents = [int(p) for p in smpl.parents.tolist()]
        depth = [0] * len(parents)
        for j in range(1, len(parents)):
            depth[j] = depth[parents[j]] + 1
        levels = [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]
        self.num_levels = len(levels)
        for d, joints in enumerate(levels):
            self.register_buffer(f"level{d}", torch.tensor(joints), persistent=False)
            if d:  # position of each parent inside the previous level
                self.register_buffer(f"level{d}_parent",
                                     torch.tensor([levels[d - 1].index(parents[j]) for j in joints]), persistent=False)
        order = [j for lv in levels for j in lv]
        self.register_buffer("level_inverse", torch.tensor([order.index(j) for j in range(len(parents))]),
                             persistent=False)
        self.register_buffer("parent_of", torch.tensor([max(p, 0) for p in parents]), persistent=False)
        self.register_buffer("has_parent", torch.tensor([float(p >= 0) for p in parents]), persistent=False)

    def transforms(self, betas: torch.Tensor, rotmat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """betas [B,L], rotmat [B,24,3,3] -> (posed joints [B,24,3], skinning transforms [B,24,3,4]).

        The transforms map rest-pose (shaped) points to posed points: [R_world | t_world − R_world·J_rest]."""
        rest = self.j_template + torch.einsum("bl,jcl->bjc", betas, self.j_shapedirs)           # [B,24,3]
        rel = rest - rest[:, self.parent_of] * self.has_parent[:, None]                          # bone vectors
        rots, trans = [rotmat[:, self.level0]], [rest[:, self.level0]]
        for d in range(1, self.num_levels):
            idx, par = getattr(self, f"level{d}"), getattr(self, f"level{d}_parent")
            parent_rot = rots[-1][:, par]
            trans.append((parent_rot @ rel[:, idx].unsqueeze(-1)).squeeze(-1) + trans[-1][:, par])
            rots.append(parent_rot @ rotmat[:, idx])
        world_rot = torch.cat(rots, dim=1)[:, self.level_inverse]                               # [B,24,3,3]
        posed = torch.cat(trans, dim=1)[:, self.level_inverse]                                  # [B,24,3]
        offset = posed - (world_rot @ rest.unsqueeze(-1)).squeeze(-1)
        return posed, torch.cat((world_rot, offset.unsqueeze(-1)), dim=-1)

    @staticmethod
    def skin(v_template: torch.Tensor, shapedirs: torch.Tensor, posedirs: torch.Tensor, weights: torch.Tensor,
             betas: torch.Tensor, rotmat: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
        """Shape + pose blend shapes, then LBS of K rows: -> [B,K,3]."""
        b = betas.shape[0]
        eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
        pose_feature = (rotmat[:, 1:] - eye).reshape(b, -1)                                      # [B,207]
        v = v_template + torch.einsum("bl,kcl->bkc", betas, shapedirs) + (pose_feature @ posedirs).reshape(b, -1, 3)
        T = (weights @ transforms.reshape(b, -1, 12)).reshape(b, -1, 3, 4)                       # [B,K,3,4]
        return (T[..., :3] @ v.unsqueeze(-1)).squeeze(-1) + T[..., 3]

    def subset(self, betas: torch.Tensor, rotmat: torch.Tensor) -> torch.Tensor:
        """The selected vertices [B,K,3] (the rows ``vertex_ids`` of the full mesh)."""
        _, transforms = self.transforms(betas, rotmat)
        return self.skin(self.sub_v_template, self.sub_shapedirs, self.sub_posedirs, self.sub_lbs_weights,
                         betas, rotmat, transforms)

    def full(self, smpl: nn.Module, betas: torch.Tensor, rotmat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(vertices [B,6890,3], posed SMPL joints [B,24,3]) with ``smpl``'s arrays."""
        posed, transforms = self.transforms(betas, rotmat)
        verts = self.skin(smpl.v_template, smpl.shapedirs, smpl.posedirs, smpl.lbs_weights, betas, rotmat, transforms)
        return verts, posed


def joints49(smpl: nn.Module, verts: torch.Tensor, smpl_joints: torch.Tensor) -> torch.Tensor:
    """The 49 joints of spec §2.1-2.2 from vertices [B,6890,3] and posed SMPL joints [B,24,3] with ``smpl``'s
    arrays (the 21 vertex joints, the 9 ``J_regressor_extra`` rows, ``joint_map``) -> [B,49,3]."""
    return torch.cat((smpl_joints, verts[:, smpl.vertex_joint_selector.extra_joints_idxs],
                      torch.einsum("jv,bvc->bjc", smpl.J_regressor_extra, verts)), dim=1)[:, smpl.joint_map]


def _no_autocast(t: torch.Tensor):
    """SMPL and the camera math always run in float32 (bf16 vertices would be off by millimetres)."""
    return torch.autocast(device_type=t.device.type, enabled=False)


class ParametricBodyModel(nn.Module):
    """Base of PyMAF and HMR: Θ_0 (the mean parameters), the shared SMPL layer and the output dicts.

    smpl: the body layer (``pymaf.body.smpl.SMPL``; no persistent buffers); mean_params: dict(pose [144],
    shape [10], cam [3]) from ``load_mean_params``; vertex_ids: the down-sampled vertex ids ([431],
    default Appendix A's IDX431), or None to skip the sparse LBS (HMR needs no sampled mesh).

    Buffers: ``init_pose`` [1,144], ``init_shape`` [1,10], ``init_cam`` [1,3] (persistent, the names of SPIN's
    HMR); the mean-parameter output ``mean_*`` (non-persistent), recomputed after every ``load_state_dict``.
    """

    def __init__(self, smpl: nn.Module, mean_params: dict, vertex_ids: torch.Tensor | np.ndarray | list | None) -> None:
        super().__init__()
        self.smpl = smpl
        for key, n in (("pose", 144), ("shape", 10), ("cam", 3)):
            value = torch.as_tensor(np.asarray(mean_params[key], dtype=np.float32)).reshape(1, n)
            self.register_buffer(f"init_{key}", value)
        ids = None
        if vertex_ids is not None:
            ids = torch.as_tensor(np.asarray(vertex_ids, dtype=np.int64))
            self.register_buffer("vertex_ids", ids, persistent=False)
        self.lbs = FastLBS(smpl, ids)
        for key in ("theta", "verts", "kp_2d", "kp_3d", "smpl_kp_3d", "rotmat"):
            self.register_buffer(f"mean_{key}", torch.empty(0), persistent=False)
        self.refresh_mean_output()
        self.register_load_state_dict_post_hook(lambda module, incompatible_keys: module.refresh_mean_output())

    # ----------------------------------------------------------------------------------- mean parameters
    @torch.no_grad()
    def refresh_mean_output(self) -> None:
        """Recompute the output of Θ_0 (the input-independent iteration 0, spec §8.1) from ``init_*``."""
        out = self.full_output(self.init_pose, self.init_shape, self.init_cam, smpl_layer=True)
        for key in ("theta", "verts", "kp_2d", "kp_3d", "smpl_kp_3d", "rotmat"):
            setattr(self, f"mean_{key}", out[key].detach().clone())

    def mean_output(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Output of the mean parameters for a batch: the precomputed tensors expanded (views, no copy)."""
        out = {key: getattr(self, f"mean_{key}") for key in ("theta", "verts", "kp_2d", "kp_3d", "smpl_kp_3d", "rotmat")}
        out.update(pred_cam=self.init_cam, pred_shape=self.init_shape, pred_pose=self.init_pose)
        return {k: v.expand(batch_size, *v.shape[1:]) for k, v in out.items()}

    # ----------------------------------------------------------------------------------- output dicts
    def full_output(self, pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor,
                    smpl_layer: bool = False) -> dict[str, torch.Tensor]:
        """pose [B,144] (6D), shape [B,10], cam [B,3] -> the full output dict (module docstring).

        ``smpl_layer=True`` runs the SMPL layer itself (smplx; the straightforward path); the default runs the
        same skinning with :class:`FastLBS` and assembles the 49 joints of §2.1-2.2 from the layer's arrays.
        """
        with _no_autocast(pose):
            pose, shape, cam = (x.to(self.smpl.v_template.dtype) for x in (pose, shape, cam))
            b = pose.shape[0]
            rotmat = rot6d_to_rotmat(pose.reshape(b, 24, 6))
            if smpl_layer:
                body = self.smpl(betas=shape, body_pose=rotmat[:, 1:], global_orient=rotmat[:, :1])
                verts, joints, smpl_joints = body.vertices, body.joints, body.smpl_joints
            else:
                verts, smpl_joints = self.lbs.full(self.smpl, shape, rotmat)
                joints = joints49(self.smpl, verts, smpl_joints)
            axis_angle = rotmat_to_axis_angle(rotmat).reshape(b, 72)
            return {"theta": torch.cat((cam, shape, axis_angle), dim=1), "verts": verts,
                    "kp_2d": project_crop(joints, cam), "kp_3d": joints, "smpl_kp_3d": smpl_joints,
                    "rotmat": rotmat, "pred_cam": cam, "pred_shape": shape, "pred_pose": pose}

    def sparse_output(self, pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameters plus the down-sampled mesh ``verts_431`` [B,431,3] only (intermediate iterations at inference)."""
        with _no_autocast(pose):
            pose, shape, cam = (x.to(self.smpl.v_template.dtype) for x in (pose, shape, cam))
            rotmat = rot6d_to_rotmat(pose.reshape(pose.shape[0], 24, 6))
            return {"pred_cam": cam, "pred_shape": shape, "pred_pose": pose, "rotmat": rotmat,
                    "verts_431": self.lbs.subset(shape, rotmat)}

    def downsampled_verts(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """M̃_t: the 431 selected vertices of an output, [B,431,3] (an index selection, spec §1.6, §10.11)."""
        return out["verts_431"] if "verts_431" in out else out["verts"].index_select(1, self.vertex_ids)

    # ----------------------------------------------------------------------------------- evaluation joints
    def h36m_joints(self, verts: torch.Tensor) -> torch.Tensor:
        """The 17 H36M-regressor joints (§2.3 row order): verts [B,6890,3] -> [B,17,3]. Not computed in forward."""
        with _no_autocast(verts):
            return self.smpl.h36m_joints(verts.to(self.smpl.v_template.dtype))

    def lsp14_joints(self, verts: torch.Tensor) -> torch.Tensor:
        """The 14 LSP-order evaluation joints ``h36m_joints(verts)[:, H36M_TO_J14]`` [B,14,3] (not pelvis-centred)."""
        return self.h36m_joints(verts)[:, H36M_TO_J14]
