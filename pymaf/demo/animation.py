"""Animation-ready export of a tracked person: the SMPL 24-joint skeleton, its rest pose for the person's
shape, and per-frame joint rotations and root translation, written as BVH (``pymaf.demo.bvh``) and as a
skinned, animated glTF 2.0 binary (``pymaf.demo.gltf``).

Axis convention of the exported files (world frame): **Y up, metres, right-handed**; the world is the demo's
full-image camera frame (OpenCV: x right, y down, z forward) rotated 180 degrees about its x axis,
``p_world = C p_cam`` with ``C = diag(1, -1, -1)``. So the camera sits at the origin looking down -Z, x points
to the image's right, and a person facing the camera faces +Z (glTF's "front"; Blender's importers turn
this into -Y forward / Z up). The rest pose is SMPL's T-pose in its canonical frame (also Y up, facing +Z).

Per frame t (the demo's rotations R_i, shape betas, full-image translation ``trans``):

* the root (pelvis) rotation is ``C R_0`` and its position ``C (J_0 + trans)``, with J the rest joints;
* every other joint keeps SMPL's local rotation R_i (rest offsets ``J_i - J_parent`` are in the same frame);
* so the exported joints are ``C (smpl_joints + trans)`` exactly (SMPL joints follow the kinematic chain).

One shape per person: a skeleton has fixed bone lengths, so the animation uses the mean betas over the
track's frames for the rest offsets and the skinned mesh. The glTF skin is linear blend skinning of the
shaped rest mesh (``v_template + shapedirs @ betas``) with SMPL's skinning weights: SMPL's pose-dependent
corrective blend shapes are not part of glTF skinning and are not exported, so the animated glTF vertices are
``C (LBS(v_shaped, R) + trans)``, SMPL without pose correctives (they differ near bent joints).

Frames: the animation runs from the first to the last frame in which the track appears; a frame where the
person is missing holds the previous pose (the glTF keys carry the video frame times, the BVH starts at its
first frame: ``start_frame`` in ``summary.json``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pymaf.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS

# camera (x right, y down, z forward) -> world (x right, y up, z toward the camera): 180 deg about x
CAM_TO_WORLD = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class SkeletonAnimation:
    """One person's animation in the world frame of the module docstring (float64 unless said).

    names [24], parents [24] int (root -1); rest_joints [24,3] and rest_vertices [V,3] (T-pose, metres, for
    ``betas`` [10]); faces [F,3] int; skin_weights [V,24]; rotations [T,24,3,3] local joint rotations (root:
    in the world); root_position [T,3] world position of the pelvis; frame_indices [T] int video frames;
    fps frames per second.
    """
    names: tuple[str, ...]
    parents: np.ndarray
    rest_joints: np.ndarray
    rest_vertices: np.ndarray
    faces: np.ndarray
    skin_weights: np.ndarray
    betas: np.ndarray
    rotations: np.ndarray
    root_position: np.ndarray
    frame_indices: np.ndarray
    fps: float

    @property
    def offsets(self) -> np.ndarray:
        """[24,3] rest offset of each joint from its parent (the root's: its rest position)."""
        off = self.rest_joints.copy()
        off[1:] -= self.rest_joints[self.parents[1:]]
        return off


def fill_gaps(frame_indices: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Frames first..last of a track; a missing frame holds the previous frame's values.

    frame_indices [N] int (any order, unique) and arrays [N,...] -> (frames [T], arrays [T,...]) with
    T = last - first + 1."""
    order = np.argsort(frame_indices)
    fi = np.asarray(frame_indices)[order]
    if len(np.unique(fi)) != len(fi):
        raise ValueError(f"a track has two records for one frame: {fi.tolist()}")
    frames = np.arange(fi[0], fi[-1] + 1)
    src = np.searchsorted(fi, frames, side="right") - 1  # the latest record at or before each frame
    return (frames, *(np.asarray(a)[order][src] for a in arrays))


def build_animation(smpl: torch.nn.Module, frame_indices: np.ndarray, rotmat: np.ndarray, betas: np.ndarray,
                    translation: np.ndarray, fps: float) -> SkeletonAnimation:
    """The animation of one track from the demo's per-frame parameters.

    smpl: ``pymaf.body.smpl.SMPL``; frame_indices [N]; rotmat [N,24,3,3]; betas [N,10]; translation [N,3]
    (camera frame, metres); fps > 0."""
    if not fps > 0:
        raise ValueError(f"animation export needs a positive frame rate, got {fps}")
    frames, R, trans = fill_gaps(np.asarray(frame_indices), np.asarray(rotmat, np.float64),
                                 np.asarray(translation, np.float64))
    mean_betas = np.asarray(betas, np.float64).mean(0)
    buf = smpl.faces.device
    dtype = smpl.shapedirs.dtype
    eye = torch.eye(3, dtype=dtype, device=buf).expand(1, 24, 3, 3)
    with torch.no_grad():  # identity pose: no pose blend shapes, vertices = v_template + shapedirs @ betas
        rest = smpl(betas=torch.as_tensor(mean_betas[None], dtype=dtype, device=buf), body_pose=eye[:, 1:],
                    global_orient=eye[:, :1])
    rest_joints = rest.smpl_joints[0].double().cpu().numpy()
    parents = smpl.parents.cpu().numpy().astype(np.int64)
    if parents.tolist()[1:] != SMPL_PARENTS[1:]:
        raise ValueError(f"the body model's kinematic tree {parents.tolist()} is not SMPL's {SMPL_PARENTS}")
    parents[0] = -1
    rot = R.copy()
    rot[:, 0] = CAM_TO_WORLD @ R[:, 0]
    root = (CAM_TO_WORLD @ (rest_joints[0] + trans).T).T
    return SkeletonAnimation(
        names=SMPL_JOINT_NAMES, parents=parents, rest_joints=rest_joints,
        rest_vertices=rest.vertices[0].double().cpu().numpy(), faces=smpl.faces.cpu().numpy().astype(np.int64),
        skin_weights=smpl.lbs_weights.double().cpu().numpy(), betas=mean_betas, rotations=rot,
        root_position=root, frame_indices=frames, fps=float(fps))
