"""Preparation scripts on tiny generated files in the raw public formats (3DPW, COCO, LSP/LSPET, MPII)."""
from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
import scipy.io

from pymaf.body.joints import J24_TO_JCOCO
from pymaf.data.spin_npz import SpinFormatError, load_spin_npz

from helpers import load_script



def _3dpw_sequence(rng) -> dict:
    frames, people = 3, 2
    cam = np.tile(np.eye(4), (frames, 1, 1))
    cam[:, :3, :3] = cv2.Rodrigues(np.array([0.1, -0.4, 0.2]))[0]
    kp = np.zeros((frames, 3, 18))
    kp[:, 0] = rng.uniform(100, 300, (frames, 18))
    kp[:, 1] = rng.uniform(200, 600, (frames, 18))
    kp[:, 2] = 0.8
    kp[:, 2, 17] = 0  # an undetected joint does not count for the box
    kp[:, 0, 17] = 5000
    return {"sequence": b"downtown_test_00", "poses": [rng.normal(size=(frames, 72)) * 0.3 for _ in range(people)],
            "betas": [rng.normal(size=16) for _ in range(people)], "trans": [np.zeros((frames, 3))] * people,
            "cam_poses": cam, "campose_valid": [np.array([1, 0, 1]), np.array([1, 1, 1])],
            "genders": [b"m", "f"], "poses2d": [kp, kp], "jointPositions": [np.zeros((frames, 72))] * people,
            "img_frame_ids": np.arange(frames)}


def test_prepare_3dpw(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "sequenceFiles" / "test"
    folder.mkdir(parents=True)
    seq = _3dpw_sequence(rng)
    (folder / "downtown_test_00.pkl").write_bytes(pickle.dumps(seq, protocol=2))
    assert load_script("prepare_3dpw").main(["--raw-dir", str(tmp_path), "--out", str(tmp_path / "3dpw.npz")]) == 0
    ann = load_spin_npz(tmp_path / "3dpw.npz")
    assert len(ann) == 5 and ann.imgname[1] == "imageFiles/downtown_test_00/image_00002.jpg"
    assert ann.gender.tolist() == [0, 0, 1, 1, 1] and ann.has_smpl.all()
    r_cam = seq["cam_poses"][0][:3, :3]
    expected = cv2.Rodrigues(r_cam @ cv2.Rodrigues(seq["poses"][0][2, :3])[0])[0][:, 0]
    np.testing.assert_allclose(ann.pose[1, :3], expected, atol=1e-5)
    np.testing.assert_allclose(ann.pose[1, 3:], seq["poses"][0][2, 3:], atol=1e-6)
    np.testing.assert_allclose(ann.betas[0], seq["betas"][0][:10], atol=1e-6)
    kp = seq["poses2d"][0][0][:, :17]
    np.testing.assert_allclose(ann.center[0], (kp[:2].min(1) + kp[:2].max(1)) / 2, rtol=1e-6)
    assert ann.scale[0] == pytest.approx(1.2 * (kp[:2].max(1) - kp[:2].min(1)).max() / 200, rel=1e-6)
    # only numpy arrays are unpickled
    evil = folder / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(SpinFormatError, match="not allowed"):
        load_script("prepare_3dpw").main(["--raw-dir", str(tmp_path), "--out", str(tmp_path / "x.npz")])


def test_prepare_coco(tmp_path):
    (tmp_path / "annotations").mkdir()
    kp_full = np.concatenate([np.arange(34).reshape(17, 2) * 3 + 50, np.full((17, 1), 2)], 1)
    kp_few = kp_full.copy()
    kp_few[8:, 2] = 0
    data = {"images": [{"id": 7, "file_name": "COCO_val2014_000000000007.jpg"}],
            "annotations": [
                {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [10, 20, 100, 50],
                 "keypoints": kp_full.ravel().tolist(), "num_keypoints": 17},
                {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 10, 10],
                 "keypoints": kp_few.ravel().tolist(), "num_keypoints": 8},
                {"id": 3, "image_id": 7, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10],
                 "keypoints": kp_full.ravel().tolist(), "num_keypoints": 17}]}
    (tmp_path / "annotations" / "person_keypoints_val2014.json").write_text(json.dumps(data))
    mod = load_script("prepare_coco")
    assert mod.main(["--raw-dir", str(tmp_path), "--out", str(tmp_path / "c.npz"), "--split", "val"]) == 0
    ann = load_spin_npz(tmp_path / "c.npz")
    assert len(ann) == 1 and ann.imgname[0] == "val2014/COCO_val2014_000000000007.jpg"
    np.testing.assert_allclose(ann.center[0], [60, 45])
    assert ann.scale[0] == pytest.approx(0.6)
    part = ann.keypoints[0, 25:]
    np.testing.assert_allclose(part[J24_TO_JCOCO, :2], kp_full[:, :2])
    assert (part[J24_TO_JCOCO, 2] == 1).all() and part[[12, 13, 14, 15, 16, 17, 18], 2].sum() == 0
    mod.main(["--raw-dir", str(tmp_path), "--out", str(tmp_path / "c1.npz"), "--split", "val",
              "--min-body-keypoints", "1"])
    assert len(load_spin_npz(tmp_path / "c1.npz")) == 2


