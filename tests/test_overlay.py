"""Demo overlays (spec §6): shaded meshes composited exactly on the silhouette pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pymaf.render.overlay import render_overlay, render_side_view
from pymaf.render.rasterizer import project_vertices, rasterize


def ellipsoid(nlon: int = 24, nlat: int = 16, radii=(0.3, 0.85, 0.15)) -> tuple[np.ndarray, np.ndarray]:
    th = np.linspace(0, np.pi, nlat + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, nlon, endpoint=False)
    ring = np.stack([np.sin(th)[:, None] * np.cos(ph), -np.cos(th)[:, None] + 0 * ph,
                     np.sin(th)[:, None] * np.sin(ph)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, -1, 0]], ring, [[0, 1, 0]]]) * np.array(radii)
    f = [[0, 1 + (j + 1) % nlon, 1 + j] for j in range(nlon)]
    for i in range(nlat - 2):
        for j in range(nlon):
            a, b = 1 + i * nlon + j, 1 + i * nlon + (j + 1) % nlon
            f += [[a, b, b + nlon], [a, b + nlon, a + nlon]]
    last, base = len(v) - 1, 1 + (nlat - 2) * nlon
    f += [[last, base + j, base + (j + 1) % nlon] for j in range(nlon)]
    return v.astype(np.float32), np.array(f)


def silhouette(verts: np.ndarray, faces: np.ndarray, t: np.ndarray, f: float, H: int, W: int) -> np.ndarray:
    """Union of the people's silhouettes with the same camera (image centre principal point)."""
    out = np.zeros((H, W), bool)
    for v, tt in zip(verts, t):
        vp = project_vertices(torch.tensor(v)[None], torch.tensor(tt, dtype=torch.float32)[None], f,
                              torch.tensor([[W / 2, H / 2]]))
        out |= (rasterize(vp, torch.tensor(faces), (H, W)).face_idx[0] >= 0).numpy()
    return out


def test_overlay_changes_exactly_the_silhouette_pixels() -> None:
    H, W, f = 96, 128, 300.0
    v, faces = ellipsoid()
    verts = np.stack([v, v * 0.8])
    t = np.array([[-0.4, 0.1, 4.0], [0.5, 0.0, 5.0]], dtype=np.float32)
    image = np.zeros((H, W, 3), np.uint8)
    image[..., 1] = 255  # pure green: no shaded purple/orange pixel can be that colour
    out = render_overlay(image, verts, faces, t, f)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = np.any(out != image, -1)
    sil = silhouette(verts, faces, t, f, H, W)
    assert sil.sum() > 500
    assert np.array_equal(changed, sil)
    # alpha 0 changes nothing; half alpha stays between the image and the opaque render
    assert np.array_equal(render_overlay(image, verts, faces, t, f, alpha=0.0), image)
    half = render_overlay(image, verts, faces, t, f, alpha=0.5).astype(int)
    assert np.all(np.abs(half - (out.astype(int) + image) / 2) <= 1)


