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


def test_clothing_colours_every_vertex_and_marks_the_front(body_files):
    from pymaf.body.smpl import build_smpl
    from pymaf.data.synthetic import Clothing
    smpl = build_smpl(body_files, "neutral")
    clothing = Clothing(smpl.lbs_weights.numpy(), smpl.v_template.numpy())
    m = clothing.masks
    union = m["skin"] | m["shirt"] | m["sleeve"] | m["trousers"] | m["shin"] | m["shoes"]
    assert union.all()  # every vertex gets a colour
    assert m["hair"].any() and m["front"].any() and not (m["front"] & ~m["shirt"]).any()
    z = smpl.v_template.numpy()[:, 2]  # SMPL faces +z: the print is on the front, the hair mostly at the back
    assert z[m["front"]].mean() > z[m["shirt"] & ~m["front"]].mean()
    cols = clothing.sample(np.random.default_rng(0))
    assert cols.shape == (smpl.v_template.shape[0], 3) and np.isfinite(cols).all()
    assert cols.min() >= 0 and cols.max() <= 1


def test_pose_modes_stay_anatomical():
    from scipy.spatial.transform import Rotation
    from pymaf.data.synthetic import sample_body_pose
    pose = sample_body_pose(np.random.default_rng(1), 200).reshape(200, 23, 3)
    euler = Rotation.from_rotvec(pose.reshape(-1, 3)).as_euler("xyz").reshape(200, 23, 3)
    knees = euler[:, [3, 4], 0]  # SMPL joints 4, 5 (body pose index = joint - 1): flexion only
    assert knees.min() >= -1e-6 and knees.max() <= 2.2 + 1e-6
    assert (np.abs(pose).max(-1) < np.pi).all()
    left_up = euler[:, 15, 2] > 0.6  # left shoulder (joint 16) raised: an "up" arm mode
    assert 0.05 < left_up.mean() < 0.5


def test_ensure_synthetic_regenerates_stale_data(tmp_path, monkeypatch):
    import json
    from pymaf.config import load_config
    from pymaf.data import synthetic
    from pymaf.train.data_adapter import ensure_synthetic
    calls = []

    def fake_generate(root, num_train, num_val, seed):
        calls.append((num_train, num_val, seed))
        (Path(root) / "synthetic").mkdir(parents=True, exist_ok=True)
        (Path(root) / "synthetic" / "info.json").write_text(json.dumps(dict(
            version=synthetic.SYNTHETIC_VERSION, num_train=num_train, num_val=num_val, seed=seed)))

    monkeypatch.setattr(synthetic, "generate_synthetic_dataset", fake_generate)
    cfg = load_config(None, ["data.synthetic_num_train=7", "data.synthetic_num_val=3"])
    ensure_synthetic(cfg, tmp_path)
    ensure_synthetic(cfg, tmp_path)          # up to date: nothing to do
    assert calls == [(7, 3, 0)]
    info = tmp_path / "synthetic" / "info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "version": synthetic.SYNTHETIC_VERSION - 1}))
    ensure_synthetic(cfg, tmp_path)          # another version: regenerated
    assert calls == [(7, 3, 0), (7, 3, 0)]
