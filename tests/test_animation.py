"""Animation export (pymaf.demo.animation / bvh / gltf): the BVH re-read by an independent reader (bvhio) and
its forward kinematics give the exported joints; the GLB skinned by hand with its own inverse bind matrices,
weights and animation samplers gives the exported vertices (SMPL linear blend skinning without pose
correctives, computed here with smplx.lbs); the demo writes both for a video."""
from __future__ import annotations

import json
import math

import bvhio
import cv2
import numpy as np
import pygltflib
import pytest
import torch
from scipy.spatial.transform import Rotation
from smplx.lbs import lbs

from pymaf.demo.animation import CAM_TO_WORLD, build_animation, fill_gaps
from pymaf.demo.bvh import write_bvh
from pymaf.demo.gltf import skin_sets, write_glb
from pymaf.geometry import axis_angle_to_rotmat

FPS = 25.0
TOL = 1e-4  # metres


@pytest.fixture(scope="module")
def smpl(body_files):
    from pymaf.body.smpl import build_smpl
    return build_smpl(body_files, "neutral").eval()


@pytest.fixture(scope="module")
def track():
    """A 5-frame track: upright-ish random poses, per-frame betas, translation ~6 m in front of the camera."""
    g = torch.Generator().manual_seed(0)
    T = 5
    aa = 0.5 * torch.randn(T, 24, 3, generator=g, dtype=torch.float64)
    aa[:, 0] += torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64)
    rotmat = axis_angle_to_rotmat(aa).numpy()
    betas = 0.8 * torch.randn(T, 10, generator=g, dtype=torch.float64).numpy()
    trans = np.array([0.3, -0.2, 6.0]) + 0.2 * np.random.default_rng(0).standard_normal((T, 3))
    return np.arange(10, 10 + T), rotmat, betas, trans


def _world(points_cam: np.ndarray) -> np.ndarray:
    return points_cam @ CAM_TO_WORLD.T


def _reference_joints(smpl, rotmat, betas, trans) -> np.ndarray:
    """The exported 3D joints: SMPL kinematic joints (mean betas) + translation, in the Y-up world [T,24,3]."""
    T = len(rotmat)
    R = torch.from_numpy(rotmat).float()
    b = torch.from_numpy(np.repeat(betas.mean(0, keepdims=True), T, 0)).float()
    with torch.no_grad():
        j = smpl(betas=b, body_pose=R[:, 1:], global_orient=R[:, :1]).smpl_joints.double().numpy()
    return _world(j + trans[:, None])


def _reference_lbs_vertices(smpl, rotmat, betas, trans, weights=None) -> np.ndarray:
    """SMPL without pose correctives (smplx.lbs with zero posedirs), mean betas, + translation, world [T,V,3]."""
    T = len(rotmat)
    w = smpl.lbs_weights.double() if weights is None else torch.from_numpy(weights)
    with torch.no_grad():
        v, _ = lbs(torch.from_numpy(np.repeat(betas.mean(0, keepdims=True), T, 0)),
                   torch.from_numpy(rotmat), smpl.v_template.double(), smpl.shapedirs.double(),
                   torch.zeros_like(smpl.posedirs.double()), smpl.J_regressor.double(), smpl.parents,
                   w, pose2rot=False)
    return _world(v.numpy() + trans[:, None])


def _bvh_joints(path, names) -> np.ndarray:
    """Forward kinematics of every frame of a BVH file by bvhio: [T,24,3] in the order of ``names``."""
    root = bvhio.readAsHierarchy(str(path))
    frames = len(root.Keyframes)
    out = []
    for t in range(frames):
        root.loadPose(t)
        pos = {j.Name: np.array(j.PositionWorld, dtype=np.float64) for j, _, _ in root.layout()}
        out.append(np.stack([pos[n] for n in names]))
    return np.stack(out)


def test_bvh_forward_kinematics_gives_the_exported_joints(tmp_path, smpl, track):
    frames, rotmat, betas, trans = track
    anim = build_animation(smpl, frames, rotmat, betas, trans, FPS)
    write_bvh(tmp_path / "p.bvh", anim)
    text = (tmp_path / "p.bvh").read_text()
    assert f"Frames: {len(frames)}" in text and f"Frame Time: {1 / FPS:.8f}" in text
    got = _bvh_joints(tmp_path / "p.bvh", anim.names)
    ref = _reference_joints(smpl, rotmat, betas, trans)
    assert got.shape == ref.shape == (len(frames), 24, 3)
    assert np.abs(got - ref).max() < TOL, np.abs(got - ref).max()


