"""The built-in body model: a generated SMPL-format data root (issue 3; spec §1.6, §2, §3.6, §5.3, §9).

``write_builtin_body(out_dir)`` writes every body-model file of the data-root layout in the real formats and
shapes, so the project runs end to end without the licensed SMPL files; the loaders read it exactly as they
read the real files. The geometry (a symmetric T-pose person, 6890 vertices, 13776 faces, genus 0) comes
from ``builtin_mesh``; this module orders the vertices, derives the model arrays and writes the files:

* ``smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz``: v_template, shapedirs (10 smooth directions: 0 stature, 1 girth,
  2 limb length, 3 shoulder width, 4 hip width, 5 torso length, 6 leg length, 7 chest depth, 8 belly,
  9 head size), posedirs (a bulge and a small extra rotation near each joint, driven by its R - I entries),
  J_regressor (each joint a convex combination of nearby vertices), weights, kintree_table, f.
  Male / female templates are the neutral one moved along the shape directions.
* ``smpl_mean_params.npz`` (§2.5), ``J_regressor_extra.npy`` (9 rows of §2.1), ``J_regressor_h36m.npy``
  (17 rows of §2.3), ``mesh_downsampling.npz`` (GraphCMR format, §1.6: the 431 selected vertex ids are exactly
  Appendix A's ``IDX431``), ``UV_data/UV_Processed.mat`` (DensePose format, §3.6, one part per face, parts from
  the dominant skinning joint, U/V cylindrical per part), ``vertex_texture.npy`` + ``cube_parts.npy`` (§5.3).
* Vertex ids: smplx's vertex-picked joints (§2.1: nose 332, eyes, ears, toes, heels, finger tips) sit at the
  matching places of this mesh.

Six-part convention of ``cube_parts`` (LSP evaluation): 1 head, 2 torso, 3 left arm, 4 right arm, 5 left leg,
6 right leg (left = the person's left, +x). DensePose head parts: 23 = right half, 24 = left half; paired limb
and torso parts: the first id of each pair is the back (normal z <= 0), the second the front.

The mesh is exactly mirror-symmetric (x -> -x, see ``mirror_vertex_indices``); part ids mirror to their
left/right partners. ``seed`` only changes the mean shape of ``smpl_mean_params.npz``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
from scipy.optimize import nnls
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from pymaf.body.builtin_mesh import (JOINT_FLIP, N_CAGE, NUM_JOINTS, PARENTS, BodyMesh, build_body_mesh,
                                     mirror_vertex_indices)
from pymaf.body.joints import IDX431, VERTEX_JOINT_IDS
from pymaf.paths import atomic_write

__all__ = ["BUILTIN_VERSION", "write_builtin_body", "mirror_vertex_indices", "PART6_NAMES"]

BUILTIN_VERSION = 2  # bump whenever the generated files change
PART6_NAMES = ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")  # cube_parts labels 1..6
_X = np.array([-1.0, 1.0, 1.0])
# smplx vertex-picked joints (§2.1): name -> target on the LEFT side (or midline), right id mirrored; "cage" =
# must be a cage vertex (RBigToe and RHeel are among the 431 Dmap vertices of Appendix A).
_NAMED = {  # name: (left id, right id or None, target, cage only)
    "eye": (2800, 6260, (0.032, 0.405, 0.10), False), "ear": (583, 4071, (0.09, 0.39, 0.0), False),
    "bigtoe": (3216, 6617, (0.085, -1.18, 0.19), True), "smalltoe": (3226, 6624, (0.145, -1.18, 0.15), False),
    "heel": (3387, 6787, (0.09, -1.19, -0.075), True), "thumb": (2746, 6191, (0.775, 0.216, 0.03), False),
    "index": (2319, 5782, (0.875, 0.214, -0.022), False), "middle": (2445, 5905, (0.88, 0.214, -0.045), False),
    "ring": (2556, 6016, (0.875, 0.214, -0.068), False), "pinky": (2673, 6133, (0.86, 0.214, -0.088), False),
}
_NOSE_ID = 332
# DensePose part per dominant joint: (back, front) pairs or a single part (left = +x joints); §3.6.
_DP_OF_JOINT = {0: (1, 2), 3: (1, 2), 6: (1, 2), 9: (1, 2), 13: (1, 2), 14: (1, 2), 12: "head", 15: "head",
                1: (8, 10), 2: (7, 9), 4: (12, 14), 5: (11, 13), 7: 5, 10: 5, 8: 6, 11: 6, 16: (15, 17),
                17: (16, 18), 18: (19, 21), 19: (20, 22), 20: 4, 22: 4, 21: 3, 23: 3}
_DP_FLIP = (0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23)
_DP_TO_PART6 = (0, 2, 2, 4, 3, 5, 6, 6, 5, 6, 5, 6, 5, 6, 5, 3, 4, 3, 4, 3, 4, 3, 4, 1, 1)
# DensePose part -> (axis start joint, axis end joint) of its cylindrical U/V chart (left parts; right mirrored)
_DP_AXIS = {1: (0, 12), 2: (0, 12), 23: (12, 15), 24: (12, 15), 4: (20, 22), 3: (21, 23), 5: (7, 10), 6: (8, 11),
            8: (1, 4), 10: (1, 4), 7: (2, 5), 9: (2, 5), 12: (4, 7), 14: (4, 7), 11: (5, 8), 13: (5, 8),
            15: (16, 18), 17: (16, 18), 16: (17, 19), 18: (17, 19), 19: (18, 20), 21: (18, 20), 20: (19, 21),
            22: (19, 21)}
# extra regressor rows (§2.1) and H36M rows (§2.3): target points, left rows given, partner rows mirrored
_EXTRA_PTS = [(-0.105, -0.33, 0.015), (0.105, -0.33, 0.015), (0.0, 0.27, 0.0), (0.0, 0.495, 0.005),
              None, (0.0, 0.22, -0.005), None, None, (0.0, 0.445, 0.015)]  # None: copied from H36M rows 0, 7, 9
_H36M_PTS = [(0.0, -0.225, 0.015), (0.12, -0.26, 0.01), (0.105, -0.70, 0.02), (0.09, -1.11, -0.03),
             (-0.12, -0.26, 0.01), (-0.105, -0.70, 0.02), (-0.09, -1.11, -0.03), (0.0, -0.01, 0.005),
             (0.0, 0.22, -0.005), (0.0, 0.33, 0.06), (0.0, 0.44, 0.02), (0.165, 0.22, -0.02), (0.43, 0.215, -0.045),
             (0.675, 0.222, -0.045), (-0.165, 0.22, -0.02), (-0.43, 0.215, -0.045), (-0.675, 0.222, -0.045)]
_H36M_FLIP = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)


# ----------------------------------------------------------------------------- vertex order
def _named_vertices(mesh: BodyMesh) -> dict[int, int]:
    """smplx vertex id -> mesh vertex (construction order) for the 21 vertex-picked joints."""
    P = mesh.vertices
    out = {}
    mid = np.flatnonzero((P[:, 0] == 0.0) & (P[:, 1] > 0.33) & (P[:, 1] < 0.42))
    out[_NOSE_ID] = int(mid[np.argmax(P[mid, 2])])
    for lid, rid, target, cage_only in _NAMED.values():
        cand = np.flatnonzero(P[:, 0] > 0)
        if cage_only:
            cand = cand[cand < N_CAGE]
        v = int(cand[np.argmin(np.linalg.norm(P[cand] - np.array(target), axis=1))])
        out[lid], out[rid] = v, int(mesh.mirror[v])
    if sorted(out) != sorted(VERTEX_JOINT_IDS) or len(set(out.values())) != len(out):
        raise AssertionError("two vertex-picked joints landed on the same vertex")
    return out


def _vertex_order(mesh: BodyMesh, named: dict[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """(order [6890]: construction index of each final id, L3 vertices [431] (construction order), dropped
    cage vertex). Final ids: the named vertices get their smplx ids, 431 farthest-point-sampled cage vertices
    (including RBigToe and RHeel) get Appendix A's IDX431, the rest fill the remaining ids left side first."""
    P = mesh.vertices
    fixed_l3 = [named[6617], named[6787]]
    mid_cage = np.flatnonzero((P[:N_CAGE, 0] == 0.0))
    dropped = int(mid_cage[np.argmin(P[mid_cage, 1])])  # lowest midline cage vertex (crotch)
    excluded = set(named.values()) - set(fixed_l3) | {dropped}
    cand = np.array([v for v in range(N_CAGE) if v not in excluded])
    dist = np.min(np.linalg.norm(P[cand][:, None] - P[fixed_l3][None], axis=2), axis=1)
    chosen = list(fixed_l3)
    while len(chosen) < len(IDX431):
        k = int(np.argmax(dist))
        chosen.append(int(cand[k]))
        dist = np.minimum(dist, np.linalg.norm(P[cand] - P[cand[k]], axis=1))
    key = np.lexsort((np.arange(len(P)), P[:, 0] < 0))  # left side (and midline) first, then construction order
    order = -np.ones(len(P), dtype=np.int64)
    for sid, v in named.items():
        order[sid] = v
    rest = set(chosen) - set(fixed_l3)
    l3_rest = [v for v in key if v in rest]
    free_l3 = [i for i in IDX431 if order[i] < 0]
    order[free_l3] = l3_rest
    used = set(order[order >= 0].tolist())
    order[order < 0] = [v for v in key.tolist() if v not in used]
    if sorted(order.tolist()) != list(range(len(P))):
        raise AssertionError("vertex order is not a permutation")
    return order, np.array(chosen), dropped


