"""3D pose and mesh protocols: 3DPW, H36M P1/P2/P2-MoSh, MPI-INF-3DHP, synthetic-val (spec §5.1-5.2).

Predicted joints: ``J_h36m @ verts`` (neutral SMPL's H36M regressor), pelvis = row 0, select
``H36M_TO_J14`` (``J17`` for MPI-INF-3DHP), subtract the pelvis. Errors in millimetres.
GT joints: for the mesh protocols (3DPW, synthetic) the same recipe on the GT mesh, for the others
``pose_3d[:, J24_TO_J14|J17, :3]`` (already root-centred in the files).
PVE (no alignment, no centring) only where a real GT mesh exists: 3DPW (gendered GT mesh: 1 = female,
else male), h36m-p2-mosh and synthetic-val (neutral, or gendered when the sample has a gender). The
official code also printed a PVE against the zero-pose mesh of h36m-p1/p2; that number is meaningless
and is not reported (§10.16 fix).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pymaf import metrics
from pymaf.body.joints import H36M_TO_J14, H36M_TO_J17, J24_TO_J14, J24_TO_J17

M_TO_MM = 1000.0


@dataclass(frozen=True)
class Pose3DProtocol:
    name: str
    gt_joints: str            # 'mesh' (H36M regressor on the GT mesh) | 'pose_3d' (the npz S)
    num_joints: int           # 14 or 17
    pve: str                  # 'none' | 'neutral' | '3dpw' (1 female else male) | 'auto' (0 m, 1 f, else neutral)
    pck: bool = False         # PCK@150mm and AUC (MPI-INF-3DHP)
    per_action: bool = False  # H36M P2: PA-MPJPE per action parsed from the image name

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "gt_joints": self.gt_joints, "num_joints": self.num_joints,
                "pred_joints": f"J_regressor_h36m @ verts, pelvis row 0, H36M_TO_J{self.num_joints}",
                "pve_gt_mesh": self.pve, "pck_auc": self.pck, "per_action": self.per_action,
                "units": "mm (pck, auc: %)", "reference": "spec §5.1-5.2, §10.16"}


POSE3D_PROTOCOLS: dict[str, Pose3DProtocol] = {
    "3dpw": Pose3DProtocol("3dpw", "mesh", 14, "3dpw"),
    "h36m-p1": Pose3DProtocol("h36m-p1", "pose_3d", 14, "none"),
    "h36m-p2": Pose3DProtocol("h36m-p2", "pose_3d", 14, "none", per_action=True),
    "h36m-p2-mosh": Pose3DProtocol("h36m-p2-mosh", "pose_3d", 14, "neutral", per_action=True),
    "mpi-inf-3dhp": Pose3DProtocol("mpi-inf-3dhp", "pose_3d", 17, "none", pck=True),
    "synthetic-val": Pose3DProtocol("synthetic-val", "mesh", 14, "auto"),
}


def h36m_action(imgname: str) -> str:
    """H36M action from an image name: ``basename.split('.')[0].split('_')[1]`` (§5.2)."""
    parts = PurePath(imgname).name.split(".")[0].split("_")
    return parts[1] if len(parts) > 1 else "unknown"


def select_centre(joints_h36m: torch.Tensor, num_joints: int) -> torch.Tensor:
    """[B,17,3] H36M-regressor joints -> [B,num_joints,3] LSP-ordered, minus the pelvis (row 0), §5.1."""
    sel = H36M_TO_J14 if num_joints == 14 else H36M_TO_J17
    return joints_h36m[:, sel] - joints_h36m[:, :1]


class Pose3DEvaluator:
    """Accumulates per-sample errors on the device; ``smpl`` maps 'neutral'|'male'|'female' -> SMPL layer
    (with the H36M regressor; male/female needed only for gendered GT meshes)."""

    def __init__(self, protocol: Pose3DProtocol | str, smpl: Mapping[str, torch.nn.Module]):
        self.protocol = POSE3D_PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
        if "neutral" not in smpl:
            raise ValueError("Pose3DEvaluator: smpl must contain a 'neutral' layer")
        self.smpl = dict(smpl)
        self._err: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._keep: dict[str, list[Any]] = defaultdict(list)

    # -- GT -----------------------------------------------------------------------------------------
    def _layer(self, gender: str) -> torch.nn.Module:
        if gender not in self.smpl:
            raise ValueError(f"protocol {self.protocol.name} needs the {gender} SMPL model (GT meshes)")
        return self.smpl[gender]

    def _mesh(self, gender: str, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        out = self._layer(gender)(betas=betas.float(), body_pose=pose[:, 3:].float(),
                                  global_orient=pose[:, :3].float(), pose2rot=True)
        return out.vertices

    def gt_mesh(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """GT vertices [B,6890,3] from batch pose [B,72] / betas [B,10] with the protocol's gender rule."""
        pose, betas = batch["pose"], batch["betas"]
        mode = self.protocol.pve
        if mode == "neutral":
            return self._mesh("neutral", pose, betas)
        g = batch.get("gender")
        g = torch.full((pose.shape[0],), -1, device=pose.device) if g is None else torch.as_tensor(g, device=pose.device)
        if mode == "3dpw":
            groups = {"female": g == 1, "male": g != 1}
        else:  # 'auto'
            groups = {"male": g == 0, "female": g == 1, "neutral": (g != 0) & (g != 1)}
        verts = pose.new_empty(pose.shape[0], 6890, 3, dtype=torch.float32)
        for gender, m in groups.items():
            if bool(m.any()):
                v = self._mesh(gender, pose[m], betas[m])
                if verts.shape[1] != v.shape[1]:
                    verts = pose.new_empty(pose.shape[0], v.shape[1], 3, dtype=torch.float32)
                verts[m] = v
        return verts

    # -- accumulate -----------------------------------------------------------------------------------
    def update(self, batch: Mapping[str, Any], pred: Mapping[str, torch.Tensor]) -> dict[str, float]:
        p = self.protocol
        pred_verts = pred["verts"].float()
        pred_h36m = self.smpl["neutral"].h36m_joints(pred_verts)                 # [B,17,3]
        pred_j = select_centre(pred_h36m, p.num_joints)
        gt_verts = None
        if p.gt_joints == "mesh" or p.pve != "none":
            gt_verts = self.gt_mesh(batch)
        if p.gt_joints == "mesh":
            # every SMPL layer loads the same J_regressor_h36m file: the neutral layer's regressor serves
            gt_j = select_centre(self.smpl["neutral"].h36m_joints(gt_verts), p.num_joints)
        else:
            sel = J24_TO_J14 if p.num_joints == 14 else J24_TO_J17
            gt_j = batch["pose_3d"][:, sel, :3].float()
        e = self._err
        e["mpjpe"].append(metrics.mpjpe(pred_j, gt_j) * M_TO_MM)
        e["pa_mpjpe"].append(metrics.pa_mpjpe(pred_j.double(), gt_j.double()).float() * M_TO_MM)
        if gt_verts is not None and p.pve != "none":
            e["pve"].append(metrics.pve(pred_verts, gt_verts) * M_TO_MM)
        if p.pck:
            e["pck"].append(metrics.pck(pred_j, gt_j, 0.15) * 100.0)
            e["auc"].append(metrics.auc(pred_j, gt_j) * 100.0)
        self._keep["pred_joints_h36m"].append(pred_h36m.detach())
        if "theta" in pred:
            self._keep["theta"].append(pred["theta"].detach())
        names = batch.get("imgname")
        if names is not None:
            self._keep["imgname"].extend(list(names))
        return {k: float(torch.cat(v).mean()) for k, v in e.items()}

    # -- results ----------------------------------------------------------------------------------------
    def compute(self) -> dict[str, Any]:
        if not self._err:
            raise ValueError("Pose3DEvaluator.compute: no sample was evaluated")
        out: dict[str, Any] = {k: float(torch.cat(v).double().mean()) for k, v in self._err.items()}
        if self.protocol.per_action and self._keep.get("imgname"):
            pa = torch.cat(self._err["pa_mpjpe"]).double().cpu().numpy()
            acts = np.array([h36m_action(n) for n in self._keep["imgname"]])
            out["per_action_pa_mpjpe"] = {a: float(pa[acts == a].mean()) for a in sorted(set(acts.tolist()))}
        return out

    def samples(self) -> dict[str, np.ndarray]:
        s = {k: torch.cat(v).double().cpu().numpy() for k, v in self._err.items()}
        for k in ("pred_joints_h36m", "theta"):
            if self._keep.get(k):
                s[k] = torch.cat(self._keep[k]).float().cpu().numpy()
        if self._keep.get("imgname"):
            s["imgname"] = np.array([str(n) for n in self._keep["imgname"]])
        return s


def pose3d_settings(names: Sequence[str] = tuple(POSE3D_PROTOCOLS)) -> dict[str, dict[str, Any]]:
    return {n: POSE3D_PROTOCOLS[n].describe() for n in names}
