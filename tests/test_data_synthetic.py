"""The built-in synthetic dataset: SPIN-format output, projection consistency, visible person, determinism."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pymaf.data.dataset import build_dataset
from pymaf.data.spin_npz import load_spin_npz
from pymaf.data.synthetic import SyntheticConfig, SyntheticRenderer, generate_synthetic_dataset

SIZE = (96, 128)  # (H, W): small and not square


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory, body_root) -> Path:
    root = tmp_path_factory.mktemp("synth")
    shutil.copytree(body_root, root, dirs_exist_ok=True)  # body model files under the data root itself
    generate_synthetic_dataset(root, num_train=8, num_val=3, seed=5, image_size=SIZE, workers=1)
    return root


def test_npz_loads_through_base_dataset(synth_root):
    ds = build_dataset(synth_root, "synthetic", "train")
    val = build_dataset(synth_root, "synthetic-val", "eval")
    assert len(ds) == 8 and len(val) == 3 and ds.is_train and not val.is_train
    s = ds[(0, 0)]
    assert s["img"].shape == (3, 224, 224) and s["orig_shape"].tolist() == list(SIZE)
    assert float(s["has_smpl"]) == 1 and float(s["has_pose_3d"]) == 1 and int(s["gender"]) == -1
    v = val[1]
    inside = v["keypoints"][25:, 2] > 0
    assert inside.sum() >= 12 and (v["keypoints"][25:][inside, :2].abs() <= 1.0).all()


def test_keypoints_are_projections_of_the_3d_joints(synth_root):
    from pymaf.body.files import resolve_body_files
    from pymaf.body.smpl import build_smpl
    ann = load_spin_npz(synth_root / "synthetic" / "synthetic_train.npz")
    smpl = build_smpl(resolve_body_files(synth_root))
    with torch.no_grad():
        out = smpl(betas=torch.as_tensor(ann.betas), body_pose=torch.as_tensor(ann.pose[:, 3:]),
                   global_orient=torch.as_tensor(ann.pose[:, :3]), pose2rot=True)
    j24 = out.joints[:, 25:].numpy()
    cam = j24 + ann.extra["cam_trans"][:, None]
    uv = ann.extra["cam_focal"][:, None, None] * cam[..., :2] / cam[..., 2:] + ann.extra["cam_center"][:, None]
    part = ann.keypoints[:, 25:]
    np.testing.assert_allclose(part[..., :2], uv, atol=2e-3)
    h, w = SIZE
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
    assert (part[..., 2] == inside).all()
    np.testing.assert_allclose(ann.pose_3d[..., :3], j24 - j24[:, 14:15], atol=1e-4)
    assert (ann.pose_3d[..., 3] == 1).all()
    assert (j24[:, 13, 1] < j24[:, [0, 5], 1].min(1)).mean() >= 0.75  # mostly upright: head above the ankles
    box = np.stack([uv.min(1), uv.max(1)], 1)
    np.testing.assert_allclose(ann.center, box.mean(1), rtol=1e-5)
    np.testing.assert_allclose(ann.scale, 1.2 * (box[:, 1] - box[:, 0]).max(1) / 200, rtol=1e-5)


def test_person_pixels_differ_from_the_background(synth_root):
    r = SyntheticRenderer(synth_root, SyntheticConfig(image_size=SIZE))
    for s in r.render_chunk(seed=5, split="train", indices=[0, 1, 2]):
        mask = s["mask"]
        assert 0.03 < mask.mean() < 0.7
        diff = np.abs(s["image"].astype(int) - s["background"].astype(int)).sum(-1)
        assert (diff[mask] > 0).all() and (diff[~mask] == 0).all()
        ys, xs = np.nonzero(mask)
        kp = s["ann"]["part"]
        assert np.median(np.abs(kp[:, 0] - xs.mean())) < xs.std() * 2 and kp[:, 1].min() >= ys.min() - 3


def test_same_seed_same_bytes(synth_root, tmp_path):
    for f in synth_root.iterdir():  # reuse the body-model files
        if f.name != "synthetic":
            (tmp_path / f.name).symlink_to(f)
    generate_synthetic_dataset(tmp_path, num_train=8, num_val=3, seed=5, image_size=SIZE, workers=2)
    a, b = synth_root / "synthetic", tmp_path / "synthetic"
    for rel in ["synthetic_train.npz", "synthetic_val.npz", "images/train/000007.jpg", "images/val/000002.jpg"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    r = SyntheticRenderer(synth_root, SyntheticConfig(image_size=SIZE))
    same, other = r.render_chunk(5, "train", [0])[0], r.render_chunk(6, "train", [0])[0]
    np.testing.assert_allclose(same["ann"]["pose"], load_spin_npz(a / "synthetic_train.npz").pose[0], atol=1e-6)
    assert np.abs(other["ann"]["pose"] - same["ann"]["pose"]).max() > 0.1
