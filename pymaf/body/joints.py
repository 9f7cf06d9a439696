"""Joint conventions of PyMAF/SPIN (spec §2): names, index maps, selectors, flip permutations.

All index constants are plain Python lists of ints (safe to use for numpy/torch advanced indexing:
``x[:, J24_TO_J14]``); treat them as read-only. Names are tuples.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

ArrayT = TypeVar("ArrayT")  # np.ndarray or torch.Tensor

# SMPL kinematic joints 0..23 (§2.1).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# Parent of each SMPL joint (row 0 of SMPL's kintree_table, root = -1).
SMPL_PARENTS: list[int] = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]

# The 21 vertex-picked joints that smplx appends after the 24 SMPL joints (smplx indices 24..44),
# smplx `vertex_ids['smplh']`, in the order of §2.1: face (nose, reye, leye, rear, lear),
# feet (LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel), left then right finger tips
# (thumb, index, middle, ring, pinky).
VERTEX_JOINT_IDS: list[int] = [
    332, 6260, 2800, 4071, 583,
    3216, 3226, 3387, 6617, 6624, 6787,
    2746, 2319, 2445, 2556, 2673,
    6191, 5782, 5905, 6016, 6133,
]

# The 49-joint convention (§2.2): 25 OpenPose BODY_25 joints, then the 24 dataset ("GT", J24) joints.
JOINT_NAMES: tuple[str, ...] = (
    # 0..24: OpenPose BODY_25
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow",
    "OP LWrist", "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee",
    "OP LAnkle", "OP REye", "OP LEye", "OP REar", "OP LEar", "OP LBigToe", "OP LSmallToe",
    "OP LHeel", "OP RBigToe", "OP RSmallToe", "OP RHeel",
    # 25..48: J24
    "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle",
    "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow", "Left Wrist",
    "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)", "Spine (H36M)",
    "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear",
)

# Names of the 9 rows of SPIN's J_regressor_extra.npy (indices 45..53 of the 54 joints, §2.1).
EXTRA_JOINT_NAMES: tuple[str, ...] = (
    "Right Hip", "Left Hip", "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)",
    "Thorax (MPII)", "Spine (H36M)", "Jaw (H36M)", "Head (H36M)",
)
NUM_EXTRA_JOINTS = 9

# Source index (into the 54 = 24 SMPL + 21 vertex + 9 extra joints) of each of the 49 joints (§2.2).
# Note: the GT hips (J24 2, 3) come from the extra regressor, not from SMPL joints 2 and 1.
JOINT_MAP: list[int] = [
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24, 26, 25, 28, 27,
]

# H36M regressor rows (§2.3) -> LSP-ordered J17 / J14.
H36M_TO_J17: list[int] = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9]
H36M_TO_J14: list[int] = H36M_TO_J17[:14]
# J24 -> J17 / J14 / J19 / COCO (§2.3). J24 18 "Head (H36M)" plays the head-top role.
J24_TO_J17: list[int] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 14, 16, 17]
J24_TO_J14: list[int] = J24_TO_J17[:14]
J24_TO_J19: list[int] = J24_TO_J14 + [19, 20, 21, 22, 23]
J24_TO_JCOCO: list[int] = [19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0]

# Flip permutations (§2.4): flipped[i] = original[PERM[i]].
SMPL_JOINTS_FLIP_PERM: list[int] = [
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
]
SMPL_POSE_FLIP_PERM: list[int] = [3 * j + k for j in SMPL_JOINTS_FLIP_PERM for k in range(3)]
J24_FLIP_PERM: list[int] = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18, 19, 21, 20, 23, 22]
J49_FLIP_PERM: list[int] = (
    [0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19, 20, 21]
    + [25 + i for i in J24_FLIP_PERM]
)
# The 25 OpenPose joints followed by the 24 SMPL joints (instead of J24): 49 entries, as the official constant
# (used only for SURREAL there, §2.4).
SMPL_J49_FLIP_PERM: list[int] = J49_FLIP_PERM[:25] + [25 + i for i in SMPL_JOINTS_FLIP_PERM]

# Appendix A: the 431 SMPL vertices selected by GraphCMR's Dmap = D[1] @ D[0] (row i -> vertex IDX431[i]).
IDX431: list[int] = [
    5, 24, 83, 110, 129, 134, 143, 153, 162, 170, 175, 177, 181, 195,
    208, 215, 254, 256, 258, 264, 269, 274, 300, 302, 331, 333, 362, 366,
    372, 390, 408, 412, 416, 433, 444, 457, 482, 494, 506, 600, 605, 612,
    619, 659, 674, 679, 704, 733, 739, 743, 785, 789, 800, 802, 811, 815,
    816, 853, 867, 869, 874, 881, 884, 888, 900, 901, 907, 912, 928, 938,
    957, 962, 963, 991, 1006, 1007, 1014, 1020, 1022, 1046, 1049, 1052, 1056, 1061,
    1080, 1089, 1092, 1096, 1116, 1134, 1145, 1149, 1154, 1162, 1183, 1189, 1209, 1228,
    1237, 1259, 1263, 1269, 1271, 1276, 1279, 1293, 1336, 1348, 1361, 1363, 1410, 1420,
    1427, 1435, 1438, 1464, 1477, 1500, 1539, 1560, 1577, 1600, 1613, 1646, 1664, 1682,
    1689, 1704, 1706, 1724, 1733, 1738, 1758, 1771, 1787, 1807, 1815, 1846, 1863, 1870,
    1925, 1945, 1989, 2012, 2033, 2043, 2072, 2093, 2103, 2105, 2115, 2189, 2241, 2246,
    2262, 2270, 2274, 2276, 2278, 2290, 2308, 2328, 2435, 2465, 2540, 2551, 2608, 2679,
    2729, 2744, 2784, 2835, 2848, 2870, 2892, 2925, 2931, 2936, 2971, 2979, 3003, 3010,
    3018, 3022, 3024, 3028, 3041, 3042, 3082, 3102, 3106, 3107, 3117, 3119, 3127, 3131,
    3164, 3185, 3190, 3192, 3200, 3210, 3214, 3217, 3222, 3225, 3228, 3242, 3303, 3312,
    3317, 3324, 3326, 3338, 3341, 3348, 3350, 3353, 3373, 3379, 3381, 3385, 3386, 3403,
    3424, 3427, 3429, 3432, 3472, 3474, 3499, 3523, 3536, 3615, 3653, 3671, 3676, 3681,
    3683, 3687, 3695, 3697, 3720, 3746, 3749, 3761, 3762, 3764, 3796, 3813, 3866, 3870,
    3892, 3902, 3920, 3979, 4006, 4055, 4088, 4091, 4094, 4107, 4126, 4149, 4158, 4162,
    4164, 4194, 4228, 4229, 4256, 4275, 4289, 4290, 4353, 4361, 4365, 4370, 4378, 4384,
    4398, 4411, 4415, 4421, 4424, 4426, 4440, 4443, 4450, 4457, 4477, 4478, 4490, 4493,
    4502, 4504, 4523, 4530, 4532, 4535, 4539, 4542, 4558, 4567, 4573, 4578, 4581, 4635,
    4657, 4710, 4712, 4713, 4745, 4754, 4759, 4762, 4791, 4792, 4798, 4894, 4900, 4912,
    4937, 4942, 4946, 4950, 4972, 4973, 4976, 4994, 5009, 5026, 5031, 5034, 5045, 5075,
    5082, 5129, 5134, 5162, 5200, 5211, 5221, 5236, 5249, 5253, 5256, 5290, 5295, 5308,
    5323, 5332, 5345, 5439, 5452, 5460, 5474, 5518, 5565, 5567, 5572, 5574, 5609, 5622,
    5639, 5652, 5655, 5690, 5702, 5723, 5748, 5752, 5780, 5786, 5898, 5907, 6002, 6034,
    6056, 6132, 6141, 6190, 6223, 6245, 6249, 6296, 6381, 6387, 6426, 6442, 6460, 6481,
    6489, 6499, 6507, 6511, 6529, 6532, 6539, 6549, 6575, 6586, 6590, 6603, 6612, 6616,
    6617, 6620, 6630, 6642, 6703, 6712, 6717, 6719, 6726, 6728, 6736, 6738, 6747, 6753,
    6757, 6781, 6783, 6787, 6789, 6794, 6802, 6803, 6821, 6829, 6871,
]


def _sign_like(x: ArrayT, signs: Sequence[float]) -> ArrayT:
    """`signs` as an array/tensor of x's type, dtype and device (broadcastable on the last dim)."""
    if isinstance(x, np.ndarray):
        return np.asarray(signs, dtype=x.dtype)
    return x.new_tensor(signs)  # torch.Tensor


