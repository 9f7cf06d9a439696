"""End-to-end demo runs on tiny synthetic inputs of the built-in body: a still image (--full-image), a
generated 4-frame video with two people (--bboxes, tracking, smoothing, every output), and the overlay check
(an oracle model returning the known parameters: the rendered overlay covers the person's pixels)."""
from __future__ import annotations

import json
import math
import pickle

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from pymaf.demo.run import default_focal_length, demo_config, run_demo
from pymaf.geometry import axis_angle_to_rotmat, crop_cam_to_full_translation, rotmat_to_axis_angle
from pymaf.render.overlay import render_overlay

BG = (40, 120, 60)      # background of the synthetic inputs (RGB)
GREY = (0.8, 0.8, 0.8)  # colour of the synthetic person


@pytest.fixture(scope="module")
def smpl(body_files):
    from pymaf.body.smpl import build_smpl
    return build_smpl(body_files, "neutral").eval()


@pytest.fixture(scope="module")
def random_model(body_files):
    """A randomly initialised PyMAF (the pipeline is tested, not the accuracy)."""
    from pymaf import load_model
    torch.manual_seed(0)
    return load_model(checkpoint=None, data_root=str(body_files.root), device="cpu")


class OracleModel(nn.Module):
    """Returns the same known SMPL parameters and crop camera for every crop (model output contract)."""

    def __init__(self, smpl, rotmat: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor) -> None:
        super().__init__()
        self.smpl, self.rotmat, self.betas, self.cam = smpl, rotmat, betas, cam

    def forward(self, images: torch.Tensor) -> dict:
        b = images.shape[0]
        R, betas, cam = self.rotmat.expand(b, 24, 3, 3), self.betas.expand(b, 10), self.cam.expand(b, 3)
        body = self.smpl(betas=betas, body_pose=R[:, 1:], global_orient=R[:, :1])
        theta = torch.cat([cam, betas, rotmat_to_axis_angle(R).reshape(b, 72)], 1)
        return {"smpl_out": [{"verts": body.vertices, "kp_3d": body.joints, "rotmat": R, "theta": theta,
                              "pred_cam": cam}]}


def _upright_body(smpl, seed: int = 0):
    """A mildly posed upright body: rotmat [24,3,3], betas [10], vertices [6890,3]."""
    g = torch.Generator().manual_seed(seed)
    aa = 0.15 * torch.randn(24, 3, generator=g)
    aa[0] = torch.tensor([math.pi, 0.0, 0.0])           # 180 deg about x: y-up model upright in y-down camera
    R = axis_angle_to_rotmat(aa)
    betas = 0.5 * torch.randn(10, generator=g)
    with torch.no_grad():
        v = smpl(betas=betas[None], body_pose=R[None, 1:], global_orient=R[None, :1]).vertices[0]
    return R, betas, v


def _render_input(smpl_verts, faces, translation, h, w, focal):
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BG
    out = render_overlay(img, smpl_verts[None], faces, translation[None], focal, colors=[GREY])
    return out, np.any(out != img, axis=-1)


def _opts(tmp_path, inp, *extra):
    return demo_config(["--input", str(inp), "--output", str(tmp_path / "out"), "--batch-size", "4", *extra])


