"""The demo pipeline (spec §6, done right): frames -> person boxes -> (tracking) -> batched 224 crops -> model
-> full-image camera -> (One-Euro smoothing) -> shaded overlays + exports. Headless (pure-PyTorch rasterizer).

Outputs under ``--output`` (``<stem>`` = image file stem, or the 6-digit frame index of a video):

* images / folders: ``overlays/<stem>.png`` (and ``overlays/<stem>_side.png`` with ``--side-view``);
  videos: ``<video>_overlay.mp4`` (and ``<video>_side.mp4``), written with cv2.VideoWriter (mp4v);
* ``params/<stem>_p<id:03d>.npz``: one per person and frame (fields: ``pymaf.demo.export``);
* ``meshes/<stem>_p<id:03d>.obj`` with ``--save-obj``; ``output.pkl`` (official layout) with ``--official-pkl``;
* videos (and ``--sequence``) with ``--export-bvh`` / ``--export-glb``: ``animation/<video>_p<id:03d>.bvh`` /
  ``.glb`` per tracked person (skeleton, rest offsets, rotations, root translation; Y up, metres: see
  ``pymaf.demo.animation``).
* ``summary.json``: input, camera, counts, the timings printed at the end, ``runtime`` (device, amp, ...), ``weights`` (the checkpoint, or
  ``"random"``: without ``--checkpoint`` the model is randomly initialised, which is also warned about),
  ``skipped`` (input images that could not be read, with the reason) and ``unmatched_bbox_keys``.

Exit code: 0; 1 when some images of a folder were skipped (the others are processed); 2 on an error
(``error: ...`` on stderr, see ``pymaf/cli.py``).

Camera: one pinhole camera per frame with principal point at the image centre and focal length
``--focal-length`` pixels; default ``5000 * max(H, W) / 224``, i.e. the crop camera of §1.8 (f = 5000 on a 224
crop) scaled to the frame, so for ``--full-image`` the full-image camera *is* the camera the model was trained
with. The mesh translation comes from ``geometry.crop_cam_to_full_translation`` (spec §6 step 5 done right).
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional, get_type_hints

import cv2
import numpy as np
import torch

from pymaf.api import load_model
from pymaf.cli import add_debug_flag, run_cli
from pymaf.config import DemoConfig, load_config
from pymaf.demo.boxes import JsonBoxes, PersonDetector, full_image_box
from pymaf.errors import InputError, WriteError, write_error
from pymaf.demo.crops import make_crops, square_boxes
from pymaf.demo.export import AnimationRecorder, OfficialPklWriter, save_obj, save_person_npz
from pymaf.demo.inputs import Frame, FrameSource, chunked
from pymaf.demo.smoothing import PersonSmoother
from pymaf.demo.tracking import IoUTracker
from pymaf.geometry import crop_cam_to_full_translation, crop_cam_to_orig_cam, rotmat_to_axis_angle
from pymaf.runtime import apply_runtime

log = logging.getLogger("pymaf")
CROP_RES = 224
CROP_FOCAL = 5000.0  # §1.8


def default_focal_length(height: int, width: int) -> float:
    """5000 px on a 224 crop scaled to the frame: 5000 * max(H, W) / 224 (see the module docstring)."""
    return CROP_FOCAL * max(height, width) / CROP_RES


def build_parser() -> argparse.ArgumentParser:
    """``demo.py``'s flags: one per :class:`~pymaf.config.DemoConfig` key (``--full-image`` for ``full_image``),
    ``--device`` (``runtime.device``), ``--cfg`` (a YAML file of DemoConfig keys) and ``--opts KEY=VALUE``."""
    p = argparse.ArgumentParser(description="PyMAF demo: meshes, overlays and animation-ready files from an "
                                "image, a folder of images or a video (headless).", argument_default=argparse.SUPPRESS)
    hints = get_type_hints(DemoConfig)
    for f in fields(DemoConfig):
        tp = hints[f.name]
        if not is_dataclass(tp):
            shown = f" (default: {f.default})" if f.default not in ("", False) else ""
            p.add_argument("--" + f.name.replace("_", "-"), help=(f.metadata["help"] + shown).replace("%", "%%"),
                           **(dict(action="store_true") if tp is bool else dict(type=tp)))
    p.add_argument("--device", help="torch device, runtime.device (default: cuda if available, else cpu)")
    # the network runs the fastest options within the measured tolerance (README "Speed"); each flag turns one off
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast (runtime.amp=none): fp32 numerics")
    p.add_argument("--no-fuse", action="store_true", help="run the network as built, without the exact rewrite "
                   "of runtime.fuse (BatchNorm folded, sub-pixel deconvolution)")
    p.add_argument("--no-channels-last", action="store_true", help="keep the contiguous memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile with frozen weights (runtime.compile): "
                   "faster per person, but about a minute of compilation on a 2-core CPU; for long videos")
    p.add_argument("--cfg", default=None, help="YAML file of demo keys (pymaf/config.py: DemoConfig)")
    p.add_argument("--opts", nargs="*", default=[], help="demo keys KEY=VALUE after --cfg, e.g. runtime.amp=bf16 "
                   "(the flags above are applied last)")
    add_debug_flag(p)
    return p


def demo_config(argv: Optional[list[str]] = None) -> DemoConfig:
    """``demo.py``'s command line -> DemoConfig: defaults (device: cuda if available), ``--cfg``, ``--opts``, then
    the flags given."""
    args = vars(build_parser().parse_args(argv))
    base = DemoConfig()  # keeps the demo's runtime defaults (bf16 autocast), on the default device
    base.runtime.device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = load_config(args.pop("cfg"), args.pop("opts"), base=base)
    args.pop("debug", None)
    cfg.runtime.device = args.pop("device", cfg.runtime.device)
    if args.pop("fp32", False):
        cfg.runtime.amp = "none"
    if args.pop("no_fuse", False):
        cfg.runtime.fuse = False
    if args.pop("no_channels_last", False):
        cfg.runtime.channels_last = False
    if args.pop("compile", False):
        cfg.runtime.compile = True
    for key, value in args.items():
        setattr(cfg, key, value)
    for key in ("input", "output"):
        if not getattr(cfg, key):
            raise InputError(f"--{key} is required (or '{key}' in the --cfg file)")
    return cfg


def prepare_output(path: str | Path) -> Path:
    """Create the ``--output`` folder and check that it can be written (before any work is done)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {out} is a file: expected a folder (it is created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise write_error(out, e) from e
    return out


@dataclass
class Timers:
    """Seconds per stage, and ``total``: the whole frame loop (reading, every stage, the writing that the
    background encoder did not hide, and its final flush)."""
    detection: float = 0.0
    regression: float = 0.0
    rendering: float = 0.0
    export: float = 0.0
    total: float = 0.0
    frames: int = 0
    people: int = 0

    def report(self) -> dict[str, Any]:
        fps = lambda t: self.frames / t if t > 0 else float("inf")  # noqa: E731
        return {"frames": self.frames, "people": self.people, "detection_fps": fps(self.detection),
                "regression_fps": fps(self.regression), "rendering_fps": fps(self.rendering),
                "regression_people_per_s": self.people / self.regression if self.regression > 0 else float("inf"),
                "end_to_end_fps": fps(self.total),
                "seconds": {k: getattr(self, k) for k in ("detection", "regression", "rendering", "export", "total")}}


class _Writers:
    """Overlay images (PNG) or videos (mp4v), encoded and written by one background thread so that the next
    frame renders while the last one is encoded. Frames queue up to ``depth``; a failed write is raised by the
    next ``write`` or by ``raise_error`` after ``close``."""

    def __init__(self, out: Path, video_stem: Optional[str], fps: float, depth: int = 8) -> None:
        self.out, self.video_stem, self.fps = out, video_stem, fps
        self.videos: dict[str, Any] = {}
        self._error: Optional[BaseException] = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._work, name="pymaf-demo-writer", daemon=True)
        self._thread.start()

    def write(self, kind: str, stem: str, rgb: np.ndarray) -> None:
        """Queue one RGB frame (the array must not be changed afterwards)."""
        self.raise_error()
        self._queue.put((kind, stem, rgb))

    def close(self) -> None:
        """Write what is queued and close the videos (never raises: see ``raise_error``)."""
        self._queue.put(None)
        self._thread.join()
        for w in self.videos.values():
            w.release()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:  # after a failure, drain the queue without writing
                try:
                    self._write(*item)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = e

    def _write(self, kind: str, stem: str, rgb: np.ndarray) -> None:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # cv2 writes BGR: convert exactly once (§10.21)
        if self.video_stem is None:
            suffix = "" if kind == "overlay" else f"_{kind}"
            path = self.out / "overlays" / f"{stem}{suffix}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), bgr):
                raise WriteError(f"cannot write {path}: cv2.imwrite failed (full disk or unsupported path?)")
            return
        if kind not in self.videos:
            path = self.out / f"{self.video_stem}_{kind}.mp4"
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (bgr.shape[1], bgr.shape[0]))
            if not w.isOpened():
                raise OSError(f"cv2.VideoWriter cannot open {path} (mp4v)")
            self.videos[kind] = w
        self.videos[kind].write(bgr)