def flip_pose(pose: ArrayT) -> ArrayT:
    """Mirror SMPL axis-angle poses left<->right (§2.4).

    pose: [..., 72] (numpy or torch). Joints are permuted with SMPL_POSE_FLIP_PERM, then the
    y and z components of every axis-angle are negated. Returns a new array [..., 72].
    """
    if pose.shape[-1] != 72:
        raise ValueError(f"flip_pose: expected pose [..., 72], got shape {tuple(pose.shape)}")
    return pose[..., SMPL_POSE_FLIP_PERM] * _sign_like(pose, [1.0, -1.0, -1.0] * 24)


def flip_keypoints(kp: ArrayT, perm: Sequence[int]) -> ArrayT:
    """Mirror keypoints left<->right (§2.4).

    kp: [..., J, D] with x in channel 0 (normalised 2D coordinates, 3D metres, with or without
    a trailing confidence); perm: J indices (e.g. J49_FLIP_PERM). Joints are permuted, then
    x -> -x. Returns a new array [..., J, D].
    """
    if kp.shape[-2] != len(perm):
        raise ValueError(
            f"flip_keypoints: kp has {kp.shape[-2]} joints (shape {tuple(kp.shape)}) but perm has {len(perm)}")
    d = kp.shape[-1]
    return kp[..., list(perm), :] * _sign_like(kp, [-1.0] + [1.0] * (d - 1))
