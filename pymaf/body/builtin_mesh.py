"""Geometry of the built-in SMPL-format body (issue 3 "Built-in body model"; spec §2.1, §9).

A bilaterally symmetric T-pose person in SMPL's template frame: metres, y up, facing +z, the person's
LEFT at +x, soles at y ~ -1.19, top of the head at y ~ 0.51, the 24 joints where SMPL's neutral
template has them (symmetrised).

Construction (deterministic, no randomness):
1. A quad *cage* is box-modelled: the torso is a tube of rings around a W x D grid, closed by grid caps;
   legs (bottom cap), neck + head (top cap) and arms (side walls) are extruded from disk-shaped face
   regions station by station along a key-framed path with elliptical cross-sections. Extrusion keeps the
   surface closed and genus 0. The cage has exactly 1724 vertices.
2. One Catmull-Clark step: V = 4 * 1724 - 6 = 6890 vertices and 6888 quads, i.e. 13776 triangles after a
   mirror-symmetric triangulation: exactly SMPL's counts (a closed genus-0 mesh has F = 2V - 4).
3. Small Gaussian bumps add a nose, ears and thumbs.

Skinning weights are defined on the cage from each vertex's position along its body chain (smooth partition
of unity across each joint), carried through the subdivision linearly and smoothed on the final mesh.
Vertex order here is construction order (cage vertices first); ``builtin.py`` permutes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial import cKDTree

NUM_JOINTS = 24
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)  # SMPL kintree
JOINT_FLIP = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)  # §2.4
# Midline and LEFT joints (SMPL v1.0 neutral template, symmetrised); right joints are mirrored (x -> -x).
_JOINTS_HALF = {
    0: (0.0, -0.223, 0.028), 1: (0.069, -0.314, 0.023), 3: (0.0, -0.114, 0.001), 4: (0.104, -0.702, 0.018),
    6: (0.0, 0.021, 0.003), 7: (0.090, -1.109, -0.021), 9: (0.0, 0.074, 0.028), 10: (0.115, -1.168, 0.105),
    12: (0.0, 0.288, -0.015), 13: (0.076, 0.197, -0.008), 15: (0.0, 0.345, 0.030), 16: (0.173, 0.225, -0.020),
    18: (0.432, 0.213, -0.043), 20: (0.682, 0.222, -0.043), 22: (0.766, 0.214, -0.058),
}
N_CAGE = 1724  # 4 * N_CAGE - 6 = 6890
_W, _D = 8, 5  # torso grid: 8 cells across (x), 5 deep (z); ring of 2 * (8 + 5) = 26 cage vertices
_N_TORSO, _N_LEG, _N_ARM, _N_HEAD = 16, 22, 19, 12  # rings / stations; see the count check in build_cage
# torso key frames: y, half-width a, front z, back z
_TORSO_KF = np.array([
    [-0.34, 0.174, 0.085, -0.108], [-0.29, 0.178, 0.100, -0.122], [-0.23, 0.176, 0.108, -0.118],
    [-0.17, 0.160, 0.110, -0.098], [-0.11, 0.142, 0.106, -0.085], [-0.05, 0.130, 0.102, -0.080],
    [0.01, 0.134, 0.100, -0.084], [0.07, 0.146, 0.110, -0.092], [0.13, 0.158, 0.122, -0.098],
    [0.19, 0.162, 0.112, -0.100], [0.245, 0.150, 0.070, -0.088]])
# limb key frames (LEFT side): centre x, y, z, radius along u, radius along v, superellipse exponent
_ARM_KF = np.array([  # u = +y (up), v = +z (front)
    [0.200, 0.214, -0.022, 0.058, 0.056, 2.0], [0.250, 0.219, -0.026, 0.053, 0.052, 2.0],
    [0.300, 0.220, -0.030, 0.050, 0.049, 2.0], [0.350, 0.218, -0.034, 0.046, 0.045, 2.0],
    [0.400, 0.215, -0.038, 0.042, 0.042, 2.0], [0.432, 0.213, -0.042, 0.039, 0.041, 2.0],
    [0.470, 0.214, -0.043, 0.040, 0.043, 2.0], [0.520, 0.216, -0.043, 0.037, 0.041, 2.0],
    [0.580, 0.219, -0.043, 0.032, 0.037, 2.0], [0.640, 0.221, -0.043, 0.025, 0.033, 2.0],
    [0.680, 0.222, -0.044, 0.021, 0.031, 2.2], [0.720, 0.221, -0.047, 0.019, 0.038, 2.6],
    [0.770, 0.218, -0.050, 0.018, 0.046, 3.0], [0.820, 0.215, -0.052, 0.013, 0.044, 3.0],
    [0.855, 0.213, -0.052, 0.010, 0.039, 3.0]])
_LEG_KF = np.array([  # u = +x, v = +z on the thigh; the frame is transported, so v = +y (up) on the foot
    [0.095, -0.400, 0.010, 0.085, 0.094, 2.0], [0.096, -0.460, 0.012, 0.080, 0.087, 2.0],
    [0.098, -0.530, 0.014, 0.070, 0.077, 2.0], [0.101, -0.600, 0.016, 0.062, 0.067, 2.0],
    [0.103, -0.660, 0.018, 0.055, 0.059, 2.0], [0.104, -0.705, 0.020, 0.051, 0.055, 2.0],
    [0.103, -0.750, 0.012, 0.050, 0.055, 2.0], [0.101, -0.810, 0.000, 0.052, 0.058, 2.0],
    [0.098, -0.870, -0.006, 0.048, 0.053, 2.0], [0.095, -0.940, -0.012, 0.041, 0.045, 2.0],
    [0.092, -1.010, -0.016, 0.034, 0.037, 2.0], [0.090, -1.080, -0.020, 0.032, 0.036, 2.0],
    [0.090, -1.130, -0.024, 0.036, 0.050, 2.2], [0.093, -1.160, 0.010, 0.042, 0.036, 2.5],
    [0.100, -1.165, 0.060, 0.046, 0.028, 3.0], [0.107, -1.170, 0.110, 0.047, 0.022, 3.0],
    [0.113, -1.174, 0.150, 0.045, 0.017, 3.0]])
_HEAD_KF = np.array([  # u = +x, v = -z
    [0.0, 0.300, -0.012, 0.054, 0.054, 2.0], [0.0, 0.330, -0.002, 0.056, 0.060, 2.0],
    [0.0, 0.355, 0.012, 0.066, 0.082, 2.0], [0.0, 0.380, 0.016, 0.074, 0.093, 2.0],
    [0.0, 0.410, 0.017, 0.078, 0.097, 2.0], [0.0, 0.440, 0.014, 0.078, 0.096, 2.0],
    [0.0, 0.470, 0.009, 0.070, 0.087, 2.0], [0.0, 0.495, 0.004, 0.053, 0.066, 2.0]])
_TIP = {"arm": 0.022, "leg": 0.030, "head": 0.022}


def template_joints() -> np.ndarray:
    """Design joint locations [24, 3] (float64), mirror-symmetric."""
    J = np.zeros((NUM_JOINTS, 3))
    for j, p in _JOINTS_HALF.items():
        J[j] = p
        J[JOINT_FLIP[j]] = (-p[0], p[1], p[2])
    return J


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _chain_weights(s: float, bones: tuple[int, ...], cuts: list[float], half: tuple[float, ...]) -> np.ndarray:
    """Partition of unity over ``bones`` along a chain parameter ``s``; bone i -> i+1 at ``cuts[i]``."""
    c = [1.0]
    for cut, h in zip(cuts, half):
        c.append(min(c[-1], _smoothstep((s - cut + h) / (2.0 * h))))
    c.append(0.0)
    w = np.zeros(NUM_JOINTS)
    for i, b in enumerate(bones):
        w[b] += c[i] - c[i + 1]
    return w


def _torso_weights(p: np.ndarray) -> np.ndarray:
    """Pelvis/spine chain along y; hips at the bottom sides, collars at the top sides."""
    x, y = float(p[0]), float(p[1])
    w = _chain_weights(y, (0, 3, 6, 9), [-0.114, 0.021, 0.074], (0.05, 0.035, 0.03))
    if x != 0.0:
        ax, left = abs(x), x > 0
        for frac, joint in ((_smoothstep((-0.25 - y) / 0.10) * _smoothstep((ax - 0.02) / 0.06), 1 if left else 2),
                            (_smoothstep((ax - 0.05) / 0.09) * _smoothstep((y - 0.10) / 0.10), 13 if left else 14)):
            w *= 1.0 - frac
            w[joint] += frac
    return w


class _Cage:
    """A growing quad mesh with per-vertex skinning weights."""

    def __init__(self) -> None:
        self.p: list[np.ndarray] = []
        self.w: list[np.ndarray] = []
        self.q: list[list[int]] = []

    def vert(self, p: np.ndarray, w: np.ndarray) -> int:
        self.p.append(np.asarray(p, dtype=np.float64))
        self.w.append(np.asarray(w, dtype=np.float64))
        return len(self.p) - 1


def _square_to_superellipse(u: float, v: float, e: float = 2.2) -> tuple[float, float]:
    """Map a point of the square [-1,1]^2 to the superellipse |x|^e + |z|^e <= 1 (boundary to boundary)."""
    s = max(abs(u), abs(v))
    if s == 0.0:
        return 0.0, 0.0
    k = s / (abs(u) ** e + abs(v) ** e) ** (1.0 / e)
    return u * k, v * k


def _build_torso(cage: _Cage) -> dict[str, list[int]]:
    """Torso rings + grid caps; returns the face regions that limbs are extruded from."""
    ys = np.concatenate([np.linspace(-0.34, 0.13, _N_TORSO - 2), [0.19, 0.245]])
    prof = [PchipInterpolator(_TORSO_KF[:, 0], _TORSO_KF[:, c]) for c in (1, 2, 3)]
    cells = ([(i, 0) for i in range(_W)] + [(_W, j) for j in range(_D)] + [(i, _D) for i in range(_W, 0, -1)]
             + [(0, j) for j in range(_D, 0, -1)])
    L = len(cells)

    def place(i: int, j: int, y: float, dy: float = 0.0) -> np.ndarray:
        a, zf, zb = (float(f(y)) for f in prof)
        pu, pv = _square_to_superellipse(2.0 * i / _W - 1.0, 2.0 * j / _D - 1.0)
        return np.array([a * pu, y + dy, 0.5 * (zf + zb) + 0.5 * (zf - zb) * pv])

    rings = [[cage.vert(place(i, j, y), _torso_weights(place(i, j, y))) for (i, j) in cells] for y in ys]
    ring_face = {}
    for k in range(len(ys) - 1):
        for b in range(L):
            ring_face[k, b] = len(cage.q)
            cage.q.append([rings[k][b], rings[k][(b + 1) % L], rings[k + 1][(b + 1) % L], rings[k + 1][b]])
    caps = {}
    for name, ring, y in (("bottom", rings[0], ys[0]), ("top", rings[-1], ys[-1])):
        grid = {cell: ring[n] for n, cell in enumerate(cells)}
        for i in range(1, _W):
            for j in range(1, _D):
                u, v = 2.0 * i / _W - 1.0, 2.0 * j / _D - 1.0
                s2 = max(abs(u), abs(v)) ** 2
                dy = -0.03 * (1 - s2) if name == "bottom" else (1 - s2) * (0.05 - 0.015 * v)
                p = place(i, j, y, dy)
                grid[i, j] = cage.vert(p, _torso_weights(p))
        for i in range(_W):
            for j in range(_D):
                caps[name, i, j] = len(cage.q)
                cage.q.append([grid[i, j], grid[i + 1, j], grid[i + 1, j + 1], grid[i, j + 1]])
    _orient(cage)
    top = len(ys) - 3  # arms: the side-wall faces of the top two ring intervals, depth cells 1..3
    return {
        "leg_l": [caps["bottom", i, j] for i in range(5, 8) for j in range(_D)],
        "leg_r": [caps["bottom", i, j] for i in range(0, 3) for j in range(_D)],
        "head": [caps["top", i, j] for i in range(2, 6) for j in range(1, 4)],
        "arm_l": [ring_face[k, b] for k in (top, top + 1) for b in range(_W + 1, _W + 4)],
        "arm_r": [ring_face[k, b] for k in (top, top + 1) for b in range(2 * _W + _D + 1, 2 * _W + _D + 4)],
    }


def _orient(cage: _Cage) -> None:
    """Make all quads consistently oriented (BFS), outward (positive signed volume)."""
    owner = {}
    for fi, q in enumerate(cage.q):
        for k in range(4):
            owner.setdefault((min(q[k], q[k - 1]), max(q[k], q[k - 1])), []).append(fi)
    done, stack = {0}, [0]
    while stack:
        fi = stack.pop()
        q = cage.q[fi]
        for k in range(4):
            a, b = q[k - 1], q[k]
            for fj in owner[min(a, b), max(a, b)]:
                if fj in done:
                    continue
                qj = cage.q[fj]
                if any(qj[m - 1] == a and qj[m] == b for m in range(4)):
                    cage.q[fj] = qj[::-1]
                done.add(fj)
                stack.append(fj)
    P, Q = np.array(cage.p), np.array(cage.q)
    vol = np.einsum("ij,ij->i", P[Q[:, 0]], np.cross(P[Q[:, 1]], P[Q[:, 2]])).sum() + \
        np.einsum("ij,ij->i", P[Q[:, 0]], np.cross(P[Q[:, 2]], P[Q[:, 3]])).sum()
    if vol < 0:
        cage.q = [q[::-1] for q in cage.q]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def _extrude_limb(cage: _Cage, region: list[int], kf: np.ndarray, n_st: int, u_hint: np.ndarray, tip: float,
                  bones: tuple[int, ...], joint_pts: list[np.ndarray | None], half: tuple[float, ...]) -> None:
    """Extrude the disk ``region`` through ``n_st`` stations resampled (by arc length) from key frames ``kf``.

    The region's faces become the end cap; its interior vertices move to a dome beyond the last station.
    Skinning weights follow the chain ``bones`` with transitions at the arc positions of ``joint_pts``.
    """
    dedges = {(cage.q[f][k - 1], cage.q[f][k]) for f in region for k in range(4)}
    nxt = {a: b for (a, b) in dedges if (b, a) not in dedges}
    loop = [min(nxt)]
    while nxt[loop[-1]] != loop[0]:
        loop.append(nxt[loop[-1]])
    interior = sorted({v for f in region for v in cage.q[f]} - set(loop))
    P = np.array(cage.p)
    c0 = P[loop].mean(0)
    sk = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(kf[:, :3], axis=0), axis=1))])
    st = np.stack([PchipInterpolator(sk, kf[:, c])(np.linspace(0.0, sk[-1], n_st)) for c in range(6)], 1)
    centers = st[:, :3]
    tip_dir = _unit(centers[-1] - centers[-2])
    path = np.vstack([c0, centers, centers[-1] + tip * tip_dir])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])

    def arc_of(pt: np.ndarray) -> float:  # arc length of the closest point of the path polyline
        a, d = path[:-1], np.diff(path, axis=0)
        t = np.clip(np.einsum("ij,ij->i", pt - a, d) / np.einsum("ij,ij->i", d, d), 0.0, 1.0)
        dist = np.linalg.norm(a + t[:, None] * d - pt, axis=1)
        i = int(np.argmin(dist))
        return float(arc[i] + t[i] * np.linalg.norm(d[i]))

    cuts = [0.0 if p is None else arc_of(np.asarray(p)) for p in joint_pts]
    w_axis = _unit(centers[0] - c0)
    u = _unit(u_hint - (u_hint @ w_axis) * w_axis)
    v = np.cross(w_axis, u)
    d = P[loop] - c0
    theta = np.arctan2(d @ v, d @ u)
    steps = np.angle(np.exp(1j * (np.roll(theta, -1) - theta)))
    sgn = float(np.sign(steps.sum()))
    k = np.arange(len(loop))
    r = theta - sgn * 2 * np.pi * k / len(loop)
    phi = np.arctan2(np.sin(r).mean(), np.cos(r).mean()) + sgn * 2 * np.pi * k / len(loop)
    di = P[interior] - c0
    qu = (di @ u) / np.abs(d @ u).max()
    qv = (di @ v) / np.abs(d @ v).max()
    prev = loop
    for i in range(n_st):
        t_dir = _unit(path[i + 2] - path[i])
        u = _unit(u - (u @ t_dir) * t_dir)
        v = np.cross(t_dir, u)
        e = st[i, 5]
        cs = np.sign(np.cos(phi)) * np.abs(np.cos(phi)) ** (2.0 / e)
        sn = np.sign(np.sin(phi)) * np.abs(np.sin(phi)) ** (2.0 / e)
        wts = _chain_weights(arc[i + 1], bones, cuts, half)
        new = [cage.vert(centers[i] + st[i, 3] * cs[n] * u + st[i, 4] * sn[n] * v, wts) for n in range(len(loop))]
        remap = dict(zip(prev, new))
        for n in range(len(loop)):
            a, b = prev[n], prev[(n + 1) % len(loop)]
            cage.q.append([a, b, remap[b], remap[a]])
        for f in region:
            cage.q[f] = [remap.get(x, x) for x in cage.q[f]]
        prev = new
    wts = _chain_weights(arc[-1], bones, cuts, half)
    for n, vi in enumerate(interior):
        h = tip * max(0.0, 1.0 - 0.5 * (qu[n] ** 2 + qv[n] ** 2))
        cage.p[vi] = centers[-1] + 0.8 * (st[-1, 3] * qu[n] * u + st[-1, 4] * qv[n] * v) + h * tip_dir
        cage.w[vi] = wts


def mirror_vertex_indices(vertices: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """For a mirror-symmetric mesh [V,3]: int64 [V], the vertex at (-x, y, z) of each vertex (x -> -x)."""
    flipped = vertices * np.array([-1.0, 1.0, 1.0])
    dist, idx = cKDTree(vertices).query(flipped)
    if dist.max() > tol:
        raise ValueError(f"mesh is not mirror-symmetric: a vertex's mirror is {dist.max():.3g} m away (tol {tol})")
    return idx.astype(np.int64)


def _symmetrize(P: np.ndarray, W: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly mirror-symmetric copies of positions [V,3] and weights [V,24]; returns (P, W, mirror)."""
    m = mirror_vertex_indices(P, tol)
    if not np.array_equal(m[m], np.arange(len(P))):
        raise ValueError("mirror map is not an involution")
    P, W = P.copy(), W.copy()
    mid = m == np.arange(len(P))
    P[mid, 0] = 0.0
    W[mid] = 0.5 * (W[mid] + W[mid][:, list(JOINT_FLIP)])
    left = P[:, 0] > 0
    P[m[left]] = P[left] * np.array([-1.0, 1.0, 1.0])
    W[m[left]] = W[left][:, list(JOINT_FLIP)]
    return P, W, m


