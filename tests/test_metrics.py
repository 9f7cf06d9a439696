"""Tests for pymaf.metrics against closed forms and independent float64 NumPy formulas."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pymaf import metrics as M


def _np_mpjpe(p, g):
    return np.sqrt(((p - g) ** 2).sum(-1)).mean(-1)


def _np_pa_mpjpe(p, g):
    out = []
    for a, b in zip(p, g):
        a0, b0 = a - a.mean(0), b - b.mean(0)
        U, _, Vt = np.linalg.svd(a0.T @ b0)
        Z = np.eye(3)
        Z[2, 2] = np.sign(np.linalg.det(U @ Vt))
        R = Vt.T @ Z @ U.T
        s = np.trace(R @ a0.T @ b0) / (a0 ** 2).sum()
        aligned = s * a0 @ R.T + b.mean(0)
        out.append(np.sqrt(((aligned - b) ** 2).sum(-1)).mean())
    return np.array(out)


@pytest.fixture
def joints():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 14, 3)) * 0.3, rng.normal(size=(4, 14, 3)) * 0.3


def test_mpjpe_pve_against_numpy(joints):
    p, g = joints
    np.testing.assert_allclose(M.mpjpe(p, g), _np_mpjpe(p, g), rtol=1e-12)
    np.testing.assert_allclose(M.pve(p, g), _np_mpjpe(p, g), rtol=1e-12)
    out = M.mpjpe(torch.as_tensor(p, dtype=torch.float32), torch.as_tensor(g, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.shape == (4,) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), _np_mpjpe(p, g), rtol=1e-5)


def test_pa_mpjpe_against_numpy(joints):
    p, g = joints
    np.testing.assert_allclose(M.pa_mpjpe(p, g), _np_pa_mpjpe(p, g), rtol=1e-9)
    assert (M.pa_mpjpe(p, g) <= M.mpjpe(p, g) + 1e-12).all()


def test_translated_rotated_scaled_copy_has_zero_pa_error(joints):
    g = joints[1]
    R = Rotation.random(4, random_state=1).as_matrix()
    p = 1.7 * np.einsum("bij,bnj->bni", R, g) + np.array([0.3, -2.0, 5.0])
    np.testing.assert_allclose(M.pa_mpjpe(p, g), 0, atol=1e-12)
    np.testing.assert_allclose(M.pa_mpjpe(p.astype(np.float32), g.astype(np.float32)), 0, atol=1e-5)
    # a pure translation by d has MPJPE |d| and PVE |d|
    d = np.array([0.03, 0.04, 0.0])
    np.testing.assert_allclose(M.mpjpe(g + d, g), 0.05, rtol=1e-12)
    np.testing.assert_allclose(M.pve(g + d, g), 0.05, rtol=1e-12)


def test_scaled_copy_mpjpe_closed_form(joints):
    g = joints[1]
    k = 1.3
    # scaling about the origin moves each joint by |k - 1| * |g_j|
    expected = np.abs(k - 1) * np.linalg.norm(g, axis=-1).mean(-1)
    np.testing.assert_allclose(M.mpjpe(k * g, g), expected, rtol=1e-12)
    np.testing.assert_allclose(M.pa_mpjpe(k * g, g), 0, atol=1e-12)


def test_pck_auc_closed_cases():
    g = np.zeros((2, 4, 3))
    p = np.zeros((2, 4, 3))
    p[0, :, 0] = [0.0, 0.1, 0.149, 0.2]       # errors in metres
    p[1, :, 1] = [0.15, 0.15, 0.3, 0.001]
    np.testing.assert_allclose(M.pck(p, g), [0.75, 0.25])   # strict "<": 150 mm exactly is a miss
    np.testing.assert_allclose(M.pck(p, g, threshold=0.25), [1.0, 0.75])
    # AUC = mean over thresholds 0, 5, ..., 150 mm of PCK; an error e counts at thresholds > e
    th = np.linspace(0, 0.15, 31)
    expected = [(np.abs(p[b]).sum(-1)[:, None] < th).mean() for b in range(2)]
    np.testing.assert_allclose(M.auc(p, g), expected)
    np.testing.assert_allclose(M.auc(g, g), 30 / 31)        # zero error misses only the threshold 0
    np.testing.assert_allclose(M.auc(g + 1.0, g), 0.0)
    # an error of 52 mm is counted at 55..150 mm: 20 of 31 thresholds
    np.testing.assert_allclose(M.auc(g + np.array([0.052, 0, 0]), g), 20 / 31)


def test_confusion_and_segmentation_scores():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    conf = M.confusion_matrix(pred, gt, 3)
    expected = np.array([[1, 1, 0],        # rows = GT, columns = prediction; the 255 pixel is dropped
                         [1, 2, 0],
                         [1, 0, 1]])
    np.testing.assert_array_equal(conf, expected)
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(M.confusion_matrix(torch.as_tensor(pred), torch.as_tensor(gt), 3), expected)
    s = M.segmentation_scores(conf)
    assert s["accuracy"] == pytest.approx(4 / 7)
    # TP/FP/FN: c0 = 1/2/1, c1 = 2/1/1, c2 = 1/0/1
    f1 = np.array([2 / (2 + 2 + 1), 4 / (4 + 1 + 1), 2 / (2 + 0 + 1)])
    np.testing.assert_allclose(s["f1"], f1)
    assert s["mean_f1"] == pytest.approx(f1.mean())
    # official parts accuracy: 255 -> 0 in both maps, nothing ignored
    conf0 = M.confusion_matrix(pred, np.where(gt == 255, 0, gt), 3, ignore_index=None)
    assert conf0.sum() == 8 and M.segmentation_scores(conf0)["accuracy"] == pytest.approx(4 / 8)
    # a class absent from GT and prediction has an undefined F1 that is left out of the mean
    s4 = M.segmentation_scores(M.confusion_matrix(pred, gt, 4))
    assert np.isnan(s4["f1"][3]) and s4["mean_f1"] == pytest.approx(f1.mean())
    with pytest.raises(ValueError, match="labels must be in"):
        M.confusion_matrix(np.array([5]), np.array([0]), 3)
