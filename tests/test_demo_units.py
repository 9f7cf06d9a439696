"""Demo building blocks: tracker, One-Euro smoothing, --bboxes JSON, detector error, crop geometry."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pymaf.demo.boxes import DetectorUnavailable, JsonBoxes, find_detector_weights
from pymaf.demo.crops import make_crops, square_boxes, square_crop
from pymaf.demo.smoothing import OneEuroFilter, RotationFilter, TranslationFilter, project_to_so3
from pymaf.demo.tracking import IoUTracker, box_iou


def test_tracker_keeps_ids_of_crossing_boxes():
    """Two people walk towards each other, overlap completely at frame 5, and walk on: ids never swap."""
    tracker = IoUTracker()
    first = None
    for t in range(11):
        a = [10 + 8 * t, 20, 40 + 8 * t, 80]          # moving right
        b = [90 - 8 * t, 22, 120 - 8 * t, 82]         # moving left
        order = [a, b] if t % 2 == 0 else [b, a]       # detector order changes from frame to frame
        ids = tracker.update(np.array(order, np.float32))
        ids_ab = ids if t % 2 == 0 else ids[::-1]
        if first is None:
            first = tuple(ids_ab)
        assert tuple(ids_ab) == first, f"frame {t}: ids {ids_ab} != {first}"
    assert tracker.next_id == 2


def test_tracker_new_and_lost_tracks():
    tr = IoUTracker(max_age=1)
    assert tr.update(np.array([[0, 0, 10, 10]])).tolist() == [0]
    assert tr.update(np.zeros((0, 4))).tolist() == []
    assert tr.update(np.array([[0, 0, 10, 10], [50, 50, 60, 60]])).tolist() == [0, 1]
    tr.update(np.zeros((0, 4)))
    tr.update(np.zeros((0, 4)))  # track 0 and 1 exceed max_age
    assert tr.update(np.array([[0, 0, 10, 10]])).tolist() == [2]  # ids are never reused
    assert box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2]]))[0, 0] == pytest.approx(1 / 3)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations a [...,3,3] and b [...,3,3]."""
    return np.linalg.norm(Rotation.from_matrix((a @ np.swapaxes(b, -1, -2)).reshape(-1, 3, 3)).as_rotvec(), axis=-1)


def _lag(cover: np.ndarray) -> int:
    """Lag of a step response: frames after the step frame until >= 90% of the step is covered."""
    return int(np.flatnonzero(cover >= 0.9)[0])


def test_rotation_smoothing_reduces_jitter_and_follows_a_step():
    rng = np.random.default_rng(0)
    base = Rotation.from_rotvec([0.3, -0.2, 0.1]).as_matrix()
    noisy = Rotation.from_rotvec(rng.normal(0, 0.03, (90, 2, 3))).as_matrix() @ base      # [T,J=2,3,3]
    f = RotationFilter(fps=30)
    out = np.stack([f(r) for r in noisy])
    assert np.allclose(out @ np.swapaxes(out, -1, -2), np.eye(3), atol=1e-6)          # still rotations
    assert np.allclose(np.linalg.det(out), 1.0, atol=1e-6)
    jitter = lambda s: _angle(s[1:], s[:-1]).mean()  # noqa: E731  frame-to-frame angular change
    assert jitter(out) < 0.35 * jitter(noisy)
    assert _angle(out[30:], base[None, None]).mean() < _angle(noisy[30:], base[None, None]).mean()

    target = Rotation.from_rotvec([0.8, 0.0, 0.0]).as_matrix()
    seq = [np.eye(3)[None]] * 10 + [target[None]] * 10
    f = RotationFilter(fps=30)
    out = np.stack([f(r)[0] for r in seq])
    cover = 1 - _angle(out[10:], target[None]) / 0.8
    assert _lag(cover) <= 1, cover
    assert cover[-1] > 0.99


def test_translation_smoothing_and_step():
    rng = np.random.default_rng(1)
    t0 = np.array([0.3, -0.1, 20.0])
    noisy = t0 * (1 + rng.normal(0, 0.01, (90, 3)))
    f = TranslationFilter(fps=30)
    out = np.stack([f(t) for t in noisy])
    assert np.abs(np.diff(out, axis=0)).mean(0)[2] < 0.4 * np.abs(np.diff(noisy, axis=0)).mean(0)[2]
    t1 = np.array([1.3, -0.1, 15.0])                 # the person jumps 1 m sideways and 5 m closer
    f = TranslationFilter(fps=30)
    out = np.stack([f(t) for t in [t0] * 10 + [t1] * 10])
    cover = 1 - np.linalg.norm(out[10:] - t1, axis=1) / np.linalg.norm(t1 - t0)
    assert _lag(cover) <= 1, cover


