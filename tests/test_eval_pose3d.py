"""3D protocols on tiny generated batches with a stub predictor (GT + known offset): closed-form metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from pymaf.body.joints import H36M_TO_J14, H36M_TO_J17, J24_TO_J14, J24_TO_J17
from pymaf.eval.pose3d import Pose3DEvaluator, h36m_action, select_centre
from pymaf.eval.runner import run_evaluation


@pytest.fixture(scope="module")
def smpl(request):
    from pymaf.body.smpl import SMPL, build_smpl
    try:
        body_files = request.getfixturevalue("body_files")
    except ImportError:  # built-in body model not available: random SMPL-format arrays
        from helpers import random_model, random_regressor
        extra, h36m = random_regressor(9, 1), random_regressor(17, 2)
        return {g: SMPL(random_model(i), extra, h36m).eval() for i, g in enumerate(("neutral", "male", "female"))}
    return {g: build_smpl(body_files, g).eval() for g in ("neutral", "male", "female")}


def _random_params(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pose = 0.2 * torch.randn(n, 72, generator=g)
    pose[:, 0] += math.pi  # upright in the camera frame, as in the datasets
    betas = torch.randn(n, 10, generator=g)
    return pose, betas


def _mesh(layer, pose, betas):
    return layer(betas=betas, body_pose=pose[:, 3:], global_orient=pose[:, :3], pose2rot=True).vertices


class ListDataset(Dataset):
    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


def _gendered(smpl, pose, betas, gender):
    v = _mesh(smpl["male"], pose, betas)
    f = gender == 1
    v[f] = _mesh(smpl["female"], pose[f], betas[f])
    return v


def test_3dpw_gendered_pve_and_zero_mpjpe(smpl):
    n = 6
    pose, betas = _random_params(n)
    gender = torch.tensor([0, 1, -1, 1, 0, 1])
    offset = torch.tensor([0.03, -0.04, 0.0])  # 50 mm rigid shift of the whole mesh
    samples = [{"pose": pose[i], "betas": betas[i], "gender": gender[i], "imgname": f"img{i}.jpg"} for i in range(n)]

    def predictor(batch):
        v = _gendered(smpl, batch["pose"], batch["betas"], batch["gender"]) + offset
        return {"verts": v, "cam": torch.zeros(len(v), 3)}

    ev = Pose3DEvaluator("3dpw", smpl)
    res = run_evaluation(predictor, DataLoader(ListDataset(samples), batch_size=4), ev, log=None)
    m = res.metrics
    assert res.num_samples == n
    assert m["pve"] == pytest.approx(50.0, abs=1e-3)       # no alignment: the offset norm
    assert m["mpjpe"] == pytest.approx(0.0, abs=1e-3)      # pelvis-centred joints cancel the shift
    assert m["pa_mpjpe"] == pytest.approx(0.0, abs=1e-3)
    assert set(m) == {"mpjpe", "pa_mpjpe", "pve"}
    s = res.samples
    assert s["pve"].shape == (n,) and s["pred_joints_h36m"].shape == (n, 17, 3) and len(s["imgname"]) == n

    # the GT mesh really is gendered: a neutral prediction of the same parameters differs from it
    male, female = _mesh(smpl["male"], pose[:1], betas[:1]), _mesh(smpl["female"], pose[:1], betas[:1])
    if not torch.allclose(male, female):
        ev2 = Pose3DEvaluator("3dpw", smpl)
        wrong = {"verts": _mesh(smpl["male"], pose, betas), "cam": torch.zeros(n, 3)}
        ev2.update({"pose": pose, "betas": betas, "gender": gender}, wrong)
        per = ev2.samples()["pve"]
        assert np.all(per[gender.numpy() != 1] < 1e-3) and np.all(per[gender.numpy() == 1] > 1e-3)


def _pose3d_batch(pred_j: torch.Tensor, gt_sel: torch.Tensor, sel) -> dict:
    s = torch.zeros(pred_j.shape[0], 24, 4)
    s[:, sel, :3] = gt_sel
    s[:, :, 3] = 1
    return s


@pytest.mark.parametrize("protocol", ["h36m-p1", "h36m-p2"])
def test_h36m_offset_and_rigid(smpl, protocol):
    n = 5
    pose, betas = _random_params(n, seed=1)
    verts = _mesh(smpl["neutral"], pose, betas)
    pred_j = select_centre(smpl["neutral"].h36m_joints(verts), 14)
    offset = torch.tensor([0.012, 0.0, -0.016])  # 20 mm
    names = [f"S9_Directions_1.54138969_{i:06d}.jpg" if i % 2 else f"S11_Walking_1.60457274_{i:06d}.jpg"
             for i in range(n)]
    ev = Pose3DEvaluator(protocol, {"neutral": smpl["neutral"]})
    batch = {"pose_3d": _pose3d_batch(pred_j, pred_j + offset, J24_TO_J14), "imgname": names,
             "pose": torch.zeros(n, 72), "betas": torch.zeros(n, 10)}
    ev.update(batch, {"verts": verts, "cam": torch.zeros(n, 3)})
    running = ev.running()
    assert running["mpjpe"] == pytest.approx(20.0, abs=1e-3)
    m = ev.compute()
    assert m["mpjpe"] == pytest.approx(20.0, abs=1e-3)
    assert m["pa_mpjpe"] == pytest.approx(0.0, abs=1e-3)
    assert "pve" not in m  # §10.16: no PVE against the zero-pose mesh
    if protocol == "h36m-p2":
        assert set(m["per_action_pa_mpjpe"]) == {"Directions", "Walking"}

    # a similarity transform of the prediction: PA-MPJPE 0, MPJPE = the closed-form mean distance
    ang = 0.7
    R = torch.tensor([[math.cos(ang), -math.sin(ang), 0.0], [math.sin(ang), math.cos(ang), 0.0], [0.0, 0.0, 1.0]])
    gt = 1.1 * pred_j @ R.T + torch.tensor([0.1, 0.2, 0.3])
    ev = Pose3DEvaluator(protocol, {"neutral": smpl["neutral"]})
    ev.update({"pose_3d": _pose3d_batch(pred_j, gt, J24_TO_J14), "imgname": names},
              {"verts": verts, "cam": torch.zeros(n, 3)})
    m = ev.compute()
    assert m["pa_mpjpe"] == pytest.approx(0.0, abs=1e-2)
    expect = (pred_j.double() - gt.double()).norm(dim=-1).mean() * 1000
    assert m["mpjpe"] == pytest.approx(float(expect), rel=1e-4)


def test_mpi_inf_pck_auc(smpl):
    n = 3
    pose, betas = _random_params(n, seed=2)
    verts = _mesh(smpl["neutral"], pose, betas)
    pred_j = select_centre(smpl["neutral"].h36m_joints(verts), 17)
    assert pred_j.shape == (n, 17, 3)
    d = 0.0725  # 72.5 mm: thresholds 75..150 mm (16 of the 31) count the joints as correct
    batch = {"pose_3d": _pose3d_batch(pred_j, pred_j + torch.tensor([0.0, d, 0.0]), J24_TO_J17)}
    ev = Pose3DEvaluator("mpi-inf-3dhp", {"neutral": smpl["neutral"]})
    ev.update(batch, {"verts": verts, "cam": torch.zeros(n, 3)})
    m = ev.compute()
    assert m["mpjpe"] == pytest.approx(72.5, abs=1e-3)
    assert m["pck"] == pytest.approx(100.0)
    assert m["auc"] == pytest.approx(100.0 * 16 / 31, abs=1e-4)
    # a translation is removed by the rigid alignment: zero error misses only the 0 mm threshold (strict <)
    assert m["pa_pck"] == pytest.approx(100.0) and m["pa_auc"] == pytest.approx(100.0 * 30 / 31, abs=1e-4)
    ev = Pose3DEvaluator("mpi-inf-3dhp", {"neutral": smpl["neutral"]})
    ev.update({"pose_3d": _pose3d_batch(pred_j, pred_j + torch.tensor([0.2, 0.0, 0.0]), J24_TO_J17)},
              {"verts": verts, "cam": torch.zeros(n, 3)})
    assert ev.compute()["pck"] == pytest.approx(0.0)


def test_mpi_inf_pck_auc_over_the_14_lsp_joints_hand_computed(smpl):
    # errors (mm) put on single joints along x; the pelvis (J17 row 14), spine and head rows are not scored
    n = 1
    pose, betas = _random_params(n, seed=4)
    verts = _mesh(smpl["neutral"], pose, betas)
    pred_j = select_centre(smpl["neutral"].h36m_joints(verts), 17)
    err_mm = [0, 10, 41, 74, 77, 121, 149, 150.5, 151, 200, 0, 6, 31, 91] + [500, 500, 500]  # off the 5 mm grid
    gt = pred_j.clone()
    gt[0, :, 0] += torch.tensor(err_mm) / 1000
    ev = Pose3DEvaluator("mpi-inf-3dhp", {"neutral": smpl["neutral"]})
    ev.update({"pose_3d": _pose3d_batch(pred_j, gt, J24_TO_J17)}, {"verts": verts, "cam": torch.zeros(n, 3)})
    m = ev.compute()
    e14 = err_mm[:14]
    pck = 100 * sum(e < 150 for e in e14) / 14                       # 11 of 14 joints closer than 150 mm
    auc = 100 * sum(sum(e < t for e in e14) / 14 for t in range(0, 151, 5)) / 31
    assert pck == pytest.approx(100 * 11 / 14)
    assert m["pck"] == pytest.approx(pck, abs=1e-3) and m["auc"] == pytest.approx(auc, abs=1e-3)
    assert m["mpjpe"] == pytest.approx(sum(err_mm) / 17, abs=1e-2)  # MPJPE stays on the 17 joints
    # rigid alignment over the 14 joints: the independent Procrustes of the 14 joints, then the same counts
    x, y = pred_j[0, :14].double().numpy(), gt[0, :14].double().numpy()
    mx, my = x.mean(0), y.mean(0)
    u, _, vt = np.linalg.svd((x - mx).T @ (y - my))
    z = np.eye(3)
    z[2, 2] = np.sign(np.linalg.det(u @ vt))
    r = vt.T @ z @ u.T
    sc = np.trace(r @ (x - mx).T @ (y - my)) / ((x - mx) ** 2).sum()
    pa = sc * (x - mx) @ r.T + my
    d = np.linalg.norm(pa - y, axis=1) * 1000
    assert m["pa_pck"] == pytest.approx(100 * (d < 150).mean(), abs=1e-3)
    assert m["pa_auc"] == pytest.approx(100 * np.mean([(d < t).mean() for t in range(0, 151, 5)]), abs=1e-3)
    desc = ev.protocol.describe()["pck_auc"]
    assert "14 LSP joints" in desc["joints"] and desc["pck_threshold_mm"] == 150


def test_selection_constants():
    assert H36M_TO_J14 == H36M_TO_J17[:14] and J24_TO_J14 == J24_TO_J17[:14]
    assert h36m_action("/x/S9_Directions_1.54138969_000001.jpg") == "Directions"


def test_running_printout_includes_current_batch(smpl):
    pose, betas = _random_params(2, seed=3)
    verts = _mesh(smpl["neutral"], pose, betas)
    pred_j = select_centre(smpl["neutral"].h36m_joints(verts), 14)
    samples = [{"pose_3d": _pose3d_batch(pred_j[i:i + 1], pred_j[i:i + 1] + torch.tensor([0.01 * (i + 1), 0, 0]),
                                         J24_TO_J14)[0], "verts": verts[i]} for i in range(2)]
    lines: list[str] = []
    run_evaluation(lambda b: {"verts": b["verts"], "cam": torch.zeros(len(b["verts"]), 3)},
                   DataLoader(ListDataset(samples), batch_size=1), Pose3DEvaluator("h36m-p1", smpl),
                   log_every=1, log=lines.append)
    assert "mpjpe: 10.00" in lines[0] and "mpjpe: 15.00" in lines[1]  # batch 1 alone, then both
