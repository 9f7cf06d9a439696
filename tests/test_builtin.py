"""The built-in SMPL-format body model (pymaf.body.builtin): formats, topology, anatomy, skinning, data files."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import trimesh

from pymaf.body import builtin
from pymaf.body.builtin_mesh import JOINT_FLIP, PARENTS, template_joints
from pymaf.body.joints import IDX431, VERTEX_JOINT_IDS

V_N, F_N = 6890, 13776
SMPL_SHAPES = {"v_template": (V_N, 3), "shapedirs": (V_N, 3, 10), "posedirs": (V_N, 3, 207),
               "J_regressor": (24, V_N), "weights": (V_N, 24), "kintree_table": (2, 24), "f": (F_N, 3)}
DP_FLIP = {1: 1, 2: 2, **{a: b for a, b in ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
                                                (17, 18), (19, 20), (21, 22), (23, 24))},
           **{b: a for a, b in ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
                                (19, 20), (21, 22), (23, 24))}}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("builtin_body")
    builtin.write_builtin_body(out)
    return out


@pytest.fixture(scope="module")
def smpl(root: Path) -> dict[str, np.ndarray]:
    with np.load(root / "smpl" / "SMPL_NEUTRAL.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def mirror(smpl) -> np.ndarray:
    return builtin.mirror_vertex_indices(smpl["v_template"])


@pytest.fixture(scope="module")
def uv(root: Path) -> dict[str, np.ndarray]:
    return scipy.io.loadmat(str(root / "UV_data" / "UV_Processed.mat"))


def _rodrigues(axis, angle) -> np.ndarray:
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _lbs(model: dict, rot: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Plain NumPy SMPL LBS (no blend shapes): local rotations {joint: R} -> (vertices, joints)."""
    V, W = model["v_template"], model["weights"]
    J = model["J_regressor"] @ V
    G = np.zeros((24, 4, 4))
    for j in range(24):
        T = np.eye(4)
        T[:3, :3] = rot.get(j, np.eye(3))
        T[:3, 3] = J[j] - (J[PARENTS[j]] if j else 0)
        G[j] = T if j == 0 else G[PARENTS[j]] @ T
    posed_J = G[:, :3, 3].copy()
    G[:, :3, 3] -= np.einsum("jab,jb->ja", G[:, :3, :3], J)
    A = np.einsum("vj,jab->vab", W, G)
    return np.einsum("vab,vb->va", A[:, :3, :3], V) + A[:, :3, 3], posed_J


