"""The built-in synthetic dataset: the body model rendered in varied poses onto procedural backgrounds.

Writes ``<data_root>/synthetic/images/{train,val}/NNNNNN.jpg`` and ``synthetic_{train,val}.npz`` in the SPIN
format (spec §4.1), so the same ``BaseDataset`` reads it. Uses the real SMPL when ``<data_root>/smpl/`` holds it,
else the built-in body model (``pymaf.body.files.resolve_body_files``). Per sample:

- pose: a mode per arm, leg and the spine (arm down/side/up/forward/bent, leg straight/forward/back/raised/side,
  spine upright/bent) with jitter; the other joints perturbed around a relaxed pose within ``JOINT_LIMITS``; global
  orient = R_z(roll) R_x(180 deg) R_y(yaw) R_x(pitch): upright in the y-down camera, any heading (mostly towards
  the camera), small pitch, an in-plane roll;
- shape: betas ~ N(0, 1) clipped to +-2.5; clothing colours (``Clothing``: skin, hair, shirt with a lighter front,
  trousers or shorts, shoes; random per person);
- camera: full-image pinhole, focal length ``focal_range`` x max(H, W), principal point at the image centre;
  the person's distance gives a height of ``height_range`` x H and its box is placed at a random position;
- background: one random colour + pixel noise (``background='textured'``: a two-colour gradient + low-frequency
  colour noise + up to ``background_shapes`` random rectangles/ellipses + pixel noise).

Annotations (SPIN conventions: pixel (i, j) centred at integer coordinates (x=j, y=i)):
``part`` = the 24 J24 joints projected (``f X/Z + cam_center``), visibility 1 inside the image;
``S`` = J24 in metres in the camera frame, centred on J24 14 "Pelvis (MPII)", conf 1; ``pose`` (72, camera frame)
and ``shape`` (10), ``has_smpl`` = 1; ``center``/``scale`` = box of the projected joints x 1.2 / 200;
``gender`` = 'n' (the neutral model is used; the loader maps 'n' to -1); camera: ``cam_focal`` (N,),
``cam_center`` (N, 2), ``cam_trans`` (N, 3) = translation of the posed SMPL model frame (no translation).

Deterministic: sample i of a split draws from ``default_rng([seed, split, i])`` and the body model runs in fixed
chunks single-threaded, so the same seed gives identical npz and JPEG bytes whatever the number of workers.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pymaf.body.joints import SMPL_JOINTS_FLIP_PERM
from pymaf.data.images import configure_worker_threads
from pymaf.data.spin_npz import keypoint_box, save_spin_npz
from pymaf.paths import atomic_write

log = logging.getLogger("pymaf")

SYNTHETIC_VERSION = 3  # bump when the renders change: a dataset of another version is regenerated
SPLITS = {"train": 0, "val": 1}
CHUNK = 25  # samples per body-model call; fixed so results do not depend on the worker count
PELVIS_J24 = 14

# Relaxed pose and limits of the LEFT and midline joints, as extrinsic x, y, z Euler angles (radians):
# joint -> (centre, low, high). SMPL frame: y up, facing +z, the person's left at +x. Right joints mirror
# their left twin (y and z negated). Knee flexion is +x, hip flexion -x, spine forward bend +x, left arm down
# is -z at the shoulder, left elbow flexion is -y.
_LEFT_LIMITS: dict[int, tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]] = {
    1: ((-0.15, 0.0, 0.06), (-1.3, -0.5, -0.15), (0.35, 0.5, 0.6)),     # hip
    3: ((0.05, 0.0, 0.0), (-0.15, -0.25, -0.15), (0.35, 0.25, 0.15)),   # spine1
    4: ((0.25, 0.0, 0.0), (0.0, -0.1, -0.05), (1.7, 0.1, 0.05)),        # knee
    6: ((0.05, 0.0, 0.0), (-0.1, -0.2, -0.12), (0.25, 0.2, 0.12)),      # spine2
    7: ((0.0, 0.0, 0.0), (-0.4, -0.25, -0.2), (0.4, 0.25, 0.2)),        # ankle
    9: ((0.03, 0.0, 0.0), (-0.1, -0.2, -0.1), (0.25, 0.2, 0.1)),        # spine3
    10: ((0.0, 0.0, 0.0), (-0.15, -0.1, -0.1), (0.15, 0.1, 0.1)),       # foot
    12: ((0.0, 0.0, 0.0), (-0.3, -0.4, -0.2), (0.4, 0.4, 0.2)),         # neck
    13: ((0.0, 0.0, 0.0), (-0.15, -0.2, -0.2), (0.15, 0.2, 0.2)),       # collar
    15: ((0.0, 0.0, 0.0), (-0.3, -0.5, -0.2), (0.3, 0.5, 0.2)),         # head
    16: ((0.0, -0.2, -1.1), (-0.6, -1.2, -1.45), (0.6, 0.6, 0.3)),      # shoulder
    18: ((0.0, -0.45, 0.0), (-0.3, -2.1, -0.15), (0.3, 0.0, 0.15)),     # elbow
    20: ((0.0, 0.0, 0.0), (-0.5, -0.4, -0.5), (0.5, 0.4, 0.5)),         # wrist
    22: ((0.0, 0.0, 0.0), (-0.2, -0.2, -0.2), (0.2, 0.2, 0.2)),         # hand
}


def _joint_limits() -> np.ndarray:
    """[24, 3, 3]: (centre, low, high) x (x, y, z) per SMPL joint; the root row is unused."""
    out = np.zeros((24, 3, 3))
    for j, rows in _LEFT_LIMITS.items():
        out[j] = rows
        twin = SMPL_JOINTS_FLIP_PERM[j]
        if twin != j:  # mirror: negate y and z (and swap low/high for them)
            c, lo, hi = (np.array(r) for r in rows)
            sign = np.array([1.0, -1.0, -1.0])
            out[twin] = (c * sign, np.where(sign > 0, lo, -hi), np.where(sign > 0, hi, -lo))
    return out


JOINT_LIMITS = _joint_limits()


@dataclass(frozen=True)
class SyntheticConfig:
    image_size: tuple[int, int] = (256, 256)     # (H, W)
    focal_range: tuple[float, float] = (0.9, 1.8)  # focal length / max(H, W)
    height_range: tuple[float, float] = (0.55, 0.9)  # person height in the image / H
    yaw_std_deg: float = 40.0     # heading around the vertical axis (0 = facing the camera)
    pitch_std_deg: float = 8.0
    roll_std_deg: float = 12.0    # in-plane rotation
    beta_clip: float = 2.5
    # Clutter: on textured backgrounds (gradients, colour noise, shapes) a from-scratch backbone learns far
    # slower: a few-minute CPU run then learns little more than the mean of the training poses. Hence plain.
    background: str = "plain"     # 'plain' or 'textured'
    background_shapes: int = 0    # up to this many random shapes on a textured background
    jpeg_quality: int = 92


# Limb and torso "modes" (left side; the right side mirrors them), as Euler targets of the joints they set.
# Poses of real people cluster (arms down, raised, forward; a step; a raised knee; a bend), and a network learns
# such coarse, silhouette-level differences quickly, unlike independent noise on every joint.
_ARM_MODES = {  # (shoulder 16, elbow 18)
    "down": ((0.0, -0.2, -1.2), (0.0, -0.3, 0.0)),
    "side": ((0.0, 0.0, -0.15), (0.0, -0.2, 0.0)),
    "up": ((0.0, 0.0, 1.1), (0.0, -0.3, 0.0)),
    "forward": ((0.0, -1.3, -0.2), (0.0, -0.2, 0.0)),
    "bent": ((0.0, -0.4, -1.1), (0.0, -2.0, 0.0))}
_LEG_MODES = {  # (hip 1, knee 4)
    "straight": ((-0.05, 0.0, 0.06), (0.1, 0.0, 0.0)),
    "forward": ((-0.6, 0.0, 0.06), (0.3, 0.0, 0.0)),
    "back": ((0.35, 0.0, 0.06), (0.7, 0.0, 0.0)),
    "raised": ((-1.3, 0.0, 0.1), (1.6, 0.0, 0.0)),
    "side": ((0.0, 0.0, 0.5), (0.1, 0.0, 0.0))}
_SPINE_MODES = {"upright": 0.03, "bent": 0.3}  # forward bend (x) of spine1, spine2 and spine3 each
MODE_JITTER = 0.2  # radians, std of the per-angle jitter around a mode


def _mirror(euler: np.ndarray) -> np.ndarray:
    return euler * np.array([1.0, -1.0, -1.0])


def sample_body_pose(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 69] axis-angle body poses (joints 1..23): a mode per arm, leg and the spine (``_ARM_MODES`` ...) with
    jitter, the other joints around the relaxed pose within ``JOINT_LIMITS``."""
    c, lo, hi = JOINT_LIMITS[:, 0], JOINT_LIMITS[:, 1], JOINT_LIMITS[:, 2]
    euler = np.clip(c + rng.standard_normal((n, 24, 3)) * (hi - lo) / 8.0, lo, hi)
    arms, legs = list(_ARM_MODES.values()), list(_LEG_MODES.values())
    for k in range(n):
        for (shoulder, elbow), mirror in ((16, 18), False), ((17, 19), True):
            mode = arms[int(rng.integers(len(arms)))]
            for j, target in zip((shoulder, elbow), mode):
                euler[k, j] = _mirror(np.array(target)) if mirror else target
        choices = legs
        for (hip, knee), mirror in ((1, 4), False), ((2, 5), True):
            mode = choices[int(rng.integers(len(choices)))]
            if mode is _LEG_MODES["raised"]:  # at most one raised knee
                choices = [m for m in legs if m is not mode]
            for j, target in zip((hip, knee), mode):
                euler[k, j] = _mirror(np.array(target)) if mirror else target
        bend = list(_SPINE_MODES.values())[int(rng.integers(len(_SPINE_MODES)))]
        euler[k, [3, 6, 9], 0] = bend
        for j in (16, 17, 18, 19, 1, 2, 4, 5):
            euler[k, j] += rng.standard_normal(3) * MODE_JITTER
        euler[k, [4, 5], 0] = np.clip(euler[k, [4, 5], 0], 0.0, 2.2)  # knees do not bend backwards
        euler[k, 18, 1] = np.clip(euler[k, 18, 1], -2.3, 0.0)         # nor elbows (left flexion is -y)
        euler[k, 19, 1] = np.clip(euler[k, 19, 1], 0.0, 2.3)
    return Rotation.from_euler("xyz", euler[:, 1:].reshape(-1, 3)).as_rotvec().reshape(n, 69)