def _permute(mesh: BodyMesh, order: np.ndarray) -> BodyMesh:
    inv = np.argsort(order)
    return BodyMesh(mesh.vertices[order], inv[mesh.faces], mesh.weights[order], mesh.joints,
                    inv[mesh.mirror[order]], inv[mesh.cage_faces])


# ----------------------------------------------------------------------------- regressors
def _regress_point(V: np.ndarray, tree: cKDTree, target: np.ndarray) -> np.ndarray:
    """[V] convex weights over nearby vertices reproducing ``target`` (NNLS, spread by a small ridge)."""
    r = 0.03
    while r < 1.0:
        idx = np.sort(np.asarray(tree.query_ball_point(target, r), dtype=np.int64))
        if len(idx) >= 12:
            A = np.vstack([V[idx].T, np.ones(len(idx))])
            M = np.vstack([1000.0 * A, 0.03 * np.eye(len(idx))])
            w, _ = nnls(M, np.concatenate([1000.0 * np.append(target, 1.0), np.zeros(len(idx))]), maxiter=5000)
            w[w < 1e-4 * w.max()] = 0.0
            if w.sum() > 0 and np.linalg.norm(V[idx].T @ w / w.sum() - target) < 2e-4:
                row = np.zeros(len(V))
                row[idx] = w / w.sum()
                return row
        r *= 1.3
    raise AssertionError(f"cannot regress point {target} from the mesh vertices")