def test_one_euro_constant_is_fixed_point_and_so3_projection():
    f = OneEuroFilter(fps=25)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    for _ in range(5):
        assert np.allclose(f(x), x)
    R = Rotation.from_rotvec([0.4, 0.5, -0.2]).as_matrix()
    assert np.allclose(project_to_so3(R + 1e-3 * np.eye(3)), R, atol=2e-3)
    with pytest.raises(ValueError, match="fps"):
        OneEuroFilter(fps=0)


def test_json_boxes_both_forms(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"a.jpg": [[1, 2, 11, 22], [0, 0, 5, 5, 0.4]], "000003": [[0, 0, 4, 4]]}))
    jb = JsonBoxes(p)
    assert jb(0, "a.jpg", "a").tolist() == [[1, 2, 11, 22, 1], [0, 0, 5, 5, pytest.approx(0.4)]]
    assert jb(3, "000003", "000003").shape == (1, 5)
    assert jb(1, "b.jpg", "b").shape == (0, 5)
    p.write_text(json.dumps([[[0, 0, 4, 4]], []]))
    jb = JsonBoxes(p)
    assert jb(0, "x", "x").shape == (1, 5) and jb(1, "y", "y").shape == (0, 5)
    p.write_text(json.dumps({"a": [[5, 5, 1, 1]]}))
    with pytest.raises(ValueError, match="x2 > x1"):
        JsonBoxes(p)


def _offline(monkeypatch) -> list[str]:
    """No network: torch hub's download raises as urllib does offline; returns the URLs that were tried."""
    import urllib.error
    tried: list[str] = []

    def no_network(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tried


def test_offline_detector_error_says_what_to_do(tmp_path, monkeypatch):
    """Empty torch hub cache and no network: DetectorUnavailable (an InputError) naming the file, the URL, the
    cache folder and the alternatives."""
    from pymaf.demo.boxes import PersonDetector
    from pymaf.errors import InputError
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    tried = _offline(monkeypatch)
    with pytest.raises(DetectorUnavailable) as e:
        PersonDetector("fasterrcnn")
    url = "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
    assert tried == [url]  # the weights API did try to download, once
    assert isinstance(e.value, InputError)
    msg = str(e.value)
    for needle in (str(tmp_path / "torch" / "hub" / "checkpoints"), "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
                   url, "--detector-weights", "--bboxes", "--full-image", "name resolution"):
        assert needle in msg, needle
    assert find_detector_weights("fasterrcnn") is None  # no file given: the weights API's business


def test_detector_weights_in_the_torch_hub_cache_are_used_without_download(tmp_path, monkeypatch):
    """A state dict placed in <TORCH_HOME>/hub/checkpoints/ under the weights API's file name is loaded as is
    (random weights of the smallest detector here); the network is never touched."""
    import torchvision.models.detection as det
    from pymaf.demo.boxes import PersonDetector, detector_cache_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    tried = _offline(monkeypatch)
    torch.manual_seed(1)
    state = det.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None).state_dict()
    cached = tmp_path / "torch/hub/checkpoints/fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"
    assert detector_cache_file("fasterrcnn_mobilenet") == cached
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    d = PersonDetector("fasterrcnn_mobilenet", score_threshold=0.0, min_size=0.0)
    assert tried == []
    got = d.model.state_dict()
    # (pretrained builds use FrozenBatchNorm2d, which has no num_batches_tracked: every other tensor is the file's)
    assert set(got) <= set(state) and set(state) - set(got) == {k for k in state if k.endswith("num_batches_tracked")}
    assert all(torch.equal(got[k], state[k]) for k in got)
    assert len(d([np.zeros((48, 64, 3), np.uint8)])) == 1
    cached.write_bytes(b"truncated")  # a broken cached file: say which file to delete
    with pytest.raises(DetectorUnavailable, match="delete the file"):
        PersonDetector("fasterrcnn_mobilenet")
    assert tried == []


