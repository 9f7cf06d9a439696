"""Training augmentation (spec §4.4): parameter sampling and the matching label transforms.

Order in the dataset: crop (with scale and rotation) -> flip image -> pixel noise. Labels follow:
2D keypoints get the crop transform then the J49 flip; 3D joints are rotated about the camera z axis by -rot
then J24-flipped; the SMPL global orient is pre-multiplied by R_z(-rot), then the pose is flipped.
``use_augmentation=False`` (or evaluation) gives the identity parameters (fixes §10.20).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pymaf.body.joints import J24_FLIP_PERM, flip_keypoints, flip_pose


@dataclass(frozen=True)
class AugmentConfig:
    """Official distributions (§4.4); every default is the official value."""
    flip_prob: float = 0.5      # P(flip), the official `uniform() <= 0.5`
    noise_factor: float = 0.4   # per-channel pixel multiplier ~ U[1 - f, 1 + f], always applied
    rot_factor: float = 30.0    # rot ~ clip(N(0,1) * f, -2f, 2f) degrees ...
    rot_prob: float = 0.4       # ... kept with this probability, else 0 (official: zeroed with p = 0.6)
    scale_factor: float = 0.25  # bbox scale multiplier ~ clip(N(0,1) * f + 1, 1 - f, 1 + f), always applied


@dataclass(frozen=True)
class AugmentParams:
    """The parameters of one sample: flip, per-channel pixel noise [3], rotation (degrees), scale multiplier."""
    flip: bool = False
    noise: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rot: float = 0.0
    scale: float = 1.0


IDENTITY = AugmentParams()


def sample_augmentation(rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> AugmentParams:
    """Draw one sample's parameters with the official distributions (§4.4)."""
    flip = bool(rng.uniform() <= cfg.flip_prob)
    noise = rng.uniform(1.0 - cfg.noise_factor, 1.0 + cfg.noise_factor, size=3)
    rot = float(np.clip(rng.standard_normal() * cfg.rot_factor, -2.0 * cfg.rot_factor, 2.0 * cfg.rot_factor))
    sc = float(np.clip(rng.standard_normal() * cfg.scale_factor + 1.0, 1.0 - cfg.scale_factor, 1.0 + cfg.scale_factor))
    if rng.uniform() > cfg.rot_prob:  # official: `if uniform() <= 0.6: rot = 0`
        rot = 0.0
    return AugmentParams(flip, (float(noise[0]), float(noise[1]), float(noise[2])), rot, sc)


def rotate_global_orient(pose: np.ndarray, rot: float) -> np.ndarray:
    """pose [72] axis-angle -> a copy whose global orient is pre-multiplied by R_z(-rot degrees)."""
    pose = np.array(pose, dtype=np.float32)
    if rot == 0:
        return pose
    a = math.radians(-rot)
    rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    r_orig, _ = cv2.Rodrigues(pose[:3].astype(np.float64))
    aa, _ = cv2.Rodrigues(rz @ r_orig)
    pose[:3] = aa[:, 0]
    return pose


def augment_pose(pose: np.ndarray, params: AugmentParams) -> np.ndarray:
    """SMPL pose [72]: rotate the global orient, then flip (§4.4)."""
    pose = rotate_global_orient(pose, params.rot)
    return flip_pose(pose).astype(np.float32) if params.flip else pose


def augment_joints3d(joints: np.ndarray, params: AugmentParams, perm: list[int] = J24_FLIP_PERM) -> np.ndarray:
    """3D joints [J, 3 or 4] (metres, conf last): (x, y) rotated by theta = -rot about z, then flipped (§4.4)."""
    out = np.array(joints, dtype=np.float32)
    if params.rot != 0:
        a = math.radians(-params.rot)
        cs, sn = math.cos(a), math.sin(a)
        x, y = out[:, 0].copy(), out[:, 1].copy()
        out[:, 0], out[:, 1] = cs * x - sn * y, sn * x + cs * y
    return flip_keypoints(out, perm).astype(np.float32) if params.flip else out


def augment_pixels(crop: np.ndarray, params: AugmentParams) -> np.ndarray:
    """crop [H, W, 3] uint8 RGB -> float32 [H, W, 3] in 0..255: flip, then per-channel noise (§4.4).

    As the official ``rgb_processing``: the float64 product ``crop · noise`` is clipped to [0, 255] and stored back
    into the uint8 crop, i.e. truncated to whole grey levels (keeping floats would be +0.5 level brighter on
    average than what the released checkpoint was trained on)."""
    img = crop[:, ::-1] if params.flip else crop
    if params.noise != (1.0, 1.0, 1.0):
        noisy = img * np.asarray(params.noise, dtype=np.float64)
        np.clip(noisy, 0.0, 255.0, out=noisy)
        img = noisy.astype(np.uint8)  # truncation, as the official assignment into the uint8 array
    return img.astype(np.float32)