def sample_global_orient(rng: np.random.Generator, n: int, cfg: SyntheticConfig) -> np.ndarray:
    """[n, 3] camera-frame global orient R_z(roll) R_x(180) R_y(yaw) R_x(pitch) as axis-angle."""
    d = np.pi / 180.0
    yaw = np.clip(rng.standard_normal(n) * cfg.yaw_std_deg, -180, 180) * d
    pitch = np.clip(rng.standard_normal(n) * cfg.pitch_std_deg, -25, 25) * d
    roll = np.clip(rng.standard_normal(n) * cfg.roll_std_deg, -40, 40) * d
    r = (Rotation.from_euler("z", roll[:, None]) * Rotation.from_euler("x", np.full((n, 1), np.pi))
         * Rotation.from_euler("y", yaw[:, None]) * Rotation.from_euler("x", pitch[:, None]))
    return r.as_rotvec()


def procedural_background(rng: np.random.Generator, h: int, w: int, style: str = "plain",
                          max_shapes: int = 0) -> np.ndarray:
    """uint8 [h, w, 3] RGB. ``plain``: one random colour + pixel noise. ``textured``: a two-colour gradient +
    low-frequency colour noise + up to ``max_shapes`` random rectangles or ellipses + pixel noise."""
    if style == "plain":
        img = np.broadcast_to(rng.uniform(25, 230, 3).astype(np.float32), (h, w, 3))
        noise = rng.standard_normal((h, w, 3)).astype(np.float32) * rng.uniform(0, 5)
        return np.clip(img + noise, 0, 255).astype(np.uint8)
    if style != "textured":
        raise ValueError(f"synthetic background style must be 'plain' or 'textured', got {style!r}")
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    t = (xx * np.cos(a) + yy * np.sin(a)) / max(h, w)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    low = rng.standard_normal((h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)
    img += cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(0, 35)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, max_shapes + 1))):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        sx, sy = int(rng.integers(w // 20, w // 3)), int(rng.integers(h // 20, h // 3))
        if rng.uniform() < 0.5:
            cv2.rectangle(img, (cx - sx, cy - sy), (cx + sx, cy + sy), color, -1)
        else:
            cv2.ellipse(img, (cx, cy), (sx, sy), float(rng.uniform(0, 180)), 0, 360, color, -1)
    noise = rng.standard_normal((h, w, 3)).astype(np.float32) * rng.uniform(0, 8)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """One OpenCV HSV colour (h in 0..180, s and v in 0..255) -> RGB float in 0..1."""
    return cv2.cvtColor(np.array([[[h, s, v]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


# Garment regions by the SMPL joint that skins a vertex most (SMPL joint order, spec §2.1).
_SKIN, _SHIRT, _SLEEVE, _TROUSERS, _SHIN, _SHOES = ((12, 15, 20, 21, 22, 23), (3, 6, 9, 13, 14, 16, 17), (18, 19),
                                                    (0, 1, 2), (4, 5, 7, 8), (10, 11))


class Clothing:
    """Per-vertex colours of a simply dressed person: skin, hair, a shirt with a lighter front, trousers or shorts,
    shoes. Hair at the back of the head and the shirt front make front and back distinguishable, as on a real
    person; without them a single-colour body seen from behind looks like one seen from the front."""

    def __init__(self, lbs_weights: np.ndarray, template: np.ndarray):
        part = lbs_weights.argmax(1)
        self.masks = {name: np.isin(part, ids) for name, ids in
                      (("skin", _SKIN), ("shirt", _SHIRT), ("sleeve", _SLEEVE), ("trousers", _TROUSERS),
                       ("shin", _SHIN), ("shoes", _SHOES))}
        head = part == 15
        hc = template[head].mean(0)
        self.masks["hair"] = head & ((template[:, 2] < hc[2] + 0.02) | (template[:, 1] > hc[1] + 0.07))
        torso_z = template[self.masks["shirt"]][:, 2].mean()
        self.masks["front"] = self.masks["shirt"] & (template[:, 2] > torso_z)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """[V, 3] RGB in 0..1 for one person."""
        m = self.masks
        skin = _hsv(rng.uniform(5, 20), rng.uniform(60, 150), rng.uniform(90, 240))
        shirt = _hsv(rng.uniform(0, 180), rng.uniform(30, 230), rng.uniform(60, 250))
        trousers = _hsv(rng.uniform(0, 180), rng.uniform(20, 200), rng.uniform(40, 200))
        out = np.empty((len(m["skin"]), 3), np.float32)
        out[m["skin"]] = skin
        out[m["shirt"]] = shirt
        out[m["front"]] = 0.55 * shirt + 0.45 * _hsv(rng.uniform(0, 180), rng.uniform(0, 255), 255)
        out[m["sleeve"]] = shirt if rng.uniform() < 0.5 else skin
        out[m["trousers"]] = trousers
        out[m["shin"]] = trousers if rng.uniform() < 0.7 else skin
        out[m["shoes"]] = _hsv(rng.uniform(0, 180), rng.uniform(0, 120), rng.uniform(20, 120))
        out[m["hair"]] = _hsv(rng.uniform(5, 25), rng.uniform(40, 200), rng.uniform(15, 110))
        return out


class SyntheticRenderer:
    """Renders samples of one split; holds the body model (built once by the caller, inherited by forked workers)."""

    def __init__(self, data_root: Path | str | None, cfg: SyntheticConfig = SyntheticConfig()):
        from pymaf.body.files import resolve_body_files
        from pymaf.body.smpl import build_smpl
        self.files = resolve_body_files(data_root, announce=False)  # named in generate_synthetic_dataset's log
        self.smpl = build_smpl(self.files, "neutral").eval()
        self.clothing = Clothing(self.smpl.lbs_weights.numpy(), self.smpl.v_template.numpy())
        self.cfg = cfg

    @torch.no_grad()
    def render_chunk(self, seed: int, split: str, indices: list[int]) -> list[dict[str, Any]]:
        """One dict per index: image (uint8 RGB), mask (bool, person pixels), background, and the annotations."""
        from pymaf.render.overlay import render_overlay
        cfg, (h, w) = self.cfg, self.cfg.image_size
        rngs = [np.random.default_rng([seed, SPLITS[split], i]) for i in indices]
        body = np.concatenate([sample_body_pose(r, 1) for r in rngs])
        orient = np.concatenate([sample_global_orient(r, 1, cfg) for r in rngs])
        betas = np.stack([np.clip(r.standard_normal(10), -cfg.beta_clip, cfg.beta_clip) for r in rngs])
        out = self.smpl(betas=torch.as_tensor(betas, dtype=torch.float32),
                        body_pose=torch.as_tensor(body, dtype=torch.float32),
                        global_orient=torch.as_tensor(orient, dtype=torch.float32), pose2rot=True)
        faces = self.smpl.faces
        pp = np.array([w / 2.0, h / 2.0])  # renderer convention: pixel centres at +0.5
        samples = []
        for k, rng in enumerate(rngs):
            verts, joints = out.vertices[k].numpy(), out.joints[k].numpy()
            focal = rng.uniform(*cfg.focal_range) * max(h, w)
            lo, hi = verts.min(0), verts.max(0)
            height_px = rng.uniform(*cfg.height_range) * h
            mid = (lo + hi) / 2.0
            tz = focal * (hi[1] - lo[1]) / height_px - mid[2]
            depth = mid[2] + tz
            half = np.array([(hi[0] - lo[0]) / 2.0, (hi[1] - lo[1]) / 2.0]) * focal / depth  # half box in px
            slack = np.maximum(np.array([w, h]) / 2.0 - half, 0.0) * 0.9
            target = pp + rng.uniform(-1, 1, 2) * slack
            txy = (target - pp) * depth / focal - mid[:2]
            trans = np.array([txy[0], txy[1], tz])
            bg = procedural_background(rng, h, w, cfg.background, cfg.background_shapes)
            img = render_overlay(bg, verts[None], faces, trans[None], focal, (float(pp[0]), float(pp[1])),
                                 colors=self.clothing.sample(rng)[None])
            j24 = joints[25:49] + trans
            part = np.zeros((24, 3))
            part[:, :2] = focal * j24[:, :2] / j24[:, 2:3] + (pp - 0.5)
            part[:, 2] = ((part[:, 0] >= 0) & (part[:, 0] <= w - 1) & (part[:, 1] >= 0) & (part[:, 1] <= h - 1))
            S = np.concatenate([joints[25:49] - joints[25 + PELVIS_J24], np.ones((24, 1))], axis=1)
            center, scale = keypoint_box(np.concatenate([part[None, :, :2], np.ones((1, 24, 1))], -1))
            samples.append(dict(
                image=img, background=bg, mask=np.any(img != bg, axis=-1), index=indices[k],
                ann=dict(center=center[0], scale=scale[0], part=part, S=S,
                         pose=np.concatenate([orient[k], body[k]]), shape=betas[k], cam_focal=focal,
                         cam_center=pp - 0.5, cam_trans=trans)))
        return samples


def _write_chunk(renderer: SyntheticRenderer, job: tuple[int, str, list[int], str]) -> list[tuple[int, dict[str, Any]]]:
    """Render and write the JPEGs of one chunk; returns (index, annotations) rows."""
    seed, split, indices, out_dir = job
    rows = []
    for s in renderer.render_chunk(seed, split, indices):
        ok, buf = cv2.imencode(".jpg", s["image"][:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, renderer.cfg.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for synthetic sample {split}/{s['index']}")
        (Path(out_dir) / f"{s['index']:06d}.jpg").write_bytes(buf.tobytes())
        rows.append((s["index"], s["ann"]))
    return rows


def _worker(renderer: SyntheticRenderer, jobs: dict[int, tuple], results: Any) -> None:
    """A forked generation worker: the renderer is inherited (never pickled); sends {job id: rows} or the error."""
    configure_worker_threads()
    try:
        results.put({k: _write_chunk(renderer, job) for k, job in jobs.items()})
    except BaseException as e:  # noqa: BLE001 - handed to the parent, which re-raises it
        results.put(e)


def synthetic_dataset_info(data_root: Path | str) -> dict[str, Any] | None:
    """The ``info.json`` of the generated dataset under ``<data_root>/synthetic`` (None when absent or unreadable)."""
    try:
        return json.loads((Path(data_root) / "synthetic" / "info.json").read_text())
    except (OSError, ValueError):
        return None


def generate_synthetic_dataset(data_root: Path | str, num_train: int = 1000, num_val: int = 100, seed: int = 0,
                               image_size: tuple[int, int] | int = 256, workers: int = 2,
                               cfg: SyntheticConfig | None = None) -> dict[str, Path]:
    """Generate both splits under ``<data_root>/synthetic``; returns {split: npz path}. One renderer (the body
    model) is built here and inherited by the forked workers."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    cfg = cfg or SyntheticConfig(image_size=tuple(image_size))
    root = Path(data_root) / "synthetic"
    out: dict[str, Path] = {}
    jobs = []
    for split, n in (("train", num_train), ("val", num_val)):
        folder = root / "images" / split
        folder.mkdir(parents=True, exist_ok=True)
        jobs += [(seed, split, list(range(i, min(i + CHUNK, n))), str(folder)) for i in range(0, n, CHUNK)]
    t0 = time.time()
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:  # single-threaded here and in the workers (identical bytes whatever their number), then restored
        configure_worker_threads()
        renderer = SyntheticRenderer(data_root, cfg)
        if workers > 1:  # forked workers: job k goes to worker k % workers
            ctx = mp.get_context("fork")
            queue = ctx.SimpleQueue()
            procs = [ctx.Process(target=_worker, args=(renderer, dict(list(enumerate(jobs))[w::workers]), queue))
                     for w in range(workers)]
            for p in procs:
                p.start()
            parts = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            if failed := [e for e in parts if isinstance(e, BaseException)]:
                raise failed[0]
            results = [r for part in parts for r in part.items()]
        else:
            results = [(k, _write_chunk(renderer, j)) for k, j in enumerate(jobs)]
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    for split, n in (("train", num_train), ("val", num_val)):
        rows = sorted(r for k, res in results if jobs[k][1] == split for r in res)
        if not rows:
            continue
        fields = {k: np.stack([a[k] for _, a in rows]) for k in rows[0][1]}
        names = [f"images/{split}/{i:06d}.jpg" for i, _ in rows]
        out[split] = save_spin_npz(root / f"synthetic_{split}.npz", imgname=names,
                                   has_smpl=np.ones(n), gender=np.full(n, "n"), **fields)
    info = dict(version=SYNTHETIC_VERSION, num_train=num_train, num_val=num_val, seed=seed,
                image_size=list(cfg.image_size))
    atomic_write(root / "info.json", lambda f: f.write(json.dumps(info, indent=1).encode()))  # last: "complete"
    log.info("synthetic dataset: %d train + %d val samples in %s (%s body model, %.1f s)", num_train, num_val, root,
             "built-in" if renderer.files.builtin else "real SMPL", time.time() - t0)
    return out