def test_overlay_covers_the_person(tmp_path, smpl):
    """Known mesh + known crop camera -> synthetic image; the demo (oracle regressor, --full-image) must
    overlay the mesh on the person's pixels: IoU(overlay footprint, silhouette) > 0.9."""
    h, w = 72, 96
    R, betas, verts = _upright_body(smpl)
    cam = torch.tensor([[0.75, 0.08, 0.05]], dtype=torch.float64)   # crop camera for the full-image box
    focal = default_focal_length(h, w)
    side = float(max(h, w))
    t = crop_cam_to_full_translation(cam, torch.tensor([[w / 2, h / 2]], dtype=torch.float64),
                                     torch.tensor([side], dtype=torch.float64),
                                     torch.tensor([[h, w]], dtype=torch.float64), focal)[0].float()
    image, sil = _render_input(verts, smpl.faces, t, h, w, focal)
    assert 100 < sil.sum() < 0.6 * h * w                           # a person, not the whole frame
    cv2.imwrite(str(tmp_path / "person.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    model = OracleModel(smpl, R[None], betas[None], cam.float())
    run_demo(_opts(tmp_path, tmp_path / "person.png", "--full-image"), model=model)
    overlay = cv2.cvtColor(cv2.imread(str(tmp_path / "out/overlays/person.png")), cv2.COLOR_BGR2RGB)
    footprint = np.any(np.abs(overlay.astype(int) - image.astype(int)) > 3, axis=-1)
    iou = (footprint & sil).sum() / (footprint | sil).sum()
    assert iou > 0.9, iou
    # colours are right (no BGR swap, §10.21): the mesh is purple-ish (blue > red > green), background untouched
    px = overlay[footprint].astype(float).mean(0)
    assert px[2] > px[0] > px[1]
    assert (overlay[~footprint & ~sil] == BG).all()
    rec = np.load(tmp_path / "out/params/person_p000.npz")
    assert np.allclose(rec["translation"], t.numpy(), atol=1e-3)
    assert np.allclose(rec["focal_length"], focal) and np.allclose(rec["principal_point"], [w / 2, h / 2])


def test_demo_image_random_model(tmp_path, random_model):
    img = np.full((64, 48, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), img)
    s = run_demo(_opts(tmp_path, tmp_path / "a.jpg", "--full-image", "--side-view", "--save-obj"), model=random_model)
    out = tmp_path / "out"
    for p in ("overlays/a.png", "overlays/a_side.png", "params/a_p000.npz", "meshes/a_p000.obj", "summary.json"):
        assert (out / p).is_file(), p
    rec = np.load(out / "params/a_p000.npz")
    shapes = {"pose": (72,), "rotmat": (24, 3, 3), "betas": (10,), "translation": (3,), "K": (3, 3),
              "joints3d": (49, 3), "vertices": (6890, 3), "joints2d": (49, 2), "orig_cam": (4,), "pred_cam": (3,)}
    for k, shape in shapes.items():
        assert rec[k].shape == shape, k
        assert np.isfinite(rec[k]).all(), k
    # the axis-angle pose and the rotation matrices describe the same rotations
    assert torch.allclose(axis_angle_to_rotmat(torch.from_numpy(rec["pose"]).reshape(24, 3).double()),
                          torch.from_numpy(rec["rotmat"]).double(), atol=1e-4)
    assert s["frames"] == 1 and s["people"] == 1 and s["regression_fps"] > 0
    assert 0 < s["end_to_end_fps"] < s["rendering_fps"] and s["seconds"]["total"] > s["seconds"]["rendering"]
    assert (s["runtime"]["amp"], s["runtime"]["fuse"]) == ("bf16", True)  # the demo's defaults, recorded


def test_demo_video_two_people(tmp_path, random_model, smpl):
    """4-frame mp4 with two people (boxes from --bboxes), tracked, smoothed, every output written."""
    h, w, n = 64, 96, 4
    _, _, verts = _upright_body(smpl)
    focal = default_focal_length(h, w)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    boxes = {}
    for i in range(n):
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = BG
        for x in (-0.6 + 0.1 * i, 0.6 - 0.1 * i):
            frame = render_overlay(frame, verts[None], smpl.faces, torch.tensor([[x, 0.0, 8.0 * focal / 500]]),
                                   focal, colors=[GREY])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        boxes[str(i)] = [[10 + 4 * i, 5, 40 + 4 * i, 60, 0.9], [56 - 4 * i, 5, 86 - 4 * i, 60]]
    writer.release()
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    s = run_demo(_opts(tmp_path, tmp_path / "clip.mp4", "--bboxes", str(tmp_path / "boxes.json"), "--smooth",
                       "--side-view", "--save-obj", "--official-pkl", "--chunk", "3"), model=random_model)
    out = tmp_path / "out"
    assert s["kind"] == "video" and s["frames"] == n and s["people"] == 2 * n and s["smoothed"]
    for name in ("clip_overlay.mp4", "clip_side.mp4"):
        cap = cv2.VideoCapture(str(out / name))
        frames = 0
        while cap.read()[0]:
            frames += 1
        cap.release()
        assert frames == n, name
    npz = sorted(p.name for p in (out / "params").glob("*.npz"))
    assert npz == [f"{i:06d}_p{k:03d}.npz" for i in range(n) for k in range(2)]
    assert len(list((out / "meshes").glob("*.obj"))) == 2 * n
    for i in range(n):  # tracking: the left person keeps id 0 (its box centre moves right)
        rec = np.load(out / "params" / f"{i:06d}_p000.npz")
        assert rec["bbox"][0] == 10 + 4 * i and bool(rec["smoothed"]) and int(rec["frame_index"]) == i
        assert np.allclose(np.linalg.det(rec["rotmat"]), 1, atol=1e-4)
    with open(out / "output.pkl", "rb") as f:
        res = pickle.load(f)
    assert sorted(res) == [0, 1]
    assert res[0]["verts"].shape == (n, 6890, 3) and res[0]["orig_cam"].shape == (n, 4)
    assert res[0]["pose"].shape == (n, 72) and res[0]["frame_ids"].tolist() == list(range(n))


def test_background_writer_keeps_the_order_and_raises_a_failed_write(tmp_path):
    """Frames are encoded in a background thread: a video keeps their order; a write that fails is raised in
    the caller's thread (by the next write or after close), naming the file."""
    from pymaf.demo.run import _Writers
    from pymaf.errors import WriteError

    w = _Writers(tmp_path, "clip", 10.0, depth=2)
    levels = [20, 60, 100, 140, 180, 220]
    for i, v in enumerate(levels):
        w.write("overlay", f"{i:06d}", np.full((32, 48, 3), v, np.uint8))
    w.close()
    w.raise_error()
    cap, seen = cv2.VideoCapture(str(tmp_path / "clip_overlay.mp4")), []
    while (ok := cap.read())[0]:
        seen.append(float(ok[1].mean()))
    cap.release()
    assert np.allclose(seen, levels, atol=6)  # mp4v (YUV) shifts the grey levels a little
    (tmp_path / "overlays").write_text("a file where the PNG folder goes")
    w = _Writers(tmp_path, None, 10.0)
    w.write("overlay", "a", np.zeros((8, 8, 3), np.uint8))
    w.close()
    with pytest.raises((WriteError, OSError), match="overlays"):
        w.raise_error()