def test_bvh_axis_convention_y_up_facing_the_camera(tmp_path, smpl, track):
    """An upright person facing the camera (camera frame: root 180 deg about x, 6 m ahead) is, in the file:
    upright along +Y, at Z = -6 (camera at the origin looking down -Z), facing +Z, its left side at +X."""
    frames, _, betas, _ = track
    rot = np.tile(np.eye(3), (1, 24, 1, 1))
    rot[0, 0] = np.diag([1.0, -1.0, -1.0])
    anim = build_animation(smpl, frames[:1], rot, betas[:1], np.array([[0.0, 0.0, 6.0]]), FPS)
    write_bvh(tmp_path / "up.bvh", anim)
    j = _bvh_joints(tmp_path / "up.bvh", anim.names)[0]
    assert j[15, 1] - j[0, 1] > 0.3                        # head above pelvis
    assert j[0, 2] == pytest.approx(-6.0, abs=0.1)
    assert j[10, 2] > j[7, 2] and j[11, 2] > j[8, 2]       # toes ahead of the ankles: faces +Z
    assert j[1, 0] > j[0, 0] > j[2, 0]                     # left hip at +X


def test_bvh_rest_offsets_are_the_body_model_joints(tmp_path, smpl, track):
    """One frame with identity local rotations and a world-aligned root = the rest skeleton of the betas."""
    frames, _, betas, _ = track
    rot = np.tile(np.eye(3), (1, 24, 1, 1))
    rot[0, 0] = CAM_TO_WORLD  # the root rotation C R_0 is then the identity
    with torch.no_grad():
        rest = smpl(betas=torch.from_numpy(betas[:1]).float(), body_pose=torch.eye(3).expand(1, 23, 3, 3),
                    global_orient=torch.eye(3).expand(1, 1, 3, 3)).smpl_joints[0].double().numpy()
    trans = CAM_TO_WORLD @ rest[0] - rest[0]  # puts the pelvis at its rest position: C (J_0 + t) = J_0
    anim = build_animation(smpl, frames[:1], rot, betas[:1], trans[None], FPS)
    write_bvh(tmp_path / "rest.bvh", anim)
    got = _bvh_joints(tmp_path / "rest.bvh", anim.names)[0]
    assert np.abs(got - rest).max() < TOL