def test_nearest_person_wins_and_colors() -> None:
    H = W = 64
    v, faces = ellipsoid()
    verts = np.stack([v, v])
    t = np.array([[0.5, 0.0, 6.0], [0.1, 0.0, 4.0]], dtype=np.float32)  # person 1 in front, overlapping
    image = np.zeros((H, W, 3), np.uint8)
    out = render_overlay(image, verts, faces, t, 150.0, colors=[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    front = silhouette(verts[1:], faces, t[1:], 150.0, H, W)
    back = silhouette(verts[:1], faces, t[:1], 150.0, H, W)
    back_only = back & ~front
    assert front.sum() > 100 and back_only.sum() > 10 and (back & front).sum() > 100  # they overlap
    assert np.all(out[front][:, 0] == 0) and np.all(out[front][:, 2] > 0)  # blue person in front
    assert np.all(out[back_only][:, 2] == 0) and np.all(out[back_only][:, 0] > 0)
    # Lambert shading: intensities vary over the surface, bounded by the base colour
    assert out[front][:, 2].max() > out[front][:, 2].min() + 40


def test_principal_point_shifts_the_render() -> None:
    H = W = 64
    v, faces = ellipsoid()
    image = np.zeros((H, W, 3), np.uint8)
    a = render_overlay(image, v[None], faces, np.array([[0, 0, 5.0]]), 120.0)
    b = render_overlay(image, v[None], faces, np.array([[0, 0, 5.0]]), 120.0, principal_point=(W / 2 + 7, H / 2))
    assert np.array_equal(a[:, :-7], b[:, 7:])


@pytest.mark.parametrize("angle", [90.0, 270.0])
def test_side_view(angle: float) -> None:
    H = W = 64
    v, faces = ellipsoid(radii=(0.4, 0.85, 0.1))  # wide and flat: the side view is narrower
    t = np.array([[0, 0, 5.0]], dtype=np.float32)
    side = render_side_view(v[None], faces, t, 120.0, (H, W), angle_deg=angle)
    front = render_overlay(np.zeros((H, W, 3), np.uint8), v[None], faces, t, 120.0)
    assert side.shape == (H, W, 3) and side.dtype == np.uint8
    fg_side = np.any(side != 25, -1)
    fg_front = np.any(front != 0, -1)
    width = lambda m: np.any(m, 0).sum()  # noqa: E731
    assert 0 < width(fg_side) < 0.5 * width(fg_front)
    assert np.all(side[~fg_side] == 25)


def test_per_vertex_colours() -> None:
    """Constant per-vertex colours render like the per-mesh colour; two colour halves split the silhouette."""
    H = W = 64
    v, faces = ellipsoid()
    t = np.array([[0.0, 0.0, 4.0]], dtype=np.float32)
    image = np.zeros((H, W, 3), np.uint8)
    per_mesh = render_overlay(image, v[None], faces, t, 150.0, colors=[[0.2, 0.6, 0.9]])
    per_vertex = render_overlay(image, v[None], faces, t, 150.0, colors=np.tile([0.2, 0.6, 0.9], (1, len(v), 1)))
    assert np.abs(per_mesh.astype(int) - per_vertex).max() <= 1  # barycentric sums are 1 up to rounding
    halves = np.where(v[:, :1] < 0, [1.0, 0.0, 0.0], [0.0, 0.0, 1.0])[None]  # left red, right blue
    out = render_overlay(image, v[None], faces, t, 150.0, colors=halves)
    sil = np.any(out > 0, -1)
    cols = np.nonzero(sil.any(0))[0]
    left, right = out[:, cols[0]:cols[0] + 5][sil[:, cols[0]:cols[0] + 5]], out[:, cols[-1] - 4:][sil[:, cols[-1] - 4:]]
    assert np.all(left[:, 0] > left[:, 2]) and np.all(right[:, 2] > right[:, 0])


def test_window_render_equals_the_full_frame_render(monkeypatch) -> None:
    """Only the people's box is rasterised and composited; the frames equal those of a full-frame render bit for
    bit: three people, one partly outside the frame, one with vertices behind the camera, per-vertex colours."""
    import pymaf.render.overlay as overlay

    H, W, f = 90, 120, 200.0
    v, faces = ellipsoid()
    verts = np.stack([v, v * 0.9, v])
    # person 0 in view, person 1 cut by the right border, person 2 straddling the camera plane (z in -0.15..0.15)
    t = np.array([[-0.3, 0.1, 4.0], [1.3, 0.2, 3.0], [0.2, 0.0, 0.0]], dtype=np.float32)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    colors = rng.random((3, len(v), 3)).astype(np.float32)
    def renders() -> list[np.ndarray]:
        return [render_overlay(image, verts, faces, t, f),
                render_overlay(image, verts, faces, t, f, colors=colors, alpha=0.6),
                render_side_view(verts, faces, t, f, (H, W)), render_side_view(verts[:2], faces, t[:2], f, (H, W))]

    windowed = renders()
    win = overlay._covered_window
    seen = []
    monkeypatch.setattr(overlay, "_covered_window", lambda vp, h, w: seen.append(win(vp, h, w)) or (0, 0, h, w))
    full = renders()
    for a, b in zip(windowed, full):
        assert np.array_equal(a, b)
    assert np.any(windowed[0] != image) and np.any(windowed[2][..., 0] != 25)
    top, left, h, w = seen[3]
    assert 0 < h < H and 0 < w and left + w == W  # two people in front: a window that the right border cuts
    # nobody in front of the camera: nothing to rasterise, the image comes back unchanged
    behind = t.copy()
    behind[:, 2] = -5.0
    monkeypatch.setattr(overlay, "_covered_window", win)
    assert np.array_equal(render_overlay(image, verts, faces, behind, f), image)
