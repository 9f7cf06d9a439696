"""SMPL layer (spec §2) against an independent NumPy linear-blend-skinning implementation."""
import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pymaf.body import joints as J
from pymaf.body import model_file as mf
from pymaf.body.smpl import SMPL, build_smpl, load_mean_params

from helpers import V, random_model, random_regressor


@pytest.fixture(scope="module")
def arrays():
    return random_model(0), random_regressor(9, 1), random_regressor(17, 2)


@pytest.fixture(scope="module")
def smpl64(arrays):
    return SMPL(*arrays).double()


def numpy_lbs(m: dict, betas: np.ndarray, aa: np.ndarray):
    """Reference SMPL: betas [10], aa [24,3] -> vertices [V,3], joints [24,3] (float64)."""
    parents = m["kintree_table"][0]
    v_shaped = m["v_template"] + m["shapedirs"] @ betas
    joints = m["J_regressor"] @ v_shaped
    R = Rotation.from_rotvec(aa).as_matrix()                         # [24,3,3]
    v_posed = v_shaped + m["posedirs"] @ (R[1:] - np.eye(3)).ravel()
    G = np.zeros((24, 4, 4))
    for k in range(24):
        local = np.eye(4)
        local[:3, :3] = R[k]
        local[:3, 3] = joints[k] - (joints[parents[k]] if k > 0 else 0)
        G[k] = local if k == 0 else G[parents[k]] @ local
    posed_joints = G[:, :3, 3].copy()
    G[:, :3, 3] -= np.einsum("kij,kj->ki", G[:, :3, :3], joints)    # remove the rest pose
    T = np.einsum("vk,kij->vij", m["weights"], G)
    verts = np.einsum("vij,vj->vi", T[:, :3, :3], v_posed) + T[:, :3, 3]
    return verts, posed_joints


def _f32(m: dict) -> dict:  # smplx stores its arrays as float32; the reference uses the same values
    return {k: (v.astype(np.float32).astype(np.float64) if v.dtype.kind == "f" else v) for k, v in m.items()}


def _random_inputs(B: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, 10)), rng.normal(scale=0.6, size=(B, 24, 3))


def test_matches_numpy_lbs(arrays, smpl64):
    m = _f32(arrays[0])
    betas, aa = _random_inputs(3, 5)
    R = torch.from_numpy(Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(3, 24, 3, 3))
    out = smpl64(torch.from_numpy(betas), R[:, 1:], R[:, :1])
    assert out.vertices.shape == (3, V, 3) and out.joints.shape == (3, 49, 3) and out.smpl_joints.shape == (3, 24, 3)
    assert out.vertices.dtype == torch.float64
    for b in range(3):
        verts, joints = numpy_lbs(m, betas[b], aa[b])
        np.testing.assert_allclose(out.vertices[b].numpy(), verts, atol=1e-5, rtol=0)
        np.testing.assert_allclose(out.smpl_joints[b].numpy(), joints, atol=1e-5, rtol=0)
    # axis-angle input path gives the same result
    out_aa = smpl64(torch.from_numpy(betas), torch.from_numpy(aa[:, 1:].reshape(3, 69)),
                    torch.from_numpy(aa[:, 0]), pose2rot=True)
    torch.testing.assert_close(out_aa.vertices, out.vertices, atol=1e-7, rtol=0)  # smplx adds 1e-8 to angles


def test_49_joints_via_joint_map(arrays, smpl64):
    _, extra, h36m = arrays
    betas, aa = _random_inputs(2, 6)
    out = smpl64(torch.from_numpy(betas), torch.from_numpy(aa[:, 1:].reshape(2, 69)),
                 torch.from_numpy(aa[:, 0]), pose2rot=True)
    v = out.vertices.numpy()
    j54 = np.concatenate([out.smpl_joints.numpy(), v[:, J.VERTEX_JOINT_IDS],
                          np.einsum("jv,bvc->bjc", extra.astype(np.float32), v)], axis=1)
    np.testing.assert_allclose(out.joints.numpy(), j54[:, J.JOINT_MAP], atol=1e-10)
    # a few named checks of §2.2: OP Nose = vertex 332, J24 right hip = extra row 0, OP MidHip = pelvis
    np.testing.assert_allclose(out.joints[:, 0].numpy(), v[:, 332])
    np.testing.assert_allclose(out.joints[:, 27].numpy(), j54[:, 45])
    np.testing.assert_allclose(out.joints[:, 8].numpy(), out.smpl_joints[:, 0].numpy())
    h = smpl64.h36m_joints(out.vertices)
    np.testing.assert_allclose(h.numpy(), np.einsum("jv,bvc->bjc", h36m.astype(np.float32), v), atol=1e-10)


def test_zero_pose_is_rest_pose(arrays):
    smpl = SMPL(*arrays)
    eye = torch.eye(3).expand(2, 24, 3, 3)
    out = smpl(torch.zeros(2, 10), eye[:, 1:], eye[:, :1])
    torch.testing.assert_close(out.vertices[0], torch.from_numpy(arrays[0]["v_template"]).float())
    assert out.vertices.dtype == torch.float32