def _accessor(doc: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    assert view.byteStride in (None, 0)
    dtype = {pygltflib.UNSIGNED_BYTE: np.uint8, pygltflib.UNSIGNED_SHORT: np.uint16,
             pygltflib.UNSIGNED_INT: np.uint32, pygltflib.FLOAT: np.float32}[acc.componentType]
    n = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    arr = np.frombuffer(blob, dtype, count=acc.count * n, offset=view.byteOffset + (acc.byteOffset or 0))
    return arr.reshape(acc.count, n).astype(np.float64) if n > 1 else arr.astype(np.float64)


def _skin_glb(path, k: int) -> tuple[np.ndarray, float]:
    """Vertices [V,3] of the GLB's skinned mesh at keyframe k (glTF 2.0 skinning: sum_s w_s * G_j_s IBM_j_s v,
    the node transforms sampled from the file's own animation), and the keyframe time."""
    doc = pygltflib.GLTF2.load(str(path))
    blob = doc.binary_blob()
    mesh_node = next(n for n in doc.nodes if n.mesh is not None)
    skin = doc.skins[mesh_node.skin]
    prim = doc.meshes[mesh_node.mesh].primitives[0]
    local_t = {i: np.array(n.translation if n.translation else [0.0, 0, 0]) for i, n in enumerate(doc.nodes)}
    local_r = {i: np.array(n.rotation if n.rotation else [0.0, 0, 0, 1]) for i, n in enumerate(doc.nodes)}
    time = None
    for ch in doc.animations[0].channels:
        s = doc.animations[0].samplers[ch.sampler]
        times, values = _accessor(doc, blob, s.input), _accessor(doc, blob, s.output)
        time = times[k]
        {"translation": local_t, "rotation": local_r}[ch.target.path][ch.target.node] = values[k]
    parent = {c: i for i, n in enumerate(doc.nodes) for c in (n.children or [])}

    def global_of(i: int) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = Rotation.from_quat(local_r[i]).as_matrix()
        m[:3, 3] = local_t[i]
        return global_of(parent[i]) @ m if i in parent else m

    ibm = _accessor(doc, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    M = np.stack([global_of(j) @ ibm[s] for s, j in enumerate(skin.joints)])          # [J,4,4]
    v = _accessor(doc, blob, prim.attributes.POSITION)
    vh = np.concatenate([v, np.ones((len(v), 1))], 1)
    out = np.zeros_like(v)
    s = 0
    while getattr(prim.attributes, f"JOINTS_{s}", None) is not None:
        js = _accessor(doc, blob, getattr(prim.attributes, f"JOINTS_{s}")).astype(int)
        ws = _accessor(doc, blob, getattr(prim.attributes, f"WEIGHTS_{s}"))
        for c in range(4):
            out += ws[:, c:c + 1] * np.einsum("vij,vj->vi", M[js[:, c]], vh)[:, :3]
        s += 1
    return out, float(time)


def test_glb_skin_gives_the_exported_vertices(tmp_path, smpl, track):
    frames, rotmat, betas, trans = track
    anim = build_animation(smpl, frames, rotmat, betas, trans, FPS)
    write_glb(tmp_path / "p.glb", anim)
    ref = _reference_lbs_vertices(smpl, rotmat, betas, trans)
    for k in (0, len(frames) - 1):
        got, t = _skin_glb(tmp_path / "p.glb", k)
        assert t == pytest.approx(frames[k] / FPS)
        assert np.abs(got - ref[k]).max() < TOL, (k, np.abs(got - ref[k]).max())
    doc = pygltflib.GLTF2.load(str(tmp_path / "p.glb"))
    attrs = doc.meshes[0].primitives[0].attributes
    blob = doc.binary_blob()
    n, v = _accessor(doc, blob, attrs.NORMAL), _accessor(doc, blob, attrs.POSITION)
    faces = _accessor(doc, blob, doc.meshes[0].primitives[0].indices).reshape(-1, 3).astype(int)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
    import trimesh  # normals of the rest mesh as trimesh computes them (independent; same winding)
    ref_n = trimesh.Trimesh(v, faces, process=False).vertex_normals
    assert (n * ref_n).sum(1).min() > 0.95
    # the correctives left out are a real difference (the comparison would see a wrong choice)
    R = torch.from_numpy(rotmat[:1]).float()
    with torch.no_grad():
        full = smpl(betas=torch.from_numpy(betas.mean(0, keepdims=True)).float(), body_pose=R[:, 1:],
                    global_orient=R[:, :1]).vertices[0].double().numpy()
    assert np.abs(_world(full + trans[0]) - ref[0]).max() > 10 * TOL


def test_glb_skin_with_more_than_four_influences(tmp_path, smpl, track):
    """Weights spread over 6 joints (real SMPL has vertices with more than 4): two JOINTS/WEIGHTS sets, and the
    skin still gives the LBS vertices."""
    import dataclasses
    frames, rotmat, betas, trans = track
    anim = build_animation(smpl, frames, rotmat, betas, trans, FPS)
    rng = np.random.default_rng(3)
    w = 0.8 * anim.skin_weights
    for v in range(len(w)):
        w[v, rng.choice(24, 5, replace=False)] += 0.04
    w /= w.sum(1, keepdims=True)
    assert (w > 0).sum(1).max() > 4
    write_glb(tmp_path / "w.glb", dataclasses.replace(anim, skin_weights=w))
    attrs = pygltflib.GLTF2.load(str(tmp_path / "w.glb")).meshes[0].primitives[0].attributes
    assert getattr(attrs, "JOINTS_1", None) is not None
    got, _ = _skin_glb(tmp_path / "w.glb", 2)
    assert np.abs(got - _reference_lbs_vertices(smpl, rotmat, betas, trans, w)[2]).max() < TOL


def test_skin_sets_keep_every_weight_largest_first():
    w = np.zeros((3, 24))
    w[0, [3, 5]] = (0.25, 0.75)
    w[1, :6] = (0.1, 0.1, 0.1, 0.3, 0.2, 0.2)
    w[2, 7] = 1.0
    j, ws = skin_sets(w)
    assert j.shape == ws.shape[:2] + (4,) and j.shape[0] == 2      # 6 influences -> 2 sets of 4
    assert j[0, 0, :2].tolist() == [5, 3] and ws[0, 0, :2].tolist() == [0.75, 0.25]
    back = np.zeros_like(w)
    for s in range(j.shape[0]):
        for c in range(4):
            np.add.at(back, (np.arange(3), j[s, :, c]), ws[s, :, c])
    assert np.allclose(back, w, atol=1e-7)
    assert (np.diff(ws[0, 1]) <= 0).all() and ws[0, 1, 0] == pytest.approx(0.3)


def test_fill_gaps_holds_the_previous_frame():
    frames, vals = fill_gaps(np.array([7, 3, 4]), np.array([70.0, 30.0, 40.0]))
    assert frames.tolist() == [3, 4, 5, 6, 7] and vals.tolist() == [30, 40, 40, 40, 70]
    with pytest.raises(ValueError, match="two records"):
        fill_gaps(np.array([1, 1]), np.zeros(2))


@pytest.fixture(scope="module")
def random_model(body_files):
    torch.manual_seed(0)
    from pymaf.api import load_model
    return load_model(checkpoint=None, data_root=str(body_files.root), device="cpu").eval()


def test_demo_video_exports_bvh_and_glb(tmp_path, random_model, smpl):
    """demo on a tiny 3-frame video with --export-bvh --export-glb: one BVH and one GLB per track that parse,
    with the video's frames and frame rate, and the BVH joints are the ones of the demo's params."""
    from pymaf.demo.run import demo_config, run_demo
    h, w, n, fps = 48, 64, 3, 12
    writer = cv2.VideoWriter(str(tmp_path / "my.clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n):
        writer.write(np.full((h, w, 3), 60 + 40 * i, np.uint8))
    writer.release()
    out = tmp_path / "out"
    opts = demo_config(["--input", str(tmp_path / "my.clip.mp4"), "--output", str(out), "--full-image",
                       "--no-render", "--export-bvh", "--export-glb"])
    s = run_demo(opts, model=random_model)
    assert (out / "animation/my.clip_p000.bvh").is_file() and (out / "animation/my.clip_p000.glb").is_file()
    assert s["animation"] == [json.loads(json.dumps(e)) for e in s["animation"]]  # JSON-able
    assert s["animation"][0]["num_frames"] == n and s["animation"][0]["fps"] == pytest.approx(fps)
    root = bvhio.readAsHierarchy(str(out / "animation/my.clip_p000.bvh"))
    assert len(root.Keyframes) == n and len(root.layout()) == 24
    doc = pygltflib.GLTF2.load(str(out / "animation/my.clip_p000.glb"))
    assert len(doc.skins[0].joints) == 24 and len(doc.animations[0].channels) == 25
    assert doc.accessors[doc.animations[0].samplers[0].input].count == n
    import trimesh  # a second, unrelated glTF reader opens it too
    geoms = list(trimesh.load(str(out / "animation/my.clip_p000.glb")).geometry.values())
    assert len(geoms) == 1 and geoms[0].vertices.shape == (6890, 3) and geoms[0].faces.shape == (13776, 3)
    recs = [np.load(out / "params" / f"{i:06d}_p000.npz") for i in range(n)]
    rotmat = np.stack([r["rotmat"] for r in recs]).astype(np.float64)
    betas = np.stack([r["betas"] for r in recs]).astype(np.float64)
    trans = np.stack([r["translation"] for r in recs]).astype(np.float64)
    from pymaf.body.joints import SMPL_JOINT_NAMES
    got = _bvh_joints(out / "animation/my.clip_p000.bvh", SMPL_JOINT_NAMES)
    assert np.abs(got - _reference_joints(smpl, rotmat, betas, trans)).max() < TOL


def test_animation_export_needs_a_tracked_input(tmp_path, random_model):
    from pymaf.demo.run import demo_config, run_demo
    from pymaf.errors import InputError
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    opts = demo_config(["--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "o"),
                       "--full-image", "--export-bvh"])
    with pytest.raises(InputError, match="--sequence"):
        run_demo(opts, model=random_model)