def _winding_number(V: np.ndarray, F: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Generalised winding number of a closed outward mesh at points [P,3] (1 inside, 0 outside)."""
    a, b, c = (V[F[:, k]][None] - pts[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    den = la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la \
        + np.einsum("pfi,pfi->pf", c, a) * lb
    return np.arctan2(det, den).sum(1) / (2 * np.pi)


def _restricted_load(data: bytes):
    """Unpickle allowing only numpy and scipy.sparse globals (what a safe loader of the file permits)."""
    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if module.split(".")[0] == "numpy" or module.startswith("scipy.sparse"):
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")

    buf = io.BytesIO(data)
    np.lib.format.read_magic(buf)
    np.lib.format.read_array_header_1_0(buf)
    return Unpickler(buf).load()


# ----------------------------------------------------------------------------- formats
def test_smpl_files_shapes_and_dtypes(root: Path):
    for gender in ("NEUTRAL", "MALE", "FEMALE"):
        with np.load(root / "smpl" / f"SMPL_{gender}.npz") as z:
            assert set(z.files) == set(SMPL_SHAPES)
            for key, shape in SMPL_SHAPES.items():
                assert z[key].shape == shape, (gender, key)
                assert z[key].dtype == (np.int64 if key in ("kintree_table", "f") else np.float64), (gender, key)
            assert z["kintree_table"][0, 0] == 4294967295
            assert list(z["kintree_table"][0, 1:]) == list(PARENTS[1:])
            assert list(z["kintree_table"][1]) == list(range(24))
            assert np.allclose(z["J_regressor"].sum(1), 1) and z["J_regressor"].min() >= 0
            assert np.allclose(z["weights"].sum(1), 1) and z["weights"].min() >= 0


def test_other_files_shapes_and_dtypes(root: Path, uv):
    with np.load(root / "smpl_mean_params.npz") as z:
        assert (z["pose"].shape, z["pose"].dtype) == ((144,), np.float32)
        assert (z["shape"].shape, z["shape"].dtype) == ((10,), np.float64)
        assert (z["cam"].shape, z["cam"].dtype) == ((3,), np.float32)
        assert np.allclose(z["pose"][:6], [1, 0, 0, -1, 0, 0]) and np.allclose(z["cam"], [0.9, 0, 0])
        assert np.abs(z["shape"]).max() < 1.0
    for name, shape in (("J_regressor_extra.npy", (9, V_N)), ("J_regressor_h36m.npy", (17, V_N))):
        R = np.load(root / name)
        assert R.shape == shape and R.dtype == np.float64 and R.min() >= 0 and np.allclose(R.sum(1), 1)
    tex, cube = np.load(root / "vertex_texture.npy"), np.load(root / "cube_parts.npy")
    assert tex.shape == (1, F_N, 2, 2, 2, 3) and tex.dtype == np.float32
    assert cube.shape == (100, 92, 17) and cube.dtype == np.float32 and set(np.unique(cube)) == set(range(1, 7))
    assert uv["All_Faces"].shape == (F_N, 3) and np.squeeze(uv["All_FaceIndices"]).shape == (F_N,)
    nd = uv["All_vertices"].shape[1]
    assert uv["All_vertices"].shape == (1, nd) and np.squeeze(uv["All_U_norm"]).shape == (nd,)
    assert np.squeeze(uv["All_V_norm"]).shape == (nd,)


def test_deterministic(root: Path, tmp_path: Path):
    builtin.write_builtin_body(tmp_path)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".npz":
            with zipfile.ZipFile(root / rel) as a, zipfile.ZipFile(tmp_path / rel) as b:
                assert a.namelist() == b.namelist()
                for name in a.namelist():
                    assert a.read(name) == b.read(name), (rel, name)
        elif rel.suffix == ".mat":
            a, b = scipy.io.loadmat(str(root / rel)), scipy.io.loadmat(str(tmp_path / rel))
            for key in ("All_FaceIndices", "All_Faces", "All_U_norm", "All_V_norm", "All_vertices"):
                assert np.array_equal(a[key], b[key]), key
        else:
            assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


# ----------------------------------------------------------------------------- geometry
def test_mesh_topology(smpl):
    V, F = smpl["v_template"], smpl["f"]
    mesh = trimesh.Trimesh(V, F, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.euler_number == 2
    assert mesh.volume > 0.04  # outward winding (counter-clockwise seen from outside), a human-sized volume
    assert len(np.unique(np.sort(F, axis=1), axis=0)) == F_N and len(np.unique(F)) == V_N
    area = 0.5 * np.linalg.norm(np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), axis=1)
    assert area.min() > 1e-7
    height = V[:, 1].max() - V[:, 1].min()
    assert 1.6 < height < 1.8 and abs(V[:, 0].max() + V[:, 0].min()) < 1e-12


def test_mirror_symmetry(smpl, mirror):
    V, F = smpl["v_template"], smpl["f"]
    assert np.array_equal(V[mirror], V * [-1, 1, 1])
    assert np.array_equal(mirror[mirror], np.arange(V_N))
    faces = {tuple(sorted(f)) for f in F.tolist()}
    assert all(tuple(sorted(mirror[f])) in faces for f in F.tolist())
    W = smpl["weights"]
    flip = list(JOINT_FLIP)
    assert np.allclose(W[mirror][:, flip], W)
    assert np.allclose(smpl["J_regressor"][flip][:, mirror], smpl["J_regressor"])


def test_vertex_picked_joints_are_anatomical(smpl):
    V = smpl["v_template"]
    J = smpl["J_regressor"] @ V
    nose, reye, leye, rear, lear, lbig, lsmall, lheel, rbig, rsmall, rheel = (V[i] for i in VERTEX_JOINT_IDS[:11])
    head = V[V[:, 1] > J[12, 1] + 0.05]
    assert nose[0] == 0 and nose[2] > head[:, 2].max() - 1e-9  # the nose is the front-most point of the head
    assert J[15, 1] < nose[1] < leye[1] < V[:, 1].max()
    assert leye[0] > 0.015 and reye[0] < -0.015 and leye[2] > J[15, 2] + 0.04 and np.allclose(leye * [-1, 1, 1], reye)
    assert lear[0] > leye[0] + 0.03 and rear[0] < reye[0] - 0.03 and abs(lear[2]) < 0.05
    for big, small, heel, ankle, sign in ((lbig, lsmall, lheel, J[7], 1), (rbig, rsmall, rheel, J[8], -1)):
        assert max(big[1], small[1], heel[1]) < ankle[1] - 0.03
        assert big[2] > ankle[2] + 0.12 and small[2] > ankle[2] + 0.1 and heel[2] < ankle[2] - 0.01
        assert sign * small[0] > sign * big[0] > 0
    tips = V[VERTEX_JOINT_IDS[11:]]
    for k, (wrist, sign) in enumerate(((J[20], 1), (J[21], -1))):
        side = tips[5 * k:5 * k + 5]
        assert np.all(sign * side[:, 0] > sign * wrist[0] + 0.06)
        assert np.all(np.abs(side[1:, 0]) > abs(side[0, 0]))  # finger tips beyond the thumb
        assert np.all(np.diff(side[1:, 2]) < 0)  # index .. pinky from front (+z) to back
        assert side[0, 2] > side[1:, 2].max()  # the thumb points forward


def test_joints_regressed_where_designed(smpl):
    V = smpl["v_template"]
    J = smpl["J_regressor"] @ V
    assert np.abs(J - template_joints()).max() < 1e-3
    assert np.all(_winding_number(V, smpl["f"], J) > 0.99)  # every joint is inside the body
    assert abs(J[0, 1] + 0.22) < 0.02 and J[16, 0] > 0.15 and J[1, 0] > 0 and J[7, 1] < -1.0


def test_bent_elbow_moves_the_hand_not_the_feet(smpl):
    W = smpl["weights"]
    assert (W > 0).sum(1).max() <= 4
    rest, _ = _lbs(smpl, {})
    assert np.allclose(rest, smpl["v_template"])
    posed, J = _lbs(smpl, {18: _rodrigues([0, 1, 0], -np.pi / 2)})  # left elbow: forearm to the front
    move = np.linalg.norm(posed - rest, axis=1)
    lhand = W[:, [20, 22]].sum(1) > 0.9
    assert move[lhand].min() > 0.15 and posed[lhand, 2].mean() > 0.1  # the left hand swung forward
    assert J[20, 2] > 0.2 and abs(J[20, 0] - J[18, 0]) < 0.01
    still = W[:, [7, 8, 10, 11, 21, 23, 15]].sum(1) > 0.5  # feet, right hand, head
    assert move[still].max() < 1e-12
    upper = W[:, 16] > 0.99
    assert move[upper].max() < 0.02


def test_blend_shapes_and_genders(root: Path, smpl):
    S, P = smpl["shapedirs"], smpl["posedirs"]
    mags = np.abs(S).max(axis=(0, 1))
    assert 0.005 < mags.min() and mags.max() < 0.06 and mags[0] == mags.max()
    assert 0.001 < np.abs(P).max() < 0.05
    tall = smpl["v_template"] + S[:, :, 0]
    assert np.ptp(tall[:, 1]) > np.ptp(smpl["v_template"][:, 1]) + 0.03
    heights = {}
    for gender in ("MALE", "FEMALE"):
        with np.load(root / "smpl" / f"SMPL_{gender}.npz") as z:
            heights[gender] = np.ptp(z["v_template"][:, 1])
            assert np.array_equal(z["f"], smpl["f"]) and np.array_equal(z["shapedirs"], S)
    assert heights["MALE"] > heights["FEMALE"] + 0.05


def test_mean_pose_is_relaxed(root: Path, smpl):
    pose = np.load(root / "smpl_mean_params.npz")["pose"].astype(np.float64).reshape(24, 3, 2)
    R = {}
    for j in range(24):
        a1, a2 = pose[j, :, 0], pose[j, :, 1]
        b1 = a1 / np.linalg.norm(a1)
        b2 = a2 - (b1 @ a2) * b1
        b2 /= np.linalg.norm(b2)
        R[j] = np.stack([b1, b2, np.cross(b1, b2)], 1)
    assert np.allclose(R[0], np.diag([1.0, -1.0, -1.0]), atol=1e-6)
    R[0] = np.eye(3)
    _, J = _lbs(smpl, R)
    assert J[20, 1] < J[16, 1] - 0.3 and J[21, 1] < J[17, 1] - 0.3  # arms down
    assert np.allclose(J[:, 0], -J[JOINT_FLIP, 0], atol=1e-6)


def test_extra_and_h36m_regressors(root: Path, smpl):
    V = smpl["v_template"]
    extra, h36m = np.load(root / "J_regressor_extra.npy") @ V, np.load(root / "J_regressor_h36m.npy") @ V
    E, H = np.load(root / "J_regressor_extra.npy"), np.load(root / "J_regressor_h36m.npy")
    for e, h in ((4, 0), (6, 7), (7, 9)):  # §2.3: rows shared with the H36M regressor
        assert np.array_equal(E[e], H[h])
    assert extra[0, 0] < -0.05 and extra[1, 0] > 0.05 and extra[3, 1] > V[:, 1].max() - 0.04
    assert h36m[1, 0] > 0.05 and h36m[4, 0] < -0.05 and h36m[13, 0] > 0.6 and h36m[16, 0] < -0.6
    assert h36m[10, 1] > h36m[9, 1] > h36m[8, 1] > h36m[7, 1] > h36m[0, 1] > h36m[2, 1] > h36m[3, 1]


def test_mesh_downsampling(root: Path, smpl):
    with zipfile.ZipFile(root / "mesh_downsampling.npz") as zf:
        data = {name[:-4]: _restricted_load(zf.read(name)) for name in zf.namelist()}
    assert set(data) == {"A", "U", "D", "F"}
    A, U, D, F = data["A"], data["U"], data["D"], data["F"]
    assert [a.shape for a in A] == [(6890, 6890), (1723, 1723), (431, 431)]
    assert [u.shape for u in U] == [(6890, 1723), (1723, 431)]
    assert [d.shape for d in D] == [(1723, 6890), (431, 1723)]
    for d in D:
        d = d.tocsr()
        assert np.all(np.diff(d.indptr) == 1) and np.all(d.data == 1) and np.all(np.diff(d.indices) > 0)
    dmap = (D[1] @ D[0]).tocsr()
    assert list(dmap.indices) == list(IDX431)  # the same 431 vertices as Appendix A
    for u in U:
        assert np.all(np.diff(u.tocsr().indptr) == 3) and np.allclose(np.asarray(u.sum(1)).ravel(), 1)
    assert np.array_equal(F[0], smpl["f"]) and F[1].max() < 1723 and F[2].max() < 431
    V2 = D[0] @ smpl["v_template"]
    coarse = trimesh.Trimesh(V2, F[1], process=False)
    assert len(F[1]) == 3442 and coarse.is_watertight and coarse.euler_number == 2
    sel = smpl["v_template"][IDX431]
    nearest = np.sort(np.linalg.norm(sel[:, None] - sel[None], axis=2), axis=1)[:, 1]
    assert nearest.min() > 0.02  # well spread


def test_uv_processed(uv, smpl, mirror):
    parts = np.squeeze(uv["All_FaceIndices"]).astype(np.int64)
    faces = uv["All_Faces"].astype(np.int64) - 1
    verts = np.squeeze(uv["All_vertices"]).astype(np.int64) - 1
    u, v = np.squeeze(uv["All_U_norm"]), np.squeeze(uv["All_V_norm"])
    assert set(np.unique(parts)) == set(range(1, 25))
    assert faces.min() == 0 and faces.max() == len(verts) - 1 and verts.min() >= 0 and verts.max() < V_N
    assert np.array_equal(verts[faces], smpl["f"])  # DensePose faces are the SMPL faces on duplicated vertices
    assert u.min() >= 0 and u.max() <= 1 and v.min() >= 0 and v.max() <= 1
    assert len(verts) > V_N  # seams duplicate vertices
    index = {tuple(sorted(f)): i for i, f in enumerate(smpl["f"].tolist())}
    fm = np.array([index[tuple(sorted(mirror[f]))] for f in smpl["f"].tolist()])
    assert all(parts[fm[i]] == DP_FLIP[p] for i, p in enumerate(parts))
    uv_of = {}  # (SMPL vertex, part) -> set of (u, v): mirrored parts carry mirrored charts
    for f in range(F_N):
        for k in range(3):
            uv_of.setdefault((verts[faces[f, k]], parts[f]), set()).add((u[faces[f, k]], v[faces[f, k]]))
    for (vert, p), coords in uv_of.items():
        if p > 2:
            assert coords == uv_of[mirror[vert], DP_FLIP[p]]
    x = smpl["v_template"][smpl["f"]].mean(1)[:, 0]
    assert np.all(x[np.isin(parts, [4, 5, 8, 10, 12, 14, 15, 17, 19, 21, 24])] > 0)
    assert np.all(x[np.isin(parts, [3, 6, 7, 9, 11, 13, 16, 18, 20, 22, 23])] < 0)


def test_cube_parts_lookup_gives_the_face_part(root: Path, uv, smpl):
    tex, cube = np.load(root / "vertex_texture.npy"), np.load(root / "cube_parts.npy")
    assert np.all(tex == tex[:, :, :1, :1, :1])  # one colour per face
    rgb = tex[0, :, 0, 0, 0]
    label = cube[(100 * rgb[:, 0]).astype(int), (100 * rgb[:, 1]).astype(int), (100 * rgb[:, 2]).astype(int)]
    dp = np.squeeze(uv["All_FaceIndices"]).astype(np.int64)
    expect = np.select([np.isin(dp, [23, 24]), np.isin(dp, [1, 2]), np.isin(dp, [4, 15, 17, 19, 21]),
                        np.isin(dp, [3, 16, 18, 20, 22]), np.isin(dp, [5, 8, 10, 12, 14])], [1, 2, 3, 4, 5], 6)
    assert np.array_equal(label, expect)
    assert builtin.PART6_NAMES[2] == "left_arm"