def build_cage() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The symmetric quad cage: positions [1724,3], weights [1724,24], quads [1722,4] (outward, CCW)."""
    cage = _Cage()
    regions = _build_torso(cage)
    J = template_joints()
    for side, sgn in (("l", 1.0), ("r", -1.0)):
        jl = (lambda j: j) if side == "l" else (lambda j: JOINT_FLIP[j])
        kf_leg, kf_arm = _LEG_KF.copy(), _ARM_KF.copy()
        kf_leg[:, 0] *= sgn
        kf_arm[:, 0] *= sgn
        _extrude_limb(cage, regions["leg_" + side], kf_leg, _N_LEG, np.array([sgn, 0.0, 0.0]), _TIP["leg"],
                      (0, jl(1), jl(4), jl(7), jl(10)), [None, J[jl(4)], J[jl(7)], J[jl(10)]],
                      (0.05, 0.05, 0.035, 0.03))
        _extrude_limb(cage, regions["arm_" + side], kf_arm, _N_ARM, np.array([0.0, 1.0, 0.0]), _TIP["arm"],
                      (jl(13), jl(16), jl(18), jl(20), jl(22)), [J[jl(16)], J[jl(18)], J[jl(20)], J[jl(22)]],
                      (0.03, 0.045, 0.03, 0.025))
    _extrude_limb(cage, regions["head"], _HEAD_KF, _N_HEAD, np.array([1.0, 0.0, 0.0]), _TIP["head"],
                  (9, 12, 15), [J[12] + np.array([0, 0.005, 0]), J[15] - np.array([0, 0.012, 0])], (0.03, 0.025))
    P, W, Q = np.array(cage.p), np.array(cage.w), np.array(cage.q, dtype=np.int64)
    if len(P) != N_CAGE:
        raise AssertionError(f"cage has {len(P)} vertices, expected {N_CAGE} (adjust the station counts)")
    P, W, _ = _symmetrize(P, W, 1e-6)
    return P, W, Q


def catmull_clark(P: np.ndarray, W: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Catmull-Clark step of a closed quad mesh. Positions are smoothed; the per-vertex attributes ``W``
    are interpolated linearly. New vertex order: old vertices, edge points, face points."""
    nv, nf = len(P), len(Q)
    he = np.stack([Q, np.roll(Q, -1, axis=1)], -1).reshape(-1, 2)  # half-edges (a, b), 4 per face
    key = np.sort(he, axis=1)
    edges, e_of_he = np.unique(key, axis=0, return_inverse=True)
    e_of_he = e_of_he.ravel()
    ne = len(edges)
    face_of_he = np.repeat(np.arange(nf), 4)
    fp = P[Q].mean(1)
    e_faces = np.zeros((ne, 2), dtype=np.int64)
    order = np.argsort(e_of_he, kind="stable")
    e_faces[:] = face_of_he[order].reshape(ne, 2)
    ep = (P[edges].sum(1) + fp[e_faces].sum(1)) / 4.0
    valence = np.bincount(edges.ravel(), minlength=nv).astype(np.float64)
    f_sum = np.zeros((nv, 3))
    np.add.at(f_sum, Q.ravel(), np.repeat(fp, 4, axis=0))
    r_sum = np.zeros((nv, 3))
    mid = P[edges].mean(1)
    np.add.at(r_sum, edges[:, 0], mid)
    np.add.at(r_sum, edges[:, 1], mid)
    n = valence[:, None]
    newP = (f_sum / n + 2.0 * r_sum / n + (n - 3.0) * P) / n
    P1 = np.vstack([newP, ep, fp])
    W1 = np.vstack([W, W[edges].mean(1), W[Q].mean(1)])
    e_id = (nv + e_of_he).reshape(nf, 4)  # edge point of edge (q[k], q[k+1])
    f_id = nv + ne + np.arange(nf)
    quads = [np.stack([Q[:, k], e_id[:, k], f_id, e_id[:, k - 1]], 1) for k in range(4)]
    Q1 = np.stack(quads, 1).reshape(-1, 4)
    return P1, W1, Q1