def test_crop_geometry_maps_box_to_crop():
    """A square box maps exactly onto the crop: a marker at a known image point lands where the affine says."""
    img = np.zeros((60, 80, 3), np.uint8)
    img[30:32, 50:52] = (255, 0, 0)                   # red 2x2 block, centre (51, 31) in continuous coords
    c, s = square_boxes(np.array([[40, 20, 60, 40]]), scale=1.0)
    crop = square_crop(img, c[0], s[0], res=20)       # scale 1: one image pixel = one crop pixel
    ys, xs = np.nonzero(crop[..., 0] > 128)
    assert (xs.mean() + 0.5, ys.mean() + 0.5) == pytest.approx((51 - 40, 31 - 20), abs=1e-6)
    assert crop[ys[0], xs[0]].tolist() == [255, 0, 0]  # channel order kept (RGB in, RGB out)
    x = make_crops([img], c, s, res=20)
    assert x.shape == (1, 3, 20, 20) and x.dtype == torch.float32
    assert x[0, :, 0, 0].tolist() == pytest.approx([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], abs=1e-5)
    assert math.isclose(square_boxes(np.array([[0, 0, 10, 30]]), 1.2)[1][0], 36.0)


def test_person_detector_runs_offline_from_a_local_file(tmp_path):
    """The detector is built from a local checkpoint (random weights here, never downloaded)."""
    import torchvision.models.detection as det
    from pymaf.demo.boxes import PersonDetector
    torch.manual_seed(0)
    path = tmp_path / "det.pth"
    torch.save(det.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None).state_dict(), path)
    d = PersonDetector("fasterrcnn_mobilenet", path, score_threshold=0.0, min_size=0.0)
    out = d([np.zeros((48, 64, 3), np.uint8), np.full((40, 40, 3), 200, np.uint8)])
    assert len(out) == 2
    for b in out:
        assert b.ndim == 2 and b.shape[1] == 5 and b.dtype == np.float32
        assert (np.diff(b[:, 4]) <= 0).all()  # sorted by score
    with pytest.raises(DetectorUnavailable, match="does not exist"):
        PersonDetector("fasterrcnn_mobilenet", tmp_path / "nope.pth")


def test_render_people_renders_on_the_given_device(monkeypatch):
    """demo --device reaches the overlay and side-view renderers (they render on the CPU unless told)."""
    import pymaf.render.overlay as overlay
    from pymaf.demo.run import render_people
    seen = []
    monkeypatch.setattr(overlay, "render_overlay", lambda *a, **k: seen.append(("overlay", k.get("device"))))
    monkeypatch.setattr(overlay, "render_side_view", lambda *a, **k: seen.append(("side", k.get("device"))))
    people = (np.zeros((1, 3, 3)), np.zeros((1, 3)), [0])
    image = np.zeros((8, 8, 3), np.uint8)
    render_people(image, people, np.array([[0, 1, 2]]), 100.0, device="cuda:1")
    render_people(image, people, np.array([[0, 1, 2]]), 100.0, side=True, device="cuda:1")
    assert seen == [("overlay", "cuda:1"), ("side", "cuda:1")]


def test_regress_pads_the_last_batch_for_a_compiled_network():
    """pad=True (runtime.compile): the network sees only full batches (no recompilation) and the outputs are
    those of the unpadded call, padding rows dropped."""
    from pymaf.demo.run import _regress

    class PerSample(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.shapes = []

        def forward(self, x):
            self.shapes.append(len(x))
            m = x.mean((1, 2, 3))
            return {"smpl_out": [{"rotmat": m[:, None, None, None].expand(-1, 24, 3, 3), "theta": m[:, None] * 2,
                                  "pred_cam": m[:, None].expand(-1, 3), "verts": m[:, None, None] + x[:, :1, 0, :3],
                                  "kp_3d": x[:, 0, :49, :3]}]}

    crops = torch.randn(7, 3, 56, 56)
    net = PerSample()
    plain = _regress(net, crops, 3, "cpu")
    assert net.shapes == [3, 3, 1]
    net.shapes.clear()
    padded = _regress(net, crops, 3, "cpu", pad=True)
    assert net.shapes == [3, 3, 3]
    for k in plain:
        assert padded[k].shape[0] == 7 and torch.equal(plain[k], padded[k]), k