def test_module_has_no_state(arrays):
    smpl = SMPL(arrays[0], arrays[1])
    assert list(smpl.parameters()) == []
    assert smpl.state_dict() == {}  # checkpoints carry no SMPL arrays (§10.10)
    assert smpl.faces.dtype == torch.long and smpl.faces.shape == (13776, 3)
    names = dict(smpl.named_buffers())
    assert {"faces", "J_regressor_extra", "joint_map", "v_template", "shapedirs", "posedirs"} <= set(names)
    assert names["shapedirs"].shape == (V, 3, 10)
    wrapper = torch.nn.Sequential(smpl)
    wrapper.load_state_dict({}, strict=True)
    with pytest.raises(RuntimeError, match="J_regressor_h36m"):
        smpl.h36m_joints(torch.zeros(1, V, 3))


def test_gradients_and_batch_broadcast(arrays):
    smpl = SMPL(*arrays)
    betas = torch.zeros(1, 10, requires_grad=True)
    aa = (torch.randn(4, 72, generator=torch.Generator().manual_seed(0)) * 0.3).requires_grad_()
    out = smpl(betas, aa[:, 3:], aa[:, :3], pose2rot=True)  # betas broadcast over the batch
    assert out.vertices.shape == (4, V, 3)
    out.joints.sum().backward()
    assert betas.grad.abs().sum() > 0 and aa.grad.abs().sum() > 0


def test_rejects_bad_regressors(arrays):
    model, extra, h36m = arrays
    with pytest.raises(ValueError, match="GraphCMR"):
        SMPL(model, np.zeros((14, V)))
    with pytest.raises(ValueError, match=r"J_regressor_h36m has shape \(16, 6890\)"):
        SMPL(model, extra, h36m[:16])
    with pytest.raises(ValueError, match="'weights'"):
        SMPL({**model, "weights": model["weights"][:, :23]}, extra)


def _write_files(root, model, extra, h36m):
    (root / "smpl").mkdir(parents=True)
    mf.save_smpl_npz(model, root / "smpl" / "SMPL_NEUTRAL.npz")
    np.save(root / "J_regressor_extra.npy", extra)
    np.save(root / "J_regressor_h36m.npy", h36m)
    return SimpleNamespace(root=root, smpl={"neutral": root / "smpl" / "SMPL_NEUTRAL.npz"},
                           j_regressor_extra=root / "J_regressor_extra.npy",
                           j_regressor_h36m=root / "J_regressor_h36m.npy")


def test_build_smpl(tmp_path, arrays):
    files = _write_files(tmp_path, *arrays)
    smpl = build_smpl(files)
    assert smpl.J_regressor_h36m.shape == (17, V)
    with pytest.raises(ValueError, match="female"):
        build_smpl(files, "female")
    np.save(files.j_regressor_extra, np.zeros((14, V)))
    with pytest.raises(ValueError, match=r"J_regressor_extra.npy: J_regressor_extra has shape \(14, 6890\).*SPIN"):
        build_smpl(files)


def test_load_mean_params(tmp_path):
    path = tmp_path / "smpl_mean_params.npz"
    pose = np.tile([1.0, 0, 0, 1, 0, 0], 24)
    np.savez(path, pose=pose.astype(np.float32), shape=np.linspace(0, 1, 10), cam=np.array([0.9, 0, 0], np.float32))
    p = load_mean_params(path)
    assert {k: (v.shape, v.dtype) for k, v in p.items()} == {
        "pose": ((144,), np.float32), "shape": ((10,), np.float32), "cam": ((3,), np.float32)}
    np.testing.assert_array_equal(p["cam"], np.float32([0.9, 0, 0]))
    np.savez(path, pose=pose[None], shape=np.zeros(10), cam=np.zeros(3))  # (1,144) accepted
    assert load_mean_params(path)["pose"].shape == (144,)
    np.savez(path, pose=pose[:140], shape=np.zeros(10), cam=np.zeros(3))
    with pytest.raises(ValueError, match=r"'pose' has shape \(140,\).*\(144,\)"):
        load_mean_params(path)
    np.savez(path, pose=pose, cam=np.zeros(3))
    with pytest.raises(ValueError, match="missing key 'shape'"):
        load_mean_params(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_mean_params(path)


@pytest.mark.skipif(importlib.util.find_spec("pymaf.body.builtin") is None, reason="built-in body model not available")
def test_builtin_body_model(body_files):
    """The built-in body model loads through the same path and is posed sensibly."""
    smpl = build_smpl(body_files)
    mean = load_mean_params(body_files.mean_params)
    eye = torch.eye(3).expand(2, 24, 3, 3)
    out = smpl(torch.from_numpy(mean["shape"]).expand(2, 10), eye[:, 1:], eye[:, :1])
    assert torch.isfinite(out.vertices).all() and out.joints.shape == (2, 49, 3)
    assert smpl.h36m_joints(out.vertices).shape == (2, 17, 3)
    if body_files.mesh_downsampling is not None:
        assert mf.load_mesh_downsampling(body_files.mesh_downsampling).shape == (431,)
