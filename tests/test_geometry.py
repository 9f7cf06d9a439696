"""Tests for pymaf.geometry: round trips, closed forms, SciPy agreement, camera mappings, Procrustes."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pymaf import geometry as G

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _random_rotmats(n: int, seed: int, dtype) -> torch.Tensor:
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype)


def _aa_with_angles(angles: np.ndarray, seed: int) -> np.ndarray:
    axes = np.random.default_rng(seed).normal(size=(len(angles), 3))
    return axes / np.linalg.norm(axes, axis=1, keepdims=True) * angles[:, None]


# ------------------------------------------------------------------------------------------------ 6D
def test_rot6d_mean_pose_interleaving():
    x = torch.tensor([1., 0., 0., -1., 0., 0.], dtype=torch.float64)
    assert torch.equal(G.rot6d_to_rotmat(x), torch.diag(torch.tensor([1., -1., -1.], dtype=torch.float64)))
    # interleaved (row-major 3x2) layout, not [col0; col1]
    R = torch.arange(9, dtype=torch.float64).reshape(3, 3)
    assert G.rotmat_to_rot6d(R).tolist() == [0., 1., 3., 4., 6., 7.]


@pytest.mark.parametrize("dtype", DTYPES)
def test_rot6d_round_trip(dtype):
    R = _random_rotmats(64, 0, dtype).reshape(4, 16, 3, 3)
    x = G.rotmat_to_rot6d(R)
    assert x.shape == (4, 16, 6) and x.dtype == dtype
    R2 = G.rot6d_to_rotmat(x)
    torch.testing.assert_close(R2, R, atol=TOL[dtype] * 10, rtol=0)
    torch.testing.assert_close(G.rotmat_to_rot6d(R2), x, atol=TOL[dtype] * 10, rtol=0)


def test_rot6d_gram_schmidt_output_is_rotation():
    x = torch.randn(100, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    R = G.rot6d_to_rotmat(x)
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))
    # first column is the normalised a1 = (x0, x2, x4)
    a1 = x[:, 0::2]
    torch.testing.assert_close(R[:, :, 0], a1 / a1.norm(dim=1, keepdim=True))


# ------------------------------------------------------------------------------------------------ axis-angle
@pytest.mark.parametrize("dtype", DTYPES)
def test_axis_angle_matches_scipy(dtype):
    angles = np.concatenate([np.linspace(0, math.pi, 40), [1e-9, 1e-5, 1e-3, math.pi - 1e-6, math.pi - 1e-3]])
    aa = _aa_with_angles(angles, 2)
    R = G.axis_angle_to_rotmat(torch.as_tensor(aa, dtype=dtype))
    assert R.dtype == dtype
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(aa).as_matrix(), atol=TOL[dtype] * 10)

    Rs = Rotation.random(50, random_state=3)
    aa_t = G.rotmat_to_axis_angle(torch.as_tensor(Rs.as_matrix(), dtype=dtype))
    np.testing.assert_allclose(aa_t.numpy(), Rs.as_rotvec(), atol=TOL[dtype] * 30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_axis_angle_round_trip_near_zero_and_pi(dtype):
    eps = 1e-3 if dtype == torch.float32 else 1e-7
    angles = np.array([0., 1e-12, 1e-8, 1e-6, 1e-4, 0.5, 2.0, math.pi - eps, math.pi - 1e-2])
    aa = torch.as_tensor(_aa_with_angles(angles, 4), dtype=dtype)
    aa2 = G.rotmat_to_axis_angle(G.axis_angle_to_rotmat(aa))
    tol = 1e-5 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(aa2, aa, atol=tol * 10, rtol=0)
    # exactly pi: the axis sign is arbitrary, the rotation is not
    aa_pi = torch.as_tensor(_aa_with_angles(np.full(8, math.pi), 5), dtype=dtype)
    R = G.axis_angle_to_rotmat(aa_pi)
    back = G.rotmat_to_axis_angle(R)
    torch.testing.assert_close(back.norm(dim=-1), torch.full((8,), math.pi, dtype=dtype), atol=tol * 10, rtol=0)
    torch.testing.assert_close(G.axis_angle_to_rotmat(back), R, atol=tol * 10, rtol=0)


def test_axis_angle_gradients_finite_at_zero():
    aa = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    G.axis_angle_to_rotmat(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    # dR/daa at 0 is skew(daa): check against the closed form with gradcheck-style probing
    aa0 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    J = torch.autograd.functional.jacobian(lambda a: G.axis_angle_to_rotmat(a), aa0)[0, :, :, 0, :]
    expected = torch.zeros(3, 3, 3, dtype=torch.float64)
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = 1
        expected[:, :, k] = G._skew(e)
    torch.testing.assert_close(J, expected)
    R = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1).requires_grad_(True)
    G.rotmat_to_axis_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("angle", [0.0, 1e-4, 0.5, math.pi - 1e-3, math.pi - 1e-6, math.pi])
def test_rotmat_to_axis_angle_gradient_finite_at_zero_and_pi(dtype, angle):
    # the mean global orientation is exactly π about x: a loss on it must not turn every gradient into NaN
    axes = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0.6, 0, 0.8]], dtype=dtype)
    R = G.axis_angle_to_rotmat(axes * angle).detach().requires_grad_(True)
    aa = G.rotmat_to_axis_angle(R)
    (aa * torch.arange(1.0, 4.0, dtype=dtype)).sum().backward()
    assert torch.isfinite(R.grad).all()
    # the value is right too (up to the axis sign at exactly π)
    got = G.axis_angle_to_rotmat(aa.detach())
    torch.testing.assert_close(got, R.detach(), atol=1e-5 if dtype == torch.float32 else 1e-9, rtol=0)


# ------------------------------------------------------------------------------------------------ projections
@pytest.mark.parametrize("dtype", DTYPES)
def test_projection_closed_forms(dtype):
    cam = torch.tensor([[0.9, 0.1, -0.2], [1.2, 0.0, 0.3]], dtype=dtype)
    t = G.cam_to_translation(cam)
    torch.testing.assert_close(t[:, 2], 2 * 5000 / (224 * cam[:, 0] + 1e-9))
    torch.testing.assert_close(t[:, :2], cam[:, 1:])
    # a point at the model origin lands at s * (tx, ty) exactly (translation before scaling)
    pts = torch.zeros(2, 1, 3, dtype=dtype)
    uv = G.project_crop(pts, cam)
    torch.testing.assert_close(uv[:, 0], cam[:, :1] * cam[:, 1:], rtol=1e-6, atol=1e-7)
    # general point: s * (X + t) * tz / (Z + tz)
    X = torch.tensor([[[0.3, -0.5, 0.2]], [[-0.1, 0.4, -0.3]]], dtype=dtype)
    uv = G.project_crop(X, cam)
    tz = t[:, 2:3]
    expected = 5000 * (X[:, 0, :2] + t[:, :2]) / (X[:, 0, 2:3] + tz) / 112
    torch.testing.assert_close(uv[:, 0], expected)
    # perspective projection with rotation, per-axis focal and centre
    R = G.axis_angle_to_rotmat(torch.tensor([[0., 0., math.pi / 2]] * 2, dtype=dtype))
    px = G.perspective_projection(torch.tensor([[[1., 0., 0.]]] * 2, dtype=dtype),
                                  torch.tensor([[0., 0., 10.]] * 2, dtype=dtype),
                                  torch.tensor([[100., 200.]] * 2, dtype=dtype),
                                  torch.tensor([[50., 60.]] * 2, dtype=dtype), R)
    torch.testing.assert_close(px, torch.tensor([[[50., 80.]]] * 2, dtype=dtype), atol=1e-4, rtol=0)
    assert px.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_estimate_translation_recovers_known_translation(dtype):
    gen = torch.Generator().manual_seed(7)
    B, N = 5, 24
    X = (torch.rand(B, N, 3, generator=gen, dtype=torch.float64) - 0.5) * torch.tensor([0.8, 1.7, 0.4],
                                                                                        dtype=torch.float64)
    t = torch.stack([torch.tensor([0.1, -0.2, 45.]), torch.tensor([-0.3, 0.1, 60.]), torch.tensor([0., 0., 30.]),
                     torch.tensor([0.2, 0.3, 80.]), torch.tensor([0.05, -0.05, 50.])]).to(torch.float64)
    px = G.perspective_projection(X, t, 5000., torch.full((B, 2), 112., dtype=torch.float64))
    conf = torch.rand(B, N, 1, generator=gen, dtype=torch.float64) + 0.1
    conf[0, :10] = 0                       # zero-confidence joints are ignored ...
    px[0, :10] += 50                       # ... even if their 2D position is garbage
    kp = torch.cat([px, conf], -1)
    est = G.estimate_translation(X.to(dtype), kp.to(dtype))
    assert est.shape == (B, 3) and est.dtype == dtype
    tol = 1e-3 if dtype == torch.float32 else 1e-7
    torch.testing.assert_close(est.to(torch.float64), t, atol=tol, rtol=1e-4 if dtype == torch.float32 else 1e-9)
    # an under-determined sample falls back to the s=0.9 crop camera instead of raising
    kp[1, :, 2] = 0
    est = G.estimate_translation(X, kp)
    torch.testing.assert_close(est[1], torch.tensor([0., 0., 2 * 5000 / (224 * 0.9)], dtype=torch.float64))
    torch.testing.assert_close(est[0], t[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_crop_cam_to_full_translation_matches_crop_projection(dtype):
    B = 3
    cam = torch.tensor([[0.9, 0.05, -0.1], [1.1, -0.2, 0.15], [0.7, 0.0, 0.3]], dtype=dtype)
    center = torch.tensor([[300., 200.], [100., 420.], [640., 360.]], dtype=dtype)
    box = torch.tensor([250., 180., 500.], dtype=dtype)
    hw = torch.tensor([[480., 640.], [600., 400.], [720., 1280.]], dtype=dtype)
    f_full = torch.tensor([1000., 5000., 1500.], dtype=dtype)
    gen = torch.Generator().manual_seed(3)
    X = (torch.rand(B, 20, 3, generator=gen, dtype=torch.float64) - 0.5).to(dtype)
    X[..., 2] = 0                                          # on the plane z = 0 the mapping is exact
    uv = G.project_crop(X, cam)                            # [-1, 1] crop coords
    crop_px = 112 * (uv + 1)
    img_px = center[:, None] + (crop_px - 112) * (box / 224)[:, None, None]
    T = G.crop_cam_to_full_translation(cam, center, box, hw, f_full)
    full_px = G.perspective_projection(X, T, f_full, hw.flip(-1) / 2)
    tol = 2e-3 if dtype == torch.float32 else 1e-8
    torch.testing.assert_close(full_px, img_px, atol=tol, rtol=0)
    # off-plane points: only the (tiny) perspective difference of the near-orthographic crop camera
    X3 = X.clone()
    X3[..., 2] = 0.2
    img3 = center[:, None] + 112 * G.project_crop(X3, cam) * (box / 224)[:, None, None]
    full3 = G.perspective_projection(X3, T, f_full, hw.flip(-1) / 2)
    assert (full3 - img3).abs().max() < 0.02 * box.max()
    # the official orig_cam renders with the same translation when f = 5000
    oc = G.crop_cam_to_orig_cam(cam, center, box, hw)
    T5000 = G.crop_cam_to_full_translation(cam, center, box, hw, 5000.)
    torch.testing.assert_close(torch.stack([oc[:, 2], oc[:, 3], 2 * 5000 / (hw[:, 0] * oc[:, 1])], -1), T5000,
                               rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=1e-6)
    torch.testing.assert_close(oc[:, 0], cam[:, 0] * box / hw[:, 1])


# ------------------------------------------------------------------------------------------------ Procrustes
@pytest.mark.parametrize("dtype", DTYPES)
def test_procrustes_recovers_similarity(dtype):
    gen = torch.Generator().manual_seed(11)
    B, N = 6, 17
    S2 = torch.randn(B, N, 3, generator=gen, dtype=torch.float64)
    R = torch.as_tensor(Rotation.random(B, random_state=12).as_matrix())
    scale = torch.rand(B, generator=gen, dtype=torch.float64) * 2 + 0.3
    t = torch.randn(B, 3, generator=gen, dtype=torch.float64)
    # S2 = scale * R S1 + t  <=>  S1 = R^T (S2 - t) / scale
    S1 = ((S2 - t[:, None]) @ R) / scale[:, None, None]
    s_hat, R_hat, t_hat = G.procrustes_params(S1.to(dtype), S2.to(dtype))
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(s_hat.double(), scale, atol=tol, rtol=0)
    torch.testing.assert_close(R_hat.double(), R, atol=tol, rtol=0)
    torch.testing.assert_close(t_hat.double(), t, atol=tol, rtol=0)
    aligned = G.procrustes_align(S1.to(dtype), S2.to(dtype))
    assert aligned.dtype == dtype
    torch.testing.assert_close(aligned.double(), S2, atol=tol * 10, rtol=0)


def test_procrustes_never_reflects():
    gen = torch.Generator().manual_seed(5)
    S1 = torch.randn(4, 10, 3, generator=gen, dtype=torch.float64)
    S2 = S1 * torch.tensor([1., 1., -1.], dtype=torch.float64)     # a mirror image
    _, R, _ = G.procrustes_params(S1, S2)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(4, dtype=torch.float64))
    # matches an independent per-sample numpy implementation of the same algorithm (§5.1)
    for b in range(4):
        X1 = (S1[b] - S1[b].mean(0)).numpy().T
        X2 = (S2[b] - S2[b].mean(0)).numpy().T
        U, _, Vt = np.linalg.svd(X1 @ X2.T)
        Z = np.eye(3)
        Z[2, 2] = np.sign(np.linalg.det(U @ Vt))
        np.testing.assert_allclose(R[b].numpy(), Vt.T @ Z @ U.T, atol=1e-10)
