"""Invariants of the joint conventions (spec §2)."""
import numpy as np
import pytest
import torch

from pymaf.body import joints as J


def _mirror_name(name: str) -> str:
    """Left<->right counterpart of a joint name in any of the conventions."""
    for a, b in (("Left", "Right"), ("left_", "right_")):
        if a in name:
            return name.replace(a, b)
        if b in name:
            return name.replace(b, a)
    if name.startswith("OP R"):
        return "OP L" + name[4:]
    if name.startswith("OP L"):
        return "OP R" + name[4:]
    return name


def test_sizes():
    assert len(J.SMPL_JOINT_NAMES) == 24 and len(J.SMPL_PARENTS) == 24
    assert len(J.JOINT_NAMES) == 49 == len(J.JOINT_MAP) == len(set(J.JOINT_NAMES))
    assert len(J.VERTEX_JOINT_IDS) == 21
    assert max(J.JOINT_MAP) == 24 + 21 + J.NUM_EXTRA_JOINTS - 1 == 53
    assert len(J.EXTRA_JOINT_NAMES) == J.NUM_EXTRA_JOINTS
    assert len(J.H36M_TO_J17) == 17 and J.H36M_TO_J14 == J.H36M_TO_J17[:14]
    assert J.J24_TO_J14 == J.J24_TO_J17[:14] and len(J.J24_TO_J19) == 19
    assert sorted(J.J24_TO_JCOCO) == sorted(set(J.J24_TO_JCOCO)) and len(J.J24_TO_JCOCO) == 17
    assert len(J.SMPL_POSE_FLIP_PERM) == 72 and len(J.SMPL_J49_FLIP_PERM) == 49


def test_smpl_j49_flip_perm_is_the_official_one():
    # §2.4: the 25 OpenPose entries of J49_FLIP_PERM, then 25 + SMPL_JOINTS_FLIP_PERM (49 entries, not 73)
    assert J.SMPL_J49_FLIP_PERM[:25] == J.J49_FLIP_PERM[:25]
    assert J.SMPL_J49_FLIP_PERM[25:] == [25 + i for i in J.SMPL_JOINTS_FLIP_PERM]
    assert sorted(J.SMPL_J49_FLIP_PERM) == list(range(49))


def test_idx431():
    idx = np.array(J.IDX431)
    assert idx.shape == (431,) and np.all(np.diff(idx) > 0)
    assert idx[0] == 5 and idx[-1] == 6871 and idx.max() < 6890


def test_vertex_ids_match_smplx():
    from smplx.vertex_ids import vertex_ids
    from smplx.vertex_joint_selector import VertexJointSelector

    sel = VertexJointSelector(vertex_ids=vertex_ids["smplh"])
    assert sel.extra_joints_idxs.tolist() == J.VERTEX_JOINT_IDS


def test_extra_joints_named_consistently():
    # the 49 map: indices 45..53 are the extra-regressor rows, and their J24 names match §2.1
    for k, src in enumerate(J.JOINT_MAP):
        if src >= 45:
            assert J.JOINT_NAMES[k] == J.EXTRA_JOINT_NAMES[src - 45]


@pytest.mark.parametrize("perm,names", [
    (J.SMPL_JOINTS_FLIP_PERM, J.SMPL_JOINT_NAMES),
    (J.J24_FLIP_PERM, J.JOINT_NAMES[25:]),
    (J.J49_FLIP_PERM, J.JOINT_NAMES),
    (J.SMPL_J49_FLIP_PERM, J.JOINT_NAMES[:25] + J.SMPL_JOINT_NAMES),
])
def test_flip_perms_are_mirror_involutions(perm, names):
    assert sorted(perm) == list(range(len(perm)))
    assert [perm[p] for p in perm] == list(range(len(perm)))
    for i, p in enumerate(perm):
        assert names[p] == _mirror_name(names[i]), (i, names[i], names[p])


def test_joint_map_mirror_consistent():
    # flipping the 49 joints = flipping the SMPL joints they come from (for SMPL-sourced joints)
    for i, src in enumerate(J.JOINT_MAP):
        src_flip = J.JOINT_MAP[J.J49_FLIP_PERM[i]]
        if src < 24:
            assert src_flip == J.SMPL_JOINTS_FLIP_PERM[src]


def test_flip_pose_twice_identity_numpy_and_torch():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(3, 72))
    once = J.flip_pose(pose)
    np.testing.assert_array_equal(J.flip_pose(once), pose)
    # root keeps x, negates y and z
    np.testing.assert_array_equal(once[:, :3], pose[:, :3] * [1, -1, -1])
    # left hip (1) <- right hip (2)
    np.testing.assert_array_equal(once[:, 3:6], pose[:, 6:9] * [1, -1, -1])
    t = torch.from_numpy(pose).float().requires_grad_()
    out = J.flip_pose(t)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.detach(), torch.from_numpy(once).float())
    out.sum().backward()
    with pytest.raises(ValueError):
        J.flip_pose(np.zeros((2, 69)))


def test_flip_pose_is_mirror_of_rotation():
    # mirroring a rotation by the x-reflection M: R' = M R M; axis-angle (x,y,z) -> (x,-y,-z)
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(1)
    aa = rng.normal(size=(24, 3)) * 0.5
    flipped = J.flip_pose(aa.reshape(72)).reshape(24, 3)
    M = np.diag([-1.0, 1.0, 1.0])
    for j in range(24):
        R = Rotation.from_rotvec(aa[J.SMPL_JOINTS_FLIP_PERM[j]]).as_matrix()
        np.testing.assert_allclose(Rotation.from_rotvec(flipped[j]).as_matrix(), M @ R @ M, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_flip_keypoints(d):
    rng = np.random.default_rng(2)
    kp = rng.normal(size=(2, 49, d))
    out = J.flip_keypoints(kp, J.J49_FLIP_PERM)
    np.testing.assert_array_equal(J.flip_keypoints(out, J.J49_FLIP_PERM), kp)
    np.testing.assert_array_equal(out[:, 2, 0], -kp[:, 5, 0])  # OP RShoulder <- OP LShoulder, x negated
    np.testing.assert_array_equal(out[:, 2, 1:], kp[:, 5, 1:])
    t = torch.from_numpy(kp)
    torch.testing.assert_close(J.flip_keypoints(t, J.J49_FLIP_PERM), torch.from_numpy(out))
    with pytest.raises(ValueError):
        J.flip_keypoints(kp, J.J24_FLIP_PERM)
