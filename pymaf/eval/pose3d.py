"""3D pose and mesh protocols: 3DPW, H36M P1/P2/P2-MoSh, MPI-INF-3DHP, synthetic-val (spec §5.1-5.2).

This module is the one owner of these protocols: ``eval.py`` and the validation during training both run
:class:`Pose3DEvaluator` (through ``pymaf.eval.build_evaluator``), so a number the trainer logs is the number
``eval.py`` reports for the same weights.

Predicted joints: ``J_h36m @ verts`` (neutral SMPL's H36M regressor), pelvis = row 0, select
``H36M_TO_J14`` (``J17`` for MPI-INF-3DHP), subtract the pelvis. Errors in millimetres.
GT joints: for the mesh protocols (3DPW, synthetic) the same recipe on the GT mesh, for the others
``pose_3d[:, J24_TO_J14|J17, :3]`` (already root-centred in the files).
PVE (no alignment, no centring) only where a real GT mesh exists: 3DPW (gendered GT mesh: 1 = female,
else male), h36m-p2-mosh and synthetic-val (neutral, or gendered when the sample has a gender). The
official code also printed a PVE against the zero-pose mesh of h36m-p1/p2; that number is meaningless
and is not reported (§10.16 fix).
MPI-INF-3DHP: MPJPE / PA-MPJPE over the 17 joints (SPIN's evaluation); PCK@150 mm and AUC over 0..150 mm
(31 thresholds, strict ``<``) over the 14 LSP joints (``J17[:14]``: the pelvis, whose error is 0 after
centring, would inflate both), reported pelvis-centred (``pck``, ``auc``: "absolute" in SPIN's table) and after a
per-sample similarity Procrustes over those 14 joints (``pa_pck``, ``pa_auc``: "rigid alignment").
A metric is never computed against ground truth the file does not have: :func:`check_ground_truth`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from pymaf import metrics, paths
from pymaf.body.joints import H36M_TO_J14, H36M_TO_J17, J24_TO_J14, J24_TO_J17
from pymaf.errors import BodyModelError, DataError
from pymaf.geometry import procrustes_align

M_TO_MM = 1000.0
PCK_JOINTS = 14              # MPI-INF-3DHP PCK/AUC joint set: J17[:14], the 14 LSP joints
PCK_THRESHOLD_M = 0.15       # 150 mm
AUC_THRESHOLDS = 31          # 0, 5, ..., 150 mm


@dataclass(frozen=True)
class Pose3DProtocol:
    name: str
    gt_joints: str            # 'mesh' (H36M regressor on the GT mesh) | 'pose_3d' (the npz S)
    num_joints: int           # 14 or 17
    pve: str                  # 'none' | 'neutral' | '3dpw' (1 female else male) | 'auto' (0 m, 1 f, else neutral)
    pck: bool = False         # PCK@150mm and AUC over the 14 LSP joints, absolute and PA (MPI-INF-3DHP)
    per_action: bool = False  # H36M P2: PA-MPJPE per action parsed from the image name
    skipped: tuple[str, ...] = ()  # metrics the dataset file cannot support (check_ground_truth), with why

    @property
    def needs_gt_mesh(self) -> bool:
        return self.gt_joints == "mesh" or self.pve != "none"

    def metric_names(self) -> tuple[str, ...]:
        names = ["mpjpe", "pa_mpjpe"] + (["pve"] if self.pve != "none" else [])
        return tuple(names + (["pck", "auc", "pa_pck", "pa_auc"] if self.pck else []))

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "gt_joints": self.gt_joints, "num_joints": self.num_joints,
            "pred_joints": f"J_regressor_h36m @ verts, pelvis row 0, H36M_TO_J{self.num_joints}",
            "alignment": "mpjpe: pelvis-centred; pa_mpjpe: per-sample similarity Procrustes over the same joints",
            "pve_gt_mesh": self.pve, "per_action": self.per_action, "metrics": list(self.metric_names()),
            "units": "mm (pck, auc: %)", "reference": "spec §5.1-5.2, §10.16"}
        if self.pck:
            d["pck_auc"] = {
                "joints": f"{PCK_JOINTS} LSP joints (J17[:14]; pelvis, spine, head excluded)",
                "pck_threshold_mm": PCK_THRESHOLD_M * M_TO_MM, "comparison": "error < threshold",
                "auc_thresholds_mm": f"0, 5, ..., 150 ({AUC_THRESHOLDS} thresholds), AUC = mean PCK",
                "alignment": {"pck, auc": "pelvis-centred (absolute)",
                              "pa_pck, pa_auc": "similarity Procrustes over the 14 joints (rigid alignment)"}}
        if self.skipped:
            d["skipped_metrics"] = list(self.skipped)
        return d


# By protocol key: ``paths.DATASETS[name].protocol`` says which one scores a dataset (``protocol_for``); each key is
# the name of the evaluation set it was defined for, so ``--dataset KEY`` runs it.
POSE3D_PROTOCOLS: dict[str, Pose3DProtocol] = {
    "3dpw": Pose3DProtocol("3dpw", "mesh", 14, "3dpw"),
    "h36m-p1": Pose3DProtocol("h36m-p1", "pose_3d", 14, "none"),
    "h36m-p2": Pose3DProtocol("h36m-p2", "pose_3d", 14, "none", per_action=True),
    "h36m-p2-mosh": Pose3DProtocol("h36m-p2-mosh", "pose_3d", 14, "neutral", per_action=True),
    "mpi-inf-3dhp": Pose3DProtocol("mpi-inf-3dhp", "pose_3d", 17, "none", pck=True),
    "synthetic-val": Pose3DProtocol("synthetic-val", "mesh", 14, "auto"),
}

# higher is better for these; every other metric is an error (lower is better)
HIGHER_IS_BETTER = frozenset({"pck", "auc", "pa_pck", "pa_auc"})


def protocol_for(dataset: str) -> Pose3DProtocol | None:
    """The 3D protocol that scores the evaluation split of ``dataset`` (named by its registry entry), or None."""
    key = paths.dataset(dataset).protocol
    return POSE3D_PROTOCOLS[key] if key else None


def h36m_action(imgname: str) -> str:
    """H36M action from an image name: ``basename.split('.')[0].split('_')[1]`` (§5.2)."""
    parts = PurePath(imgname).name.split(".")[0].split("_")
    return parts[1] if len(parts) > 1 else "unknown"


def select_centre(joints_h36m: torch.Tensor, num_joints: int) -> torch.Tensor:
    """[B,17,3] H36M-regressor joints -> [B,num_joints,3] LSP-ordered, minus the pelvis (row 0), §5.1."""
    sel = H36M_TO_J14 if num_joints == 14 else H36M_TO_J17
    return joints_h36m[:, sel] - joints_h36m[:, :1]


def check_ground_truth(protocol: Pose3DProtocol, has_smpl: np.ndarray, has_pose_3d: bool,
                       source: str) -> Pose3DProtocol:
    """The protocol as it can run on a dataset file, or a :class:`DataError` naming the file and the fields.

    has_smpl [N] (0/1 per sample: the file's ``pose``/``shape`` and ``has_smpl``), has_pose_3d: the file has ``S``.
    GT joints from the GT mesh (3DPW, synthetic) need SMPL parameters for every sample; GT joints from
    ``pose_3d`` need ``S``. A PVE the file cannot support is skipped (and listed in ``skipped``), never scored
    against a zero-pose mesh."""
    has_smpl = np.asarray(has_smpl).reshape(-1)
    n, with_smpl = int(has_smpl.shape[0]), int((has_smpl > 0).sum())
    if protocol.gt_joints == "mesh" and with_smpl < n:
        raise DataError(f"{protocol.name}: ground truth missing ({source}): the protocol builds the GT joints and "
                        f"mesh from the SMPL fields 'pose' and 'shape', but {n - with_smpl} of {n} samples have "
                        "none (fields absent or has_smpl = 0); use a file with SMPL parameters for every sample")
    if protocol.gt_joints == "pose_3d" and not has_pose_3d:
        raise DataError(f"{protocol.name}: ground truth missing ({source}): the protocol needs the 3D joints "
                        "field 'S' [N,24,3|4], which the file does not have")
    if protocol.pve != "none" and with_smpl < n:
        return replace(protocol, pve="none", skipped=protocol.skipped + (
            f"pve: {n - with_smpl} of {n} samples have no SMPL 'pose'/'shape' in {source}",))
    return protocol


SmplSource = Mapping[str, torch.nn.Module] | Callable[[str], torch.nn.Module]


class Pose3DEvaluator:
    """Accumulates per-sample errors on the device (no host sync per batch).

    ``smpl``: 'neutral'|'male'|'female' -> SMPL layer with the H36M regressor, as a mapping or as a function
    called (once per gender) the first time a batch needs that gender, so that gendered models are loaded only
    where a protocol and the data need them."""

    def __init__(self, protocol: Pose3DProtocol | str, smpl: SmplSource):
        self.protocol = POSE3D_PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
        self._factory = smpl if callable(smpl) else None
        self.smpl: dict[str, torch.nn.Module] = {} if callable(smpl) else dict(smpl)
        if self._factory is None and "neutral" not in self.smpl:
            raise ValueError("Pose3DEvaluator: smpl must contain a 'neutral' layer")
        self._err: dict[str, list[torch.Tensor]] = {}
        self._sum: dict[str, torch.Tensor] = {}
        self._n = 0
        self._keep: dict[str, list[Any]] = {"pred_joints_h36m": [], "theta": [], "imgname": []}

    # -- GT -----------------------------------------------------------------------------------------
    def _layer(self, gender: str) -> torch.nn.Module:
        if gender not in self.smpl:
            if self._factory is None:
                raise BodyModelError(f"protocol {self.protocol.name} needs the {gender} SMPL model for the GT "
                                     "meshes of its samples; expected a layer for it in the evaluator's smpl")
            self.smpl[gender] = self._factory(gender)
        return self.smpl[gender]

    def _mesh(self, gender: str, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        out = self._layer(gender)(betas=betas.float(), body_pose=pose[:, 3:].float(),
                                  global_orient=pose[:, :3].float(), pose2rot=True)
        return out.vertices

    def gt_mesh(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """GT vertices [B,6890,3] from batch pose [B,72] / betas [B,10] with the protocol's gender rule."""
        pose, betas = batch["pose"], batch["betas"]
        mode = self.protocol.pve if self.protocol.pve != "none" else "neutral"
        if mode == "neutral":
            return self._mesh("neutral", pose, betas)
        g = batch.get("gender")
        g = np.full(pose.shape[0], -1) if g is None else np.asarray(torch.as_tensor(g).cpu())
        if mode == "3dpw":
            groups = {"female": g == 1, "male": g != 1}
        else:  # 'auto'
            groups = {"male": g == 0, "female": g == 1, "neutral": (g != 0) & (g != 1)}
        verts: torch.Tensor | None = None
        for gender, m in groups.items():
            if m.any():
                idx = torch.as_tensor(np.flatnonzero(m), device=pose.device)
                v = self._mesh(gender, pose[idx], betas[idx])
                if verts is None:
                    verts = v.new_empty(pose.shape[0], v.shape[1], 3)
                verts[idx] = v
        assert verts is not None
        return verts

    # -- accumulate -----------------------------------------------------------------------------------
    def _add(self, key: str, per_sample: torch.Tensor) -> None:
        self._err.setdefault(key, []).append(per_sample.detach())
        s = per_sample.detach().double().sum()
        self._sum[key] = self._sum[key] + s if key in self._sum else s

    def update(self, batch: Mapping[str, Any], pred: Mapping[str, torch.Tensor]) -> None:
        p = self.protocol
        pred_verts = pred["verts"].float()
        pred_h36m = self._layer("neutral").h36m_joints(pred_verts)                 # [B,17,3]
        pred_j = select_centre(pred_h36m, p.num_joints)
        gt_verts = self.gt_mesh(batch) if p.needs_gt_mesh else None
        if p.gt_joints == "mesh":
            # every SMPL layer loads the same J_regressor_h36m file: the neutral layer's regressor serves
            gt_j = select_centre(self._layer("neutral").h36m_joints(gt_verts), p.num_joints)
        else:
            sel = J24_TO_J14 if p.num_joints == 14 else J24_TO_J17
            gt_j = batch["pose_3d"][:, sel, :3].float()
        self._add("mpjpe", metrics.mpjpe(pred_j, gt_j) * M_TO_MM)
        self._add("pa_mpjpe", metrics.pa_mpjpe(pred_j.double(), gt_j.double()).float() * M_TO_MM)
        if gt_verts is not None and p.pve != "none":
            self._add("pve", metrics.pve(pred_verts, gt_verts) * M_TO_MM)
        if p.pck:
            pj, gj = pred_j[:, :PCK_JOINTS].double(), gt_j[:, :PCK_JOINTS].double()
            pa = procrustes_align(pj, gj)
            for prefix, x in (("", pj), ("pa_", pa)):
                self._add(prefix + "pck", metrics.pck(x, gj, PCK_THRESHOLD_M).float() * 100.0)
                self._add(prefix + "auc", metrics.auc(x, gj, PCK_THRESHOLD_M, AUC_THRESHOLDS).float() * 100.0)
        self._n += int(pred_verts.shape[0])
        self._keep["pred_joints_h36m"].append(pred_h36m.detach())
        if "theta" in pred:
            self._keep["theta"].append(pred["theta"].detach())
        names = batch.get("imgname")
        if names is not None:
            self._keep["imgname"].extend(list(names))

    def running(self) -> dict[str, float]:
        """The metrics over every sample so far, including the last batch (§10.16 fix); one host sync."""
        return means_from_totals(*self.totals()) if self._n else {}

    def totals(self) -> tuple[list[str], torch.Tensor]:
        """(metric names, float64 [len(names) + 1]: the per-sample sums, then the sample count): what a sharded
        evaluation adds up over processes; :func:`means_from_totals` of them equals ``compute()`` of one process
        on all samples (to float rounding)."""
        keys = sorted(self._sum)
        device = self._sum[keys[0]].device if keys else torch.device("cpu")
        count = torch.tensor(float(self._n), dtype=torch.float64, device=device)
        return keys, torch.stack([self._sum[k] for k in keys] + [count])

    # -- results ----------------------------------------------------------------------------------------
    def compute(self) -> dict[str, Any]:
        if not self._err:
            raise ValueError("Pose3DEvaluator.compute: no sample was evaluated")
        out: dict[str, Any] = {k: float(torch.cat(v).double().mean()) for k, v in self._err.items()}
        if self.protocol.per_action and self._keep["imgname"]:
            pa = torch.cat(self._err["pa_mpjpe"]).double().cpu().numpy()
            acts = np.array([h36m_action(n) for n in self._keep["imgname"]])
            out["per_action_pa_mpjpe"] = {a: float(pa[acts == a].mean()) for a in sorted(set(acts.tolist()))}
        return out

    def samples(self) -> dict[str, np.ndarray]:
        s = {k: torch.cat(v).double().cpu().numpy() for k, v in self._err.items()}
        for k in ("pred_joints_h36m", "theta"):
            if self._keep[k]:
                s[k] = torch.cat(self._keep[k]).float().cpu().numpy()
        if self._keep["imgname"]:
            s["imgname"] = np.array([str(n) for n in self._keep["imgname"]])
        return s


def means_from_totals(keys: Sequence[str], totals: torch.Tensor) -> dict[str, float]:
    """name -> mean, from :meth:`Pose3DEvaluator.totals` (possibly summed over processes)."""
    return dict(zip(keys, (totals[:-1] / totals[-1]).tolist()))