def _regressor(V: np.ndarray, mirror: np.ndarray, pts: list, flip: tuple[int, ...]) -> np.ndarray:
    """Mirror-symmetric regressor [len(pts), V]: rows of left/midline points are fitted, partners mirrored."""
    tree = cKDTree(V)
    R = np.zeros((len(pts), len(V)))
    for i, p in enumerate(pts):
        if p is None or p[0] < 0:
            continue
        row = _regress_point(V, tree, np.asarray(p, dtype=np.float64))
        if flip[i] == i:
            R[i] = 0.5 * (row + row[mirror])
        else:
            R[i], R[flip[i]] = row, row[mirror]
    return R


# ----------------------------------------------------------------------------- blend shapes
def _vertex_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    n = np.zeros_like(V)
    for k in range(3):
        np.add.at(n, F[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _subtree(j: int) -> list[int]:
    out = [j]
    for c in range(NUM_JOINTS):
        if PARENTS[c] in out and c not in out:
            out.append(c)
    return out


def _shapedirs(V: np.ndarray, F: np.ndarray, W: np.ndarray, J: np.ndarray) -> np.ndarray:
    """[V,3,10] float64 displacement per unit beta (see the module docstring for the meaning of each)."""
    n = _vertex_normals(V, F)

    def moved(deltas: dict[int, tuple[float, float, float]]) -> np.ndarray:  # joints translate with subtrees
        dJ = np.zeros((NUM_JOINTS, 3))
        for j, d in deltas.items():
            for c in _subtree(j):
                dJ[c] += d
        return W @ dJ

    torso = W[:, [0, 3, 6, 9, 13, 14]].sum(1)
    girth = torso + 0.6 * W[:, [1, 2, 16, 17]].sum(1) + 0.4 * W[:, [4, 5, 18, 19]].sum(1) + 0.2 * W[:, [12, 15]].sum(1)
    limb = {}
    for chain in ((1, 4, 7, 10), (2, 5, 8, 11), (16, 18, 20, 22), (17, 19, 21, 23)):
        for j in chain[1:]:
            limb[j] = tuple(0.04 * (J[j] - J[PARENTS[j]]))
    d = np.zeros((len(V), 3, 10))
    d[:, :, 0] = (V - np.array([0.0, -0.3, 0.0])) * np.array([0.03, 0.045, 0.03])
    d[:, :, 1] = 0.018 * girth[:, None] * n
    d[:, :, 2] = moved(limb)
    d[:, :, 3] = moved({13: (0.012, 0, 0), 14: (-0.012, 0, 0)})
    d[:, :, 4] = moved({1: (0.01, 0, 0), 2: (-0.01, 0, 0)}) + (0.008 * W[:, 0] * V[:, 0] / 0.17)[:, None] * \
        np.array([1.0, 0.0, 0.0])
    d[:, :, 5] = moved({6: (0.0, 0.015, 0.0)})
    d[:, :, 6] = moved({4: (0.0, -0.008, 0.0), 5: (0.0, -0.008, 0.0), 7: (0.0, -0.008, 0.0), 8: (0.0, -0.008, 0.0)})
    chest = W[:, [6, 9]].sum(1) * np.exp(-0.5 * ((V[:, 1] - 0.12) / 0.08) ** 2)
    d[:, 2, 7] = 0.01 * chest * np.tanh((V[:, 2] - 0.01) / 0.04)
    d[:, :, 8] = (0.01 * np.exp(-0.5 * ((V[:, 0] / 0.09) ** 2 + ((V[:, 1] + 0.05) / 0.08) ** 2))
                  * np.clip(n[:, 2], 0.0, None))[:, None] * n
    d[:, :, 9] = 0.05 * W[:, 15:16] * (V - (J[15] + np.array([0.0, 0.06, 0.0])))
    return d


def _posedirs(V: np.ndarray, F: np.ndarray, W: np.ndarray, J: np.ndarray) -> np.ndarray:
    """[V,3,207] float64: near joint j, a bulge along the normal ~ (3 - trace R_j) and a small extra rotation
    (R_j - I)(v - J_j); pose feature 9 (j - 1) + 3 r + c is entry (r, c) of R_j - I (SMPL's lrotmin order)."""
    n = _vertex_normals(V, F)
    P = np.zeros((len(V), 3, 9 * (NUM_JOINTS - 1)))
    for j in range(1, NUM_JOINTS):
        b = (W[:, j] + W[:, PARENTS[j]]) * np.exp(-0.5 * (np.linalg.norm(V - J[j], axis=1) / 0.06) ** 2)
        rel = V - J[j]
        for r in range(3):
            for c in range(3):
                col = 9 * (j - 1) + 3 * r + c
                P[:, r, col] += 0.12 * b * rel[:, c]
                if r == c:
                    P[:, :, col] -= 0.008 * b[:, None] * n
    return P


# ----------------------------------------------------------------------------- DensePose UV, part textures
def _face_mirror(F: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    index = {tuple(sorted(f)): i for i, f in enumerate(F.tolist())}
    fm = np.array([index[tuple(sorted(mirror[f]))] for f in F.tolist()], dtype=np.int64)
    if np.any(fm == np.arange(len(F))):
        raise AssertionError("a face lies in the symmetry plane")
    return fm


def _dp_parts(V: np.ndarray, F: np.ndarray, W: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """[F] DensePose part 1..24 per face: dominant skinning joint, split front/back by the face normal;
    computed on the left half (centroid x > 0) and mirrored, so the labelling is exactly symmetric."""
    fm = _face_mirror(F, mirror)
    left = V[F].mean(1)[:, 0] > 0
    dom = W[F].mean(1).argmax(1)
    nz = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])[:, 2]
    parts = np.zeros(len(F), dtype=np.int64)
    for f in np.flatnonzero(left):
        p = _DP_OF_JOINT[int(dom[f])]
        p = 24 if p == "head" else (p[int(nz[f] > 0)] if isinstance(p, tuple) else p)
        parts[f] = p
        parts[fm[f]] = _DP_FLIP[p]
    if parts.min() < 1:
        raise AssertionError("a face got no DensePose part")
    return parts


def _uv_file(V: np.ndarray, F: np.ndarray, parts: np.ndarray, J: np.ndarray, mirror: np.ndarray) -> dict:
    """DensePose UV_Processed.mat fields: per part a cylindrical chart around the part's bone axis. Right parts
    (and head part 23) reuse the mirrored chart of their left partner, so flipping a mesh flips its IUV map."""
    fm = _face_mirror(F, mirror)
    corner = np.zeros((len(F), 3, 3))  # per face corner: u, v, wrap flag
    for p in range(1, 25):
        fs = np.flatnonzero(parts == p)
        if _DP_FLIP[p] < p or len(fs) == 0:  # right-side part: filled from its mirror below
            continue
        a, b = J[_DP_AXIS[p][0]], J[_DP_AXIS[p][1]]
        axis = (b - a) / np.linalg.norm(b - a)
        X = V[F[fs]] - a  # [n,3,3]
        t = X @ axis
        radial = X - t[..., None] * axis
        e1 = radial.reshape(-1, 3).mean(0)
        e1 = e1 - (e1 @ axis) * axis
        e1 = e1 / np.linalg.norm(e1) if np.linalg.norm(e1) > 1e-9 else np.cross(axis, [0.0, 0.0, 1.0])
        ang = np.arctan2(radial @ np.cross(axis, e1), radial @ e1)  # (-pi, pi], 0 = the part's mean direction
        wrap = (ang.max(1) - ang.min(1) > np.pi)[:, None] & (ang < 0)
        ang = ang + 2 * np.pi * wrap
        corner[fs, :, 0] = (ang - ang.min()) / max(ang.max() - ang.min(), 1e-9)
        corner[fs, :, 1] = (t - t.min()) / max(t.max() - t.min(), 1e-9)
        corner[fs, :, 2] = wrap
    for g in np.flatnonzero(np.asarray(_DP_FLIP)[parts] < parts):
        f = fm[g]
        for k in range(3):
            corner[g, k] = corner[f, int(np.flatnonzero(F[f] == mirror[F[g, k]])[0])]
    dp_keys: dict[tuple[int, int, int], int] = {}
    faces_dp = np.zeros_like(F)
    uvs: list[np.ndarray] = []
    for f in range(len(F)):
        for k in range(3):
            key = (int(F[f, k]), int(parts[f]), int(corner[f, k, 2]))
            if key not in dp_keys:
                dp_keys[key] = len(dp_keys)
                uvs.append(corner[f, k, :2])
            faces_dp[f, k] = dp_keys[key]
    verts = np.array([k[0] for k in dp_keys], dtype=np.float64)
    uv = np.clip(np.array(uvs, dtype=np.float64), 0.0, 1.0)
    return {"All_FaceIndices": parts.astype(np.float64)[:, None], "All_Faces": faces_dp.astype(np.float64) + 1,
            "All_U_norm": uv[:, :1], "All_V_norm": uv[:, 1:], "All_vertices": verts[None] + 1}


def part6_colours() -> np.ndarray:
    """[7,3] float32 RGB of the six LSP parts (row k = part k; row 0 unused): R encodes the part."""
    c = np.zeros((7, 3), dtype=np.float32)
    c[1:, 0] = (np.arange(6) + 0.5) / 6.0
    c[1:, 1], c[1:, 2] = 0.5, 0.085
    return c


def _part_textures(dp_parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """vertex_texture (1,F,2,2,2,3) float32 and cube_parts (100,92,17) float32 of §5.3."""
    part6 = np.asarray(_DP_TO_PART6)[dp_parts]
    tex = np.broadcast_to(part6_colours()[part6][None, :, None, None, None, :], (1, len(part6), 2, 2, 2, 3))
    cube = np.broadcast_to((1 + np.arange(100) * 6 // 100)[:, None, None], (100, 92, 17))
    return np.ascontiguousarray(tex, dtype=np.float32), np.ascontiguousarray(cube, dtype=np.float32)


# ----------------------------------------------------------------------------- mesh downsampling (GraphCMR)
def _adjacency2(F: np.ndarray, n: int) -> sp.csc_matrix:
    """GraphCMR-style adjacency: each face edge counted in both directions (2 on a closed manifold)."""
    i, j = F.ravel(), np.roll(F, -1, axis=1).ravel()
    return sp.csc_matrix((np.ones(2 * len(i)), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))


def _upsample(fine: np.ndarray, coarse: np.ndarray) -> sp.csc_matrix:
    """[n_fine, n_coarse]: 3 nearest coarse vertices per fine vertex, inverse-distance weights."""
    d, idx = cKDTree(coarse).query(fine, k=3)
    w = 1.0 / (d + 1e-4)
    w /= w.sum(1, keepdims=True)
    return sp.csc_matrix((w.ravel(), (np.repeat(np.arange(len(fine)), 3), idx.ravel())), shape=(len(fine), len(coarse)))


def _downsampling(mesh: BodyMesh, l2: np.ndarray, l3: np.ndarray, dropped: int) -> dict[str, np.ndarray]:
    """A, U, D, F of mesh_downsampling.npz (§1.6). ``l2`` [1723] and ``l3`` [431] are ascending final ids."""
    V, n = mesh.vertices, len(mesh.vertices)
    # level 2: the triangulated cage with the dropped vertex collapsed into its lowest-id neighbour
    Fc = mesh.cage_faces.copy()
    nb = sorted(set(Fc[np.any(Fc == dropped, axis=1)].ravel()) - {dropped})
    Fc[Fc == dropped] = nb[0]
    Fc = Fc[(Fc[:, 0] != Fc[:, 1]) & (Fc[:, 1] != Fc[:, 2]) & (Fc[:, 0] != Fc[:, 2])]
    pos2 = -np.ones(n, dtype=np.int64)
    pos2[l2] = np.arange(len(l2))
    F2 = pos2[Fc]
    # level 3: Voronoi regions of the 431 vertices on the level-2 graph; faces = level-2 faces spanning 3 regions
    G = _adjacency2(F2, len(l2))
    G.data = np.linalg.norm(V[l2][G.nonzero()[0]] - V[l2][G.nonzero()[1]], axis=1)
    _, _, src = dijkstra(G, indices=pos2[l3], min_only=True, return_predecessors=True)
    pos3 = -np.ones(len(l2), dtype=np.int64)
    pos3[pos2[l3]] = np.arange(len(l3))
    lab = pos3[src]
    T = lab[F2]
    keep = (T[:, 0] != T[:, 1]) & (T[:, 1] != T[:, 2]) & (T[:, 0] != T[:, 2])
    _, first = np.unique(np.sort(T[keep], axis=1), axis=0, return_index=True)
    F3 = T[keep][np.sort(first)]

    def obj(items: list) -> np.ndarray:
        out = np.empty(len(items), dtype=object)
        for i, x in enumerate(items):
            out[i] = x
        return out

    D0 = sp.csc_matrix((np.ones(len(l2)), (np.arange(len(l2)), l2)), shape=(len(l2), n))
    D1 = sp.csc_matrix((np.ones(len(l3)), (np.arange(len(l3)), pos2[l3])), shape=(len(l3), len(l2)))
    return {"A": obj([_adjacency2(mesh.faces, n), _adjacency2(F2, len(l2)), _adjacency2(F3, len(l3))]),
            "U": obj([_upsample(V, V[l2]), _upsample(V[l2], V[l3])]), "D": obj([D0, D1]),
            "F": obj([mesh.faces.astype(np.int64), F2.astype(np.int64), F3.astype(np.int64)])}


# ----------------------------------------------------------------------------- mean parameters
def _mean_params(seed: int) -> dict[str, np.ndarray]:
    """§2.5: global orient diag(1,-1,-1) -> 6D (1,0,0,-1,0,0); a relaxed body pose; small mean shape."""
    aa = np.zeros((NUM_JOINTS, 3))
    aa[0] = (np.pi, 0.0, 0.0)
    half = {16: (0.0, -0.15, -0.95), 13: (0.0, 0.0, -0.12), 18: (0.0, -0.45, 0.0), 1: (0.0, 0.0, 0.07),
            4: (0.15, 0.0, 0.0), 7: (-0.05, 0.0, 0.0), 20: (0.0, 0.0, -0.1), 3: (0.03, 0.0, 0.0)}
    for j, a in half.items():
        aa[j] = a
        aa[JOINT_FLIP[j]] = (a[0], -a[1], -a[2])  # §2.4: mirrored joint, negated y and z
    R = Rotation.from_rotvec(aa).as_matrix()
    R[0] = np.diag([1.0, -1.0, -1.0])
    pose = R[:, :, :2].reshape(NUM_JOINTS, 6)  # §1.9 row-major [r00, r01, r10, r11, r20, r21]
    shape = np.random.default_rng(seed).normal(0.0, 0.15, 10)
    return {"pose": pose.reshape(-1).astype(np.float32), "shape": shape.astype(np.float64),
            "cam": np.array([0.9, 0.0, 0.0], dtype=np.float32)}


# ----------------------------------------------------------------------------- writer
_GENDER_BETAS = {"NEUTRAL": np.zeros(10),
                 "MALE": np.array([0.7, 0.2, 0.3, 1.2, -0.6, 0.3, 0.2, 0.6, -0.3, 0.3]),
                 "FEMALE": np.array([-0.7, -0.1, -0.3, -1.2, 1.2, -0.2, 0.2, -0.3, 0.3, -0.2])}


def write_builtin_body(out_dir: Path, seed: int = 0) -> None:
    """Write the built-in body-model data root (layout in the module docstring) into ``out_dir``, each file
    atomically (processes that generate it concurrently write identical bytes; a reader sees whole files)."""
    out = Path(out_dir)
    npz = lambda rel, **arrays: atomic_write(out / rel, lambda f: np.savez(f, **arrays))  # noqa: E731
    npy = lambda rel, arr: atomic_write(out / rel, lambda f: np.save(f, arr))  # noqa: E731
    raw = build_body_mesh()
    named = _named_vertices(raw)
    order, l3_raw, dropped_raw = _vertex_order(raw, named)
    mesh = _permute(raw, order)
    inv = np.argsort(order)
    l3 = np.sort(inv[l3_raw])
    l2 = np.sort(np.setdiff1d(np.arange(N_CAGE), [dropped_raw]).astype(np.int64))
    l2 = np.sort(inv[l2])
    V, F, W, m = mesh.vertices, mesh.faces, mesh.weights, mesh.mirror
    J_reg = _regressor(V, m, [tuple(p) for p in mesh.joints], JOINT_FLIP)
    J = J_reg @ V
    shapedirs = _shapedirs(V, F, W, J)
    posedirs = _posedirs(V, F, W, J)
    kintree = np.stack([np.array(PARENTS, dtype=np.int64), np.arange(NUM_JOINTS, dtype=np.int64)])
    kintree[0, 0] = 4294967295
    for gender, betas in _GENDER_BETAS.items():
        npz(f"smpl/SMPL_{gender}.npz", v_template=V + shapedirs @ betas, shapedirs=shapedirs, posedirs=posedirs,
            J_regressor=J_reg, weights=W, kintree_table=kintree, f=F.astype(np.int64))
    npz("smpl_mean_params.npz", **_mean_params(seed))
    h36m = _regressor(V, m, _H36M_PTS, _H36M_FLIP)
    extra = _regressor(V, m, _EXTRA_PTS, (1, 0, 2, 3, 4, 5, 6, 7, 8))
    extra[4], extra[6], extra[7] = h36m[0], h36m[7], h36m[9]
    npy("J_regressor_h36m.npy", h36m)
    npy("J_regressor_extra.npy", extra)
    npz("mesh_downsampling.npz", **_downsampling(mesh, l2, l3, int(inv[dropped_raw])))
    parts = _dp_parts(V, F, W, m)
    uv = _uv_file(V, F, parts, J, m)
    atomic_write(out / "UV_data" / "UV_Processed.mat", lambda f: scipy.io.savemat(f, uv, do_compression=True))
    tex, cube = _part_textures(parts)
    npy("vertex_texture.npy", tex)
    npy("cube_parts.npy", cube)