def _regress(model: torch.nn.Module, crops: torch.Tensor, batch_size: int, device: str,
             pad: bool = False) -> dict[str, torch.Tensor]:
    """Crops [K,3,224,224] -> last-iteration outputs (rotmat, theta, pred_cam, verts, kp_3d) on the CPU.
    ``pad``: a last partial batch is padded to ``batch_size`` (a compiled network then never sees a new shape:
    no recompilation, which costs about a minute on a 2-core CPU)."""
    keys = ("rotmat", "theta", "pred_cam", "verts", "kp_3d")
    parts: dict[str, list] = {k: [] for k in keys}
    with torch.inference_mode():
        for i in range(0, len(crops), batch_size):
            batch = crops[i:i + batch_size]
            n = len(batch)
            if pad and n < batch_size:
                batch = torch.cat([batch, batch[-1:].expand(batch_size - n, -1, -1, -1)])
            last = model(batch.to(device))["smpl_out"][-1]
            for k in keys:
                parts[k].append(last[k][:n].float().cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def _boxes_for(frames: list[Frame], cfg: DemoConfig, boxes_src: Any) -> list[np.ndarray]:
    if cfg.full_image:
        return [full_image_box(*f.image.shape[:2]) for f in frames]
    if isinstance(boxes_src, JsonBoxes):
        return [boxes_src(f.index, f.name, f.stem, f.image.shape[:2]) for f in frames]
    return boxes_src([f.image for f in frames])


def run_demo(cfg: DemoConfig, model: Optional[torch.nn.Module] = None) -> dict[str, Any]:
    """Run the demo with its options (``demo_config``); ``model`` overrides ``--checkpoint`` loading.
    Returns the summary (also written to ``<output>/summary.json``)."""
    source = FrameSource(cfg.input)
    if cfg.full_image and cfg.bboxes:
        raise InputError("use either --full-image or --bboxes, not both")
    anim = _animation_recorder(cfg, source.kind == "video" or cfg.sequence)  # before the slow set-up
    boxes_src: Any = JsonBoxes(cfg.bboxes) if cfg.bboxes else None
    if boxes_src is None and not cfg.full_image:
        boxes_src = PersonDetector(cfg.detector, cfg.detector_weights, cfg.runtime.device, cfg.det_threshold)
    out = prepare_output(cfg.output)
    weights = cfg.checkpoint or ("random" if model is None else "model passed to run_demo")
    if model is None and not cfg.checkpoint:
        log.warning("no --checkpoint: the demo uses a RANDOMLY INITIALISED model, the meshes are meaningless "
                    "(pass --checkpoint FILE; summary.json records \"weights\": \"random\")")
    if model is None:
        model = load_model(cfg.checkpoint or None, cfg.data_root or None, cfg.runtime.device)
    net = apply_runtime(model.eval(), cfg.runtime, inference=True)  # device, fuse, autocast, channels_last, compile
    smpl = model.smpl                                   # the network's SMPL layer (faces, re-posing)
    faces = smpl.faces.cpu().numpy()
    tracked = source.kind == "video" or cfg.sequence
    tracker = IoUTracker() if tracked else None
    smoothers: dict[int, PersonSmoother] = {}
    writers = _Writers(out, source.name if source.kind == "video" else None, source.fps)
    pkl = OfficialPklWriter() if cfg.official_pkl else None
    timers = Timers()
    focal_used: dict[str, float] = {}
    t_start = time.perf_counter()
    try:
        for frames in chunked(iter(source), max(1, cfg.chunk)):
            t0 = time.perf_counter()
            boxes = _boxes_for(frames, cfg, boxes_src)
            timers.detection += time.perf_counter() - t0

            t0 = time.perf_counter()
            owners, ids, all_boxes = [], [], []
            for j, (f, b) in enumerate(zip(frames, boxes)):
                ids.extend(tracker.update(b) if tracker is not None else range(len(b)))
                owners.extend([j] * len(b))
                all_boxes.extend(b)
            K = len(owners)
            all_boxes = np.asarray(all_boxes, np.float32).reshape(K, 5)
            centers, sides = square_boxes(all_boxes, 1.0 if cfg.full_image else cfg.bbox_scale)
            hw = np.array([frames[j].image.shape[:2] for j in owners], np.float64).reshape(K, 2)
            focal = np.array([cfg.focal_length or default_focal_length(int(h), int(w)) for h, w in hw])
            smoothed = bool(cfg.smooth and tracked)
            if K:
                res = _regress(net, make_crops([frames[j].image for j in owners], centers, sides, CROP_RES),
                               max(1, cfg.batch_size), cfg.runtime.device, pad=cfg.runtime.compile)
                cam = res["pred_cam"].double()
                args = (torch.from_numpy(centers), torch.from_numpy(sides), torch.from_numpy(hw))
                trans = crop_cam_to_full_translation(cam, *args, torch.from_numpy(focal)).numpy()
                orig_cam = crop_cam_to_orig_cam(cam, *args).numpy()
                rotmat, betas = res["rotmat"].numpy(), res["theta"][:, 3:13].numpy()
                verts, joints = res["verts"].numpy(), res["kp_3d"].numpy()
                if smoothed:  # causal, per track, in frame order (people are in frame order already)
                    for k in range(K):
                        f = smoothers.setdefault(int(ids[k]), PersonSmoother(
                            source.fps, cfg.smooth_min_cutoff, cfg.smooth_beta))
                        rotmat[k], betas[k], trans[k] = f(rotmat[k], betas[k], trans[k])
                    with torch.inference_mode():
                        R = torch.from_numpy(rotmat).float().to(smpl.faces.device)
                        body = smpl(betas=torch.from_numpy(betas).float().to(R.device), body_pose=R[:, 1:],
                                    global_orient=R[:, :1])
                    verts, joints = body.vertices.cpu().numpy(), body.joints.cpu().numpy()
                pose = rotmat_to_axis_angle(torch.from_numpy(rotmat).double()).reshape(K, 72).numpy()
            timers.regression += time.perf_counter() - t0
            timers.frames += len(frames)
            timers.people += K

            t0 = time.perf_counter()
            for k in range(K):
                f = frames[owners[k]]
                h, w = f.image.shape[:2]
                fl, pp = float(focal[k]), np.array([w / 2.0, h / 2.0])
                focal_used[f.stem] = fl
                pc = joints[k] + trans[k]
                rec = {"pose": pose[k], "rotmat": rotmat[k], "betas": betas[k], "translation": trans[k],
                       "focal_length": [fl, fl], "principal_point": pp,
                       "K": [[fl, 0, pp[0]], [0, fl, pp[1]], [0, 0, 1]], "image_size": np.array([h, w]),
                       "pred_cam": cam[k].numpy(), "orig_cam": orig_cam[k], "joints3d": joints[k],
                       "vertices": verts[k], "joints2d": fl * pc[:, :2] / pc[:, 2:3] + pp,
                       "bbox": all_boxes[k], "box_center": centers[k], "box_size": sides[k],
                       "track_id": int(ids[k]), "frame_index": f.index, "frame_name": f.name,
                       "smoothed": smoothed}
                save_person_npz(out / "params" / f"{f.stem}_p{int(ids[k]):03d}.npz", rec)
                if cfg.save_obj:
                    save_obj(out / "meshes" / f"{f.stem}_p{int(ids[k]):03d}.obj", verts[k], faces)
                if pkl is not None:
                    pkl.add(rec)
                if anim is not None:
                    anim.add(rec)
            timers.export += time.perf_counter() - t0

            if cfg.no_render:
                continue
            for j, f in enumerate(frames):
                sel = [k for k in range(K) if owners[k] == j]
                h, w = f.image.shape[:2]
                fl = float(cfg.focal_length or default_focal_length(h, w))
                people = (verts[sel], trans[sel], [ids[k] for k in sel]) if sel else None
                for side in (False, True) if cfg.side_view else (False,):
                    t0 = time.perf_counter()
                    rgb = render_people(f.image, people, faces, fl, side=side, device=cfg.runtime.device)
                    timers.rendering += time.perf_counter() - t0
                    writers.write("side" if side else "overlay", f.stem, rgb)  # encoded in the background
    finally:
        writers.close()
    writers.raise_error()
    timers.total = time.perf_counter() - t_start
    if pkl is not None:
        pkl.save(out / "output.pkl")
    animations = anim.export(out, source.name, smpl, source.fps) if anim is not None else None
    unmatched = boxes_src.warn_unmatched() if isinstance(boxes_src, JsonBoxes) else []
    summary = {"input": str(source.path), "kind": source.kind, "fps": source.fps, "tracked": tracked,
               "smoothed": bool(cfg.smooth and tracked), "weights": weights,
               "focal_length": cfg.focal_length or "5000*max(H,W)/224",
               "principal_point": "image centre", "runtime": asdict(cfg.runtime), **timers.report(),
               "skipped": source.skipped, "unmatched_bbox_keys": unmatched}
    if animations is not None:
        summary["animation"] = animations
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    r = timers.report()
    print(f"{r['frames']} frames, {r['people']} people | detection {r['detection_fps']:.2f} fps | regression "
          f"{r['regression_fps']:.2f} fps ({r['regression_people_per_s']:.2f} people/s) | rendering "
          f"{r['rendering_fps']:.2f} fps" + (" (skipped)" if cfg.no_render else "") +
          f" | end to end {r['end_to_end_fps']:.2f} fps | outputs in {out}")
    return summary


def _animation_recorder(cfg: DemoConfig, tracked: bool) -> Optional[AnimationRecorder]:
    """The BVH/GLB recorder for ``--export-bvh`` / ``--export-glb`` (tracked input only), else None."""
    if not (cfg.export_bvh or cfg.export_glb):
        return None
    if not tracked:
        raise InputError("--export-bvh / --export-glb animate tracked people: give a video (or a folder of "
                         "frames with --sequence)")
    return AnimationRecorder(bvh=cfg.export_bvh, glb=cfg.export_glb)


def render_people(image: np.ndarray, people: Optional[tuple], faces: np.ndarray, focal_length: float,
                  side: bool = False, device: str = "cpu") -> np.ndarray:
    """Overlay (or side view) of people = (verts [N,V,3], translation [N,3], track ids) on an RGB frame
    (principal point = image centre), rendered on ``device``; the colour of a person follows its track id.
    None = no people."""
    from pymaf.render.overlay import PALETTE, render_overlay, render_side_view
    h, w = image.shape[:2]
    if people is None:
        return image.copy() if not side else np.full_like(image, 25)
    verts, trans, ids = people
    colors = [PALETTE[int(i) % len(PALETTE)] for i in ids]
    if side:
        return render_side_view(verts, faces, trans, focal_length, (h, w), colors=colors, device=device)
    return render_overlay(image, verts, faces, trans, focal_length, colors=colors, device=device)


def _main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = demo_config(argv)
    summary = run_demo(cfg)
    if summary["skipped"]:
        print(f"error: {len(summary['skipped'])} of {len(summary['skipped']) + summary['frames']} input images "
              f"skipped (unreadable; listed in {Path(cfg.output) / 'summary.json'}): "
              + ", ".join(Path(s["file"]).name for s in summary["skipped"]), file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """``demo.py``: :func:`run_demo` under the error convention of ``pymaf.cli`` (exit 2 on an error)."""
    return run_cli(_main, argv)
