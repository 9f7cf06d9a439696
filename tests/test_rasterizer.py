"""Closed-form tests of the pure-PyTorch rasterizer against independent per-pixel NumPy checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pymaf.render.rasterizer import interpolate, project_vertices, rasterize

F_PX, C_PX = 60.0, 16.0  # a small pinhole camera: 32 x 32 image, principal point at the image centre


def np_inside(tri: np.ndarray, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent point-in-triangle test at pixel centres (float64, either winding).

    tri [3,2] -> (inside [H,W] bool, margin [H,W]: distance-like value to the nearest edge, in pixels)."""
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    s, m = [], []
    for i in range(3):
        a, b = tri[i], tri[(i + 1) % 3]
        e = (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])
        s.append(np.sign(e))
        m.append(np.abs(e) / np.hypot(*(b - a)))
    s = np.stack(s)
    inside = np.all(s >= 0, 0) | np.all(s <= 0, 0)
    return inside, np.min(np.stack(m), 0)


def cube(size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64) * size / 2
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=np.int64)
    return v, f


def rot(ax: float, ay: float) -> np.ndarray:
    cx, sx, cy, sy = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay)
    return np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])


def project_np(X: np.ndarray) -> np.ndarray:
    return np.stack([F_PX * X[:, 0] / X[:, 2] + C_PX, F_PX * X[:, 1] / X[:, 2] + C_PX, X[:, 2]], 1)


@pytest.mark.parametrize("seed", range(6))
def test_single_triangle_exact_pixels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    H, W = 24, 31
    tri = rng.uniform([-4, -4], [W + 4, H + 4], size=(3, 2))  # may stick out of the image; random winding
    z = rng.uniform(1, 3, size=(3, 1))
    frag = rasterize(torch.tensor(np.concatenate([tri, z], 1))[None], torch.tensor([[0, 1, 2]]), (H, W))
    inside, margin = np_inside(tri, H, W)
    got = frag.face_idx[0].numpy() == 0
    sure = margin > 1e-6
    assert np.array_equal(got[sure], inside[sure])
    assert np.all(np.isinf(frag.depth[0].numpy()[~got])) and np.all(frag.face_idx[0].numpy()[~got] == -1)
    # reversed winding gives the same fragments (two-sided)
    frag2 = rasterize(torch.tensor(np.concatenate([tri, z], 1))[None], torch.tensor([[0, 2, 1]]), (H, W))
    assert torch.equal(frag.face_idx, frag2.face_idx)
    assert torch.allclose(frag.bary[..., [0, 2, 1]], frag2.bary, atol=1e-6)


def cube_reference(X: np.ndarray, faces: np.ndarray, H: int, W: int):
    """Independent ray casting: per pixel, the face whose plane is hit nearest among faces covering it."""
    P = project_np(X)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    d = np.stack([(xs - C_PX) / F_PX, (ys - C_PX) / F_PX, np.ones_like(xs)], -1)  # ray directions, z = 1
    best = np.full((H, W), np.inf)
    fid = np.full((H, W), -1)
    ambiguous = np.zeros((H, W), bool)
    for k, f in enumerate(faces):
        inside, margin = np_inside(P[f, :2], H, W)
        ambiguous |= margin < 1e-6
        n = np.cross(X[f[1]] - X[f[0]], X[f[2]] - X[f[0]])
        t = (n @ X[f[0]]) / (d @ n)
        closer = inside & (t < best - 1e-9)
        best[closer], fid[closer] = t[closer], k
    return fid, best, ambiguous