@pytest.mark.parametrize("lspet", [False, True])
def test_prepare_lsp(tmp_path, lspet):
    rng = np.random.default_rng(1)
    n = 4 if lspet else 1003
    joints = np.stack([rng.uniform(10, 90, (n, 14)), rng.uniform(20, 150, (n, 14)), np.ones((n, 14))], -1)
    if lspet:
        joints[0, 13] = (500, 500, 0)  # invisible: excluded from the box
        scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints.transpose(1, 2, 0)})  # 14 x 3 x N
    else:
        scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints.transpose(2, 1, 0)})  # 3 x 14 x N
    load_script("prepare_lsp").main(["--raw-dir", str(tmp_path), "--out", str(tmp_path / "l.npz"), "--split", "test"])
    ann = load_spin_npz(tmp_path / "l.npz")
    first = 0 if lspet else 1000
    assert len(ann) == (4 if lspet else 3)
    assert ann.imgname[0] == (f"images/im{first + 1:05d}.jpg" if lspet else "images/im1001.jpg")
    np.testing.assert_allclose(ann.keypoints[0, 25:39, :2], joints[first, :, :2], rtol=1e-6)
    vis = joints[first, :, 2] > 0
    xy = joints[first, vis, :2]
    np.testing.assert_allclose(ann.center[0], (xy.min(0) + xy.max(0)) / 2, rtol=1e-6)
    if lspet:
        assert ann.keypoints[0, 25 + 13, 2] == 0 and not ann.maskname[0]
    else:
        assert (ann.keypoints[:, 25:39, 2] == 1).all()
        assert ann.maskname[0] == "data/lsp/im1001_segmentation.png"
        assert ann.partname[2] == "data/lsp/im1003_part_segmentation.png"


def _struct_array(records: list[dict], fields: list[str]) -> np.ndarray:
    arr = np.zeros((1, len(records)), dtype=[(f, "O") for f in fields])
    for i, r in enumerate(records):
        for f in fields:
            arr[0, i][f] = r.get(f, np.zeros((0, 0)))
    return arr


def test_prepare_mpii(tmp_path):
    pts = _struct_array([{"id": 0, "x": 10.0, "y": 20.0, "is_visible": 1},
                         {"id": 9, "x": 30.0, "y": 5.0, "is_visible": 0},
                         {"id": 6, "x": 15.0, "y": 40.0, "is_visible": "1"}], ["id", "x", "y", "is_visible"])
    rects = _struct_array([{"annopoints": {"point": pts}, "objpos": {"x": 100.0, "y": 120.0}, "scale": 2.5},
                           {"objpos": {"x": 1.0, "y": 2.0}, "scale": 1.0}],  # no joints: skipped
                          ["annopoints", "objpos", "scale"])
    one_rect = _struct_array([{"annopoints": {"point": pts}}], ["annopoints", "objpos", "scale"])
    annolist = _struct_array([{"image": {"name": "a.jpg"}, "annorect": rects},
                              {"image": {"name": "b.jpg"}, "annorect": one_rect},
                              {"image": {"name": "test.jpg"}, "annorect": rects}], ["image", "annorect"])
    scipy.io.savemat(tmp_path / "mpii_human_pose_v1_u12_1.mat",
                     {"RELEASE": {"annolist": annolist, "img_train": np.array([[1, 1, 0]])}})
    load_script("prepare_mpii").main(["--raw-dir", str(tmp_path), "--out", str(tmp_path / "m.npz")])
    ann = load_spin_npz(tmp_path / "m.npz")
    assert ann.imgname.tolist() == ["images/a.jpg", "images/b.jpg"]
    np.testing.assert_allclose(ann.center[0], [100, 120])
    assert ann.scale[0] == pytest.approx(2.5)
    part = ann.keypoints[0, 25:]
    np.testing.assert_allclose(part[[0, 13, 14]], [[10, 20, 1], [30, 5, 1], [15, 40, 1]])
    assert part[:, 2].sum() == 3
    np.testing.assert_allclose(ann.center[1], [20, 22.5])  # no objpos/scale: keypoint box
    assert ann.scale[1] == pytest.approx(1.2 * 35 / 200)