def triangulate(P: np.ndarray, Q: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal (ties broken by mirror-invariant vertex ids), so the
    triangulation of a mirror-symmetric quad mesh is mirror-symmetric. Returns int64 [2 * len(Q), 3]."""
    d02 = ((P[Q[:, 0]] - P[Q[:, 2]]) ** 2).sum(1)
    d13 = ((P[Q[:, 1]] - P[Q[:, 3]]) ** 2).sum(1)
    canon = np.minimum(np.arange(len(P)), mirror)
    tie = np.minimum(canon[Q[:, 0]], canon[Q[:, 2]]) < np.minimum(canon[Q[:, 1]], canon[Q[:, 3]])
    use02 = np.where(np.abs(d02 - d13) > 1e-12 * (d02 + d13), d02 < d13, tie)
    t02 = np.concatenate([Q[:, [0, 1, 2]], Q[:, [0, 2, 3]]], 1)
    t13 = np.concatenate([Q[:, [0, 1, 3]], Q[:, [1, 2, 3]]], 1)
    return np.where(use02[:, None], t02, t13).reshape(-1, 3)


def _bump(P: np.ndarray, center: tuple[float, float, float], sigma: tuple[float, float, float],
          amp: tuple[float, float, float], mask: np.ndarray) -> np.ndarray:
    """Mirror-pair of Gaussian displacements; ``center``/``amp`` are given for the left side (x >= 0)."""
    side = np.sign(P[:, 0])
    c = np.array(center)
    g = np.exp(-0.5 * ((((np.abs(P[:, 0]) - c[0]) / sigma[0]) ** 2) + ((P[:, 1] - c[1]) / sigma[1]) ** 2
                       + ((P[:, 2] - c[2]) / sigma[2]) ** 2)) * mask
    return g[:, None] * (np.array(amp)[None] * np.stack([side, np.ones_like(side), np.ones_like(side)], 1))


def vertex_adjacency(faces: np.ndarray, n: int):
    """Sparse 0/1 vertex adjacency [n, n] (csr) from the boundary edges of triangles or quads [F, k]."""
    import scipy.sparse as sp
    i = faces.ravel()
    j = np.roll(faces, -1, axis=1).ravel()
    A = sp.csr_matrix((np.ones(2 * len(i)), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))
    A.data[:] = 1.0
    return A


@dataclass(frozen=True)
class BodyMesh:
    """The built-in body in construction order (cage vertices first)."""
    vertices: np.ndarray   # [6890, 3] float64, exactly mirror-symmetric
    faces: np.ndarray      # [13776, 3] int64, outward (counter-clockwise seen from outside)
    weights: np.ndarray    # [6890, 24] skinning weights, rows sum to 1
    joints: np.ndarray     # [24, 3] design joint locations
    mirror: np.ndarray     # [6890] int64 vertex at the mirrored position
    cage_faces: np.ndarray  # [3444, 3] triangulated cage on vertices 0..1723 (a coarser level of the mesh)


def build_body_mesh() -> BodyMesh:
    """The built-in T-pose body: 6890 vertices, 13776 faces, closed genus 0, mirror-symmetric."""
    Pc, Wc, Qc = build_cage()
    P, W, Q = catmull_clark(Pc, Wc, Qc)
    P, W, m = _symmetrize(P, W, 1e-9)
    A = vertex_adjacency(Q, len(P))
    deg = np.asarray(A.sum(1))
    for lam in (0.5, -0.53) * 8:  # Taubin smoothing: removes creases at the limb junctions without shrinking
        P = P + lam * ((A @ P) / deg - P)
    P, W, m = _symmetrize(P, W, 1e-9)
    head = (W[:, 12] + W[:, 15]) > 0.5
    hand = (W[:, 20] + W[:, 22] + W[:, 21] + W[:, 23]) > 0.5
    P = P + _bump(P, (0.0, 0.372, 0.11), (0.015, 0.02, 0.03), (0.0, 0.0, 0.018), head * (P[:, 2] > 0.04))
    P = P + _bump(P, (0.076, 0.39, 0.0), (0.02, 0.022, 0.016), (0.012, 0.0, 0.0), head)
    P = P + _bump(P, (0.775, 0.216, -0.005), (0.022, 0.02, 0.02), (0.0, 0.0, 0.02), hand * (P[:, 2] > -0.03))
    P, W, m = _symmetrize(P, W, 1e-9)
    F = triangulate(P, Q, m)
    A = vertex_adjacency(F, len(P))
    deg = np.asarray(A.sum(1))
    for _ in range(4):  # smooth the weights a little on the final surface
        W = 0.5 * W + 0.5 * (A @ W) / deg
    W[W < 0.01] = 0.0
    W /= W.sum(1, keepdims=True)
    P, W, m = _symmetrize(P, W, 1e-9)
    Fc = triangulate(Pc, Qc, mirror_vertex_indices(Pc))
    return BodyMesh(P, F, W, template_joints(), m, Fc)