def test_cube_faces_depth_and_barycentrics() -> None:
    v, f = cube(1.0)
    X = v @ rot(0.5, 0.7).T + np.array([0.1, -0.05, 3.0])
    H = W = 32
    vt = torch.tensor(X)[None]
    frag = rasterize(project_vertices(vt, torch.zeros(1, 3, dtype=torch.float64), F_PX,
                                      torch.tensor([[C_PX, C_PX]], dtype=torch.float64)), torch.tensor(f), (H, W))
    fid_ref, depth_ref, amb = cube_reference(X, f, H, W)
    fid = frag.face_idx[0].numpy()
    # coverage and the visible face agree exactly away from edges; two triangles of a cube side are coplanar
    assert np.array_equal((fid >= 0)[~amb], (fid_ref >= 0)[~amb])
    assert np.array_equal(fid[~amb] // 2, fid_ref[~amb] // 2)
    hit = fid >= 0
    assert hit.sum() > 100
    np.testing.assert_allclose(frag.depth[0].numpy()[hit & ~amb], depth_ref[hit & ~amb], rtol=1e-9)
    # barycentrics interpolate the 3-D vertices back onto the pixel's ray, at the rendered depth
    P = interpolate(frag, torch.tensor(f), vt)[0].numpy()[hit]
    ys, xs = np.nonzero(hit)
    np.testing.assert_allclose(F_PX * P[:, 0] / P[:, 2] + C_PX, xs + 0.5, atol=1e-7)
    np.testing.assert_allclose(F_PX * P[:, 1] / P[:, 2] + C_PX, ys + 0.5, atol=1e-7)
    np.testing.assert_allclose(P[:, 2], frag.depth[0].numpy()[hit], rtol=1e-9)
    b = frag.bary[0].numpy()[hit]
    assert np.all(b >= -1e-9) and np.allclose(b.sum(-1), 1.0)


def test_perspective_correct_differs_from_affine_on_slanted_face() -> None:
    # a strongly slanted triangle: the perspective-correct weights are not the screen-space ones
    X = np.array([[-1.0, -1.0, 1.0], [1.0, -1.0, 5.0], [0.0, 1.0, 1.0]])
    vt = torch.tensor(project_np(X))[None]
    fp = rasterize(vt, torch.tensor([[0, 1, 2]]), (32, 32))
    fa = rasterize(vt, torch.tensor([[0, 1, 2]]), (32, 32), perspective_correct=False)
    assert torch.equal(fp.face_idx, fa.face_idx)
    hit = fp.face_idx[0] >= 0
    assert (fp.bary[0][hit] - fa.bary[0][hit]).abs().max() > 0.05
    # affine mode: depth is the screen-space interpolation of z
    za = (fa.bary[0] * vt[0, :, 2]).sum(-1)
    assert torch.allclose(fa.depth[0][hit], za[hit])


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_of_two_overlapping_triangles_wins(order: tuple[int, int]) -> None:
    tri = np.array([[4.0, 4.0], [28.0, 6.0], [10.0, 27.0]])
    near = np.concatenate([tri, np.full((3, 1), 2.0)], 1)
    far = np.concatenate([tri[::-1] + 1.5, np.full((3, 1), 3.0)], 1)
    verts = torch.tensor(np.concatenate([near, far])[None])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])[list(order)]
    near_id = order.index(0)
    frag = rasterize(verts, faces, (32, 32))
    in_near, m1 = np_inside(near[:, :2], 32, 32)
    in_far, m2 = np_inside(far[:, :2], 32, 32)
    sure = (m1 > 1e-6) & (m2 > 1e-6)
    fid = frag.face_idx[0].numpy()
    assert np.all(fid[in_near & sure] == near_id)
    assert np.all(fid[~in_near & in_far & sure] == 1 - near_id)
    np.testing.assert_allclose(frag.depth[0].numpy()[in_near & sure], 2.0, rtol=1e-12)


def test_double_resolution_covers_four_times_the_pixels() -> None:
    v, f = cube(1.0)
    X = torch.tensor(v @ rot(0.3, 0.9).T + np.array([0.0, 0.0, 4.0]))[None]
    counts = []
    for s in (1, 2):
        vp = project_vertices(X, torch.zeros(1, 3, dtype=X.dtype), 70.0 * s, torch.tensor([[32.0 * s] * 2]))
        counts.append(int((rasterize(vp, torch.tensor(f), (64 * s, 64 * s)).face_idx >= 0).sum()))
    perimeter = 4 * np.sqrt(counts[0])  # boundary pixels are the only ones that can disagree
    assert abs(counts[1] - 4 * counts[0]) <= 2 * perimeter
    assert counts[0] > 300


def test_batch_chunking_and_dtypes_are_consistent() -> None:
    rng = np.random.default_rng(3)
    B, F, H, W = 3, 40, 20, 26
    verts = torch.tensor(np.concatenate([rng.uniform(-3, 29, (B, 3 * F, 2)), rng.uniform(1, 4, (B, 3 * F, 1))], -1))
    faces = torch.arange(3 * F).view(F, 3)
    ref = rasterize(verts, faces, (H, W))
    small = rasterize(verts, faces, (H, W), chunk_size=37)  # many chunks, faces split across chunks
    assert torch.equal(ref.face_idx, small.face_idx) and torch.equal(ref.bary, small.bary)
    for b in range(B):  # each batch element is rendered independently
        one = rasterize(verts[b:b + 1], faces, (H, W))
        assert torch.equal(one.face_idx[0], ref.face_idx[b])
    f32 = rasterize(verts.float(), faces, (H, W))
    assert (f32.face_idx != ref.face_idx).float().mean() < 0.01
    assert f32.bary.dtype == torch.float32 and ref.bary.dtype == torch.float64


