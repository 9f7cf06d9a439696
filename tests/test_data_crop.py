"""Crop geometry, both resize backends and the augmentation label transforms agree with the image content."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pymaf.body.joints import J24_FLIP_PERM, J49_FLIP_PERM, flip_keypoints
from pymaf.data.augment import (IDENTITY, AugmentConfig, AugmentParams, augment_joints3d, augment_pose,
                                rotate_global_orient, sample_augmentation)
from pymaf.data.crop import bytescale, crop_box, crop_rotate_resize, get_affine, keypoints_to_crop, transform_points
from pymaf.data.dataset import IMG_MEAN, IMG_STD, BaseDataset
from pymaf.data.spin_npz import save_spin_npz

W, H = 320, 240
DOTS = {0: (0, 110.0, 60.0), 6: (1, 205.0, 95.0), 13: (2, 150.0, 170.0)}  # J24 joint -> (channel, x, y)


def _dataset(tmp_path, img: np.ndarray, center, scale, part=None, **kw) -> BaseDataset:
    cv2.imwrite(str(tmp_path / "im.png"), img[:, :, ::-1])
    fields = dict(imgname=["im.png"], center=[center], scale=[scale])
    if part is not None:
        fields["part"] = part[None]
    save_spin_npz(tmp_path / "d.npz", **fields)
    return BaseDataset(tmp_path / "d.npz", tmp_path, "test", **kw)


def _dots_image() -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((H, W, 3), np.uint8)
    part = np.zeros((24, 3), np.float32)
    for j, (c, x, y) in DOTS.items():
        yy, xx = np.mgrid[:H, :W]
        img[..., c] = np.maximum(img[..., c], (255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0)).astype(np.uint8))
        part[j] = (x, y, 1)
    return img, part


def _unnormalise(t) -> np.ndarray:
    return (t.numpy().transpose(1, 2, 0) * IMG_STD + IMG_MEAN) * 255.0


@pytest.mark.parametrize("backend", ["spin", "head"])
@pytest.mark.parametrize("quirks", [True, False])
@pytest.mark.parametrize("rot,sc,flip", [(0.0, 1.0, False), (35.0, 0.8, False), (-50.0, 1.2, True), (20.0, 1.0, True)])
def test_keypoints_land_on_the_dots(tmp_path, backend, quirks, rot, sc, flip):
    img, part = _dots_image()
    ds = _dataset(tmp_path, img, (160.0, 115.0), 1.3, part, crop_backend=backend, keypoint_quirks=quirks)
    s = ds.process(0, img, AugmentParams(flip=flip, rot=rot, scale=sc))
    out = _unnormalise(s["img"])
    for j, (c, _, _) in DOTS.items():
        row = 25 + j
        if flip:  # the joint that holds the original joint j after the J49 permutation
            row = J49_FLIP_PERM.index(25 + j)
        u = s["keypoints"][row, :2].numpy()
        ch = out[..., c]
        mask = ch > 0.5 * ch.max()
        ys, xs = np.nonzero(mask)
        w = ch[mask]
        found = np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()
        expected = (u + 1) * 112.0 - (0.0 if quirks else 0.5)  # quirks: trunc(T)+1; exact: pixel centres
        assert np.abs(found - expected).max() < (1.6 if quirks else 0.75), (j, found, expected)
        assert s["keypoints"][row, 2] == 1


def test_affine_maps_the_box_onto_the_crop():
    c, s, res = np.array([150.0, 90.0]), 1.5, 224
    t = get_affine(c, s, res)
    corners = np.array([[c[0] - 150, c[1] - 150, 1], [c[0] + 150, c[1] + 150, 1], [c[0], c[1], 1]]) @ t.T
    np.testing.assert_allclose(corners[:, :2], [[0, 0], [res, res], [res / 2, res / 2]], atol=1e-9)
    pts = np.array([[10.0, 20.0], [300.0, 5.0]])
    back = transform_points(transform_points(pts, c, s, res, rot=30), c, s, res, rot=30, invert=True)
    assert np.abs(back - pts).max() <= 3  # quantised both ways


def test_flip_twice_is_identity():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(49, 3)).astype(np.float32)
    np.testing.assert_array_equal(flip_keypoints(flip_keypoints(kp, J49_FLIP_PERM), J49_FLIP_PERM), kp)
    pose = rng.normal(size=72).astype(np.float32)
    p = AugmentParams(flip=True)
    np.testing.assert_allclose(augment_pose(augment_pose(pose, p), p), pose, atol=1e-6)
    S = rng.normal(size=(24, 4)).astype(np.float32)
    np.testing.assert_array_equal(augment_joints3d(augment_joints3d(S, p), p), S)


@pytest.mark.parametrize("backend", ["spin", "head"])
def test_flipped_sample_equals_sample_of_flipped_image(tmp_path, backend):
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur((rng.random((H, W, 3)) * 255).astype(np.uint8), (9, 9), 3)
    part = np.concatenate([rng.uniform([20, 20], [W - 20, H - 20], (24, 2)), np.ones((24, 1))], 1)
    # a box whose official (truncated, §4.3) corners are mirror images of each other in the flipped image:
    # with 1.12 (200·1.12 = 224.00000000000003) the truncation moves one side by a pixel, as in the official code
    center, scale = np.array([150.0, 120.0]), 1.28
    ua, ba, _ = crop_box(center, scale, 224)
    ub, bb, _ = crop_box(np.array([W - center[0], center[1]]), scale, 224)
    assert (W - ba[0], W - ua[0]) == (ub[0], bb[0])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _dataset(tmp_path / "a", img, center, scale, part, crop_backend=backend, keypoint_quirks=False)
    fpart = part.copy()
    fpart[:, 0] = W - 1 - fpart[:, 0]
    fpart = fpart[J24_FLIP_PERM]
    fimg = np.ascontiguousarray(img[:, ::-1])
    b = _dataset(tmp_path / "b", fimg, (W - center[0], center[1]), scale, fpart, crop_backend=backend,
                 keypoint_quirks=False)
    sa, sb = a.process(0, img, AugmentParams(flip=True)), b.process(0, fimg, IDENTITY)
    np.testing.assert_allclose(sa["keypoints"][25:].numpy(), sb["keypoints"][25:].numpy(), atol=1e-5)
    np.testing.assert_allclose(sa["img"].numpy(), sb["img"].numpy(), atol=1e-5)
    # the official (quantised) keypoints agree within the quantisation step
    qa = _dataset(tmp_path / "a", img, center, scale, part).process(0, img, AugmentParams(flip=True))
    qb = _dataset(tmp_path / "b", fimg, (W - center[0], center[1]), scale, fpart).process(0, fimg, IDENTITY)
    assert (qa["keypoints"][25:, :2] - qb["keypoints"][25:, :2]).abs().max() <= 2.0 / 112 + 1e-6


def test_spin_backend_stretches_contrast_and_head_does_not():
    img = np.full((100, 100, 3), 110, np.uint8)
    img[30:70, 30:70] = 120
    spin = crop_rotate_resize(img, np.array([50.0, 50.0]), 0.4, 64, 0.0, "spin")
    head = crop_rotate_resize(img, np.array([50.0, 50.0]), 0.4, 64, 0.0, "head")
    assert spin.min() == 0 and spin.max() == 255
    assert head.min() == 110 and head.max() == 120
    x = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8) // 2 + 40
    np.testing.assert_array_equal(bytescale(x), bytescale(x.astype(np.float32)))
    ref = (np.clip((x - 40.0) * 255.0 / (x.max() - 40.0), 0, 255) + 0.5).astype(np.uint8)
    assert np.abs(bytescale(x).astype(int) - ref).max() <= 1


def test_rotation_of_3d_joints_pose_and_2d_keypoints_agree():
    rng = np.random.default_rng(2)
    S = np.concatenate([rng.normal(size=(24, 3)) * 0.4, np.ones((24, 1))], 1).astype(np.float32)
    # scale 1.28: the official truncated box is exactly 256 px about the centre (with 1.0 it is not, §4.3)
    rot, center, scale, k = 33.0, np.array([160.0, 120.0]), 1.28, 100.0
    ul, br, _ = crop_box(center, scale, 224)
    assert ((ul + br) / 2 == center).all() and (br - ul == 256).all()
    kp = center + k * S[:, :2] - 0.5  # orthographic projection, pixel-centre convention
    u = keypoints_to_crop(kp, center, scale, 224, rot, quirks=False)
    S_rot = augment_joints3d(S, AugmentParams(rot=rot))
    np.testing.assert_allclose(u, S_rot[:, :2] * 2 * k / (200 * scale), atol=1e-5)
    a = math.radians(-rot)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    np.testing.assert_allclose(S_rot[:, :3], S[:, :3] @ rz.T, atol=1e-5)
    pose = rng.normal(size=72).astype(np.float32) * 0.5
    r0, _ = cv2.Rodrigues(pose[:3].astype(np.float64))
    r1, _ = cv2.Rodrigues(rotate_global_orient(pose, rot)[:3].astype(np.float64))
    np.testing.assert_allclose(r1, rz @ r0, atol=1e-5)
    np.testing.assert_array_equal(rotate_global_orient(pose, rot)[3:], pose[3:])


def test_augmentation_distributions():
    rng = np.random.default_rng(3)
    ps = [sample_augmentation(rng, AugmentConfig()) for _ in range(4000)]
    rot = np.array([p.rot for p in ps])
    sc = np.array([p.scale for p in ps])
    noise = np.array([p.noise for p in ps])
    assert abs(np.mean(rot == 0) - 0.6) < 0.03 and np.abs(rot).max() <= 60
    assert 25 < np.std(rot[rot != 0]) < 33
    assert sc.min() >= 0.75 and sc.max() <= 1.25 and abs(sc.mean() - 1) < 0.02
    assert noise.min() >= 0.6 and noise.max() <= 1.4
    assert abs(np.mean([p.flip for p in ps]) - 0.5) < 0.03


def test_use_augmentation_false_disables_everything(tmp_path):
    img, part = _dots_image()
    off = _dataset(tmp_path, img, (160.0, 115.0), 1.3, part, is_train=True, use_augmentation=False)
    ev = BaseDataset(tmp_path / "d.npz", tmp_path, "test", is_train=False)
    on = BaseDataset(tmp_path / "d.npz", tmp_path, "test", is_train=True)
    a, b = off[(0, 1)], off[(0, 2)]
    for key in ("img", "keypoints", "scale", "rot_angle", "is_flipped"):
        assert (a[key] == b[key]).all() and (a[key] == ev[0][key]).all()
    assert float(a["scale"]) == pytest.approx(1.3) and int(a["is_flipped"]) == 0 and float(a["rot_angle"]) == 0
    assert not all((on[(0, s)]["img"] == a["img"]).all() for s in range(3))  # augmentation does change things
    assert (on[(0, 7)]["img"] == on[(0, 7)]["img"]).all()  # and is reproducible from the key's seed


# ---------------------------------------------------------------------------------- official quantisation (§4.3)
def _official_transform(pt, center, scale, res, invert=False, rot=0.0):
    """The official point transform written out from spec §4.3 (float64, per point, truncation by astype(int))."""
    h = 200 * scale
    t = np.zeros((3, 3))
    t[0, 0] = float(res) / h
    t[1, 1] = float(res) / h
    t[0, 2] = res * (-float(center[0]) / h + .5)
    t[1, 2] = res * (-float(center[1]) / h + .5)
    t[2, 2] = 1
    if rot != 0:
        rad = -rot * np.pi / 180
        sn, cs = np.sin(rad), np.cos(rad)
        r = np.zeros((3, 3))
        r[0, :2] = [cs, -sn]
        r[1, :2] = [sn, cs]
        r[2, 2] = 1
        tm = np.eye(3)
        tm[0, 2] = -res / 2
        tm[1, 2] = -res / 2
        ti = tm.copy()
        ti[:2, 2] *= -1
        t = np.dot(ti, np.dot(r, np.dot(tm, t)))
    if invert:
        t = np.linalg.inv(t)
    new = np.dot(t, np.array([pt[0] - 1, pt[1] - 1, 1.0]))
    return new[:2].astype(int) + 1


def test_integer_boxes_and_keypoints_truncate_exactly_as_the_official_transform(tmp_path):
    # H36M-style boxes: integer centres, scales on pixel boundaries; integer keypoints. The float64 product
    # is truncated as it is (an inverse that lands on 299.99999999999994 gives 299), in the dataset too.
    rng = np.random.default_rng(5)
    centers = np.concatenate([rng.integers(100, 900, (40, 2)), [[500, 500], [112, 112]]]).astype(np.float64)
    scales = np.array([1.0, 1.2, 0.9, 1.1, 2.0, 1.12, 0.56, 3.3])
    kps = rng.integers(0, 1000, (24, 2)).astype(np.float64)
    moved = 0
    for c in centers:
        for s in scales:
            ul = _official_transform([1, 1], c, s, 224, invert=True) - 1
            br = _official_transform([225, 225], c, s, 224, invert=True) - 1
            got_ul, got_br, _ = crop_box(c, s, 224)
            np.testing.assert_array_equal(got_ul, ul)
            np.testing.assert_array_equal(got_br, br)
            moved += int((ul != np.round(c - 100 * s)).any())
            for rot in (0.0, 30.0):
                want = np.array([_official_transform(k + 1, c, s, 224, rot=rot) for k in kps]) * 2.0 / 224 - 1
                np.testing.assert_array_equal(keypoints_to_crop(kps, c, s, 224, rot, quirks=True), want)
    assert moved > 0  # the case this guards: truncation below a whole pixel happens for such boxes
    # through the npz and the dataset: centre/scale/keypoints stay float64 (a float32 copy moves 1.2 and 0.9)
    c, s = np.array([500.0, 377.0]), 0.9
    img = np.zeros((1000, 1000, 3), np.uint8)
    part = np.concatenate([kps, np.ones((24, 1))], 1)
    ds = _dataset(tmp_path, img, c, s, part)
    assert ds.ann.center.dtype == np.float64 and ds.ann.scale.dtype == np.float64
    sample = ds.process(0, img, IDENTITY)
    want = np.array([_official_transform(k + 1, c, s, 224) for k in kps]) * 2.0 / 224 - 1
    np.testing.assert_array_equal(sample["keypoints"][25:, :2].numpy(), want.astype(np.float32))


def test_pixel_noise_truncates_to_whole_levels_as_the_official_uint8_store():
    from pymaf.data.augment import augment_pixels
    rng = np.random.default_rng(6)
    crop = rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)
    noise = (0.7, 1.3, 1.0123)
    out = augment_pixels(crop, AugmentParams(noise=noise))
    want = crop.copy()  # official: rgb[:, :, c] = min(255, max(0, rgb[:, :, c] * pn[c])) into the uint8 array
    for ch in range(3):
        want[:, :, ch] = np.minimum(255.0, np.maximum(0.0, crop[:, :, ch] * noise[ch]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, want.astype(np.float32))
    flipped = augment_pixels(crop, AugmentParams(flip=True, noise=noise))
    np.testing.assert_array_equal(flipped, want[:, ::-1].astype(np.float32))  # flip, then noise (§4.4)