def test_culling_and_empty_inputs() -> None:
    tri = torch.tensor([[[2.0, 2.0, -1.0], [20.0, 3.0, 2.0], [5.0, 18.0, 2.0]]])  # one vertex behind the camera
    assert (rasterize(tri, torch.tensor([[0, 1, 2]]), (24, 24)).face_idx == -1).all()
    off = torch.tensor([[[-20.0, 2.0, 1.0], [-10.0, 3.0, 1.0], [-15.0, 18.0, 1.0]]])  # outside the image
    frag = rasterize(off, torch.tensor([[0, 1, 2]]), (24, 24))
    assert (frag.face_idx == -1).all() and torch.isinf(frag.depth).all() and (frag.bary == 0).all()
    deg = torch.tensor([[[1.0, 1.0, 1.0], [10.0, 10.0, 1.0], [20.0, 20.0, 1.0]]])  # zero area
    assert (rasterize(deg, torch.tensor([[0, 1, 2]]), (24, 24)).face_idx == -1).all()


def test_barycentrics_are_differentiable() -> None:
    verts = torch.tensor([[[2.0, 2.0, 2.0], [20.0, 3.0, 2.5], [5.0, 18.0, 3.0]]], requires_grad=True)
    frag = rasterize(verts, torch.tensor([[0, 1, 2]]), (24, 24))
    frag.bary[..., 0].sum().backward()
    assert verts.grad is not None and verts.grad.abs().sum() > 0


def test_project_vertices_matches_pinhole() -> None:
    X = torch.randn(2, 5, 3, dtype=torch.float64)
    t = torch.tensor([[0.1, 0.2, 10.0], [0.0, -0.3, 20.0]], dtype=torch.float64)
    pp = torch.tensor([[100.0, 90.0], [50.0, 60.0]], dtype=torch.float64)
    out = project_vertices(X, t, torch.tensor([500.0, 800.0], dtype=torch.float64), pp)
    P = X + t[:, None]
    assert torch.allclose(out[1, :, 0], 800 * P[1, :, 0] / P[1, :, 2] + 50)
    assert torch.allclose(out[0, :, 1], 500 * P[0, :, 1] / P[0, :, 2] + 90)
    assert torch.allclose(out[..., 2], P[..., 2])


def test_compact_and_static_paths_agree_and_static_makes_one_sync() -> None:
    """``compact=True`` (barycentrics at the covered pixels only) and the default static-shape path give the
    same fragments and gradients; the static path costs one host sync (the candidate count), compact two."""
    from pymaf.train.syncs import SyncCounter
    rng = np.random.default_rng(5)
    B, F, H, W = 3, 40, 20, 26
    verts = torch.tensor(np.concatenate([rng.uniform(-3, 29, (B, 3 * F, 2)), rng.uniform(1, 4, (B, 3 * F, 1))], -1))
    verts[1, :6, :2] = float("nan")            # non-finite faces are dropped on both paths
    faces = torch.arange(3 * F).view(F, 3)
    for pc in (True, False):
        with SyncCounter() as c:
            dense = rasterize(verts, faces, (H, W), perspective_correct=pc)
        assert c.total == 1, c.summary()
        with SyncCounter() as c:
            comp = rasterize(verts, faces, (H, W), perspective_correct=pc, compact=True)
        assert c.total == 2, c.summary()
        assert torch.equal(dense.face_idx, comp.face_idx) and torch.equal(dense.bary, comp.bary)
        assert torch.equal(dense.depth, comp.depth) and (dense.face_idx >= 0).any()
    grads = []
    for compact in (False, True):
        v = verts.clone().requires_grad_()
        frag = rasterize(v, faces, (H, W), compact=compact)
        (frag.bary[..., 0].sum() + frag.depth[frag.face_idx >= 0].sum()).backward()
        grads.append(v.grad)
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("compact", [False, True])
def test_window_equals_the_full_screen_crop(compact: bool) -> None:
    """rasterize(origin=...) on an h x w window equals that window of the full render bit for bit, faces cut by
    the window's borders included."""
    gen = torch.Generator().manual_seed(3)
    H, W = 40, 56
    verts = torch.cat([torch.rand(2, 30, 2, generator=gen) * torch.tensor([W + 10.0, H + 10.0]) - 5,
                       2 + torch.rand(2, 30, 1, generator=gen)], -1)
    faces = torch.randint(0, 30, (60, 3), generator=gen)
    full = rasterize(verts, faces, (H, W), compact=compact)
    for top, left, h, w in [(7, 11, 20, 30), (0, 0, H, W), (31, 40, 9, 16), (5, 0, 1, 1)]:
        win = rasterize(verts, faces, (h, w), compact=compact, origin=(top, left))
        for a, b in zip(win, full):
            assert torch.equal(a, b[:, top:top + h, left:left + w])
