#!/usr/bin/env python
"""The demo on a 1080p video with one person: regression people/s, rendering frames/s and frames/s end to end.

    python scripts/benchmark_demo.py                          # CPU, 24 frames of 1920x1080, random weights
    python scripts/benchmark_demo.py --device cuda --frames 60 --checkpoint data/pretrained/PyMAF_model_checkpoint.pt
    python scripts/benchmark_demo.py --side-view --compile    # extra demo options for the fast run

Writes a synthetic video (the body model's template walking across a noisy 1920x1080 background) and its
``--bboxes`` JSON into a temporary folder, then runs ``pymaf.demo.run.run_demo`` twice in this process on the
same weights (random unless --checkpoint) and prints the rates of each and their ratios:

* ``baseline``: the demo as it ran before the speed work: fp32, the network as built (no ``runtime.fuse``),
  contiguous memory format, every frame rasterised and shaded full size;
* ``fast``: the demo's defaults (bf16 autocast, fuse, channels_last, the people's window only), plus the
  options given (``--side-view``, ``--compile``, ...).

Video encoding runs in the demo's background thread in both. Then the peak memory (CPU RSS; CUDA max allocated).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_memory import memory_line, peak_memory  # noqa: E402
from benchmark_render import full_frame_rendering  # noqa: E402
from pymaf.api import load_model  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.demo.run import default_focal_length, demo_config, run_demo  # noqa: E402
from pymaf.render.overlay import render_overlay  # noqa: E402


def make_video(folder: Path, verts: np.ndarray, faces: np.ndarray, n: int, H: int, W: int) -> tuple[Path, Path]:
    """An n-frame mp4 of one grey body half the frame high crossing the frame, and its boxes JSON."""
    focal = default_focal_length(H, W)
    height = float(np.ptp(verts[:, 1]))
    z = focal * height / (0.5 * H)
    rng = np.random.default_rng(0)
    background = rng.integers(60, 200, (H, W, 3), dtype=np.uint8)
    video, boxes = folder / "walk.mp4", {}
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (W, H))
    for i in range(n):
        x = (-0.3 + 0.6 * i / max(1, n - 1)) * z * W / (2 * focal)  # from 30% left of the centre to 30% right
        t = np.array([[x, 0.0, z]], np.float32)
        frame = render_overlay(background, verts[None], faces, t, focal, colors=[(0.7, 0.7, 0.7)])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        p = verts + t
        u, v = focal * p[:, 0] / p[:, 2] + W / 2, focal * p[:, 1] / p[:, 2] + H / 2
        boxes[str(i)] = [[float(u.min()), float(v.min()), float(u.max()), float(v.max()), 1.0]]
    writer.release()
    bbox_file = folder / "walk_boxes.json"
    bbox_file.write_text(json.dumps(boxes))
    return video, bbox_file


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--frame-size", type=int, nargs=2, default=[1080, 1920], metavar=("H", "W"))
    ap.add_argument("--checkpoint", default=None, help="weights (default: random; the rates do not depend on them)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, all cores)")
    ap.add_argument("--side-view", action="store_true", help="fast run: also render the side view")
    ap.add_argument("--compile", action="store_true", help="fast run: torch.compile with frozen weights")
    ap.add_argument("--no-baseline", action="store_true", help="run the fast configuration only")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    H, W = args.frame_size
    model = load_model(args.checkpoint, args.data_root, args.device)
    faces = model.smpl.faces.cpu().numpy()
    # the template, turned upright in the camera frame (x right, y down, z forward)
    template = (model.smpl.v_template.float().cpu() * torch.tensor([1.0, -1.0, -1.0])).numpy()
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); "
          f"{args.frames} frames of {W}x{H}, one person; weights {args.checkpoint or 'random'}")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        video, bbox_file = make_video(Path(tmp), template, faces, args.frames, H, W)
        common = ["--input", str(video), "--bboxes", str(bbox_file), "--device", args.device]
        runs = {"baseline": ["--fp32", "--no-fuse", "--no-channels-last"],
                "fast": (["--side-view"] if args.side_view else []) + (["--compile"] if args.compile else [])}
        if args.no_baseline:
            runs.pop("baseline")
        for name, extra in runs.items():
            cfg = demo_config(common + ["--output", str(Path(tmp) / name)] + extra)
            with full_frame_rendering() if name == "baseline" else contextlib.nullcontext():
                s = run_demo(cfg, model=model)
            results[name] = {k: s[k] for k in ("frames", "people", "regression_people_per_s", "rendering_fps",
                                                "end_to_end_fps", "seconds")}
            results[name]["runtime"] = s["runtime"]
    keys = (("regression_people_per_s", "regression people/s"), ("rendering_fps", "rendering frames/s"),
            ("end_to_end_fps", "end to end frames/s"))
    print(f"{'config':10s} " + " ".join(f"{label:>22s}" for _, label in keys))
    for name, r in results.items():
        print(f"{name:10s} " + " ".join(f"{r[k]:22.2f}" for k, _ in keys))
    rows = []
    if "baseline" in results:
        ratios = {k: results["fast"][k] / results["baseline"][k] for k, _ in keys}
        print(f"{'fast/base':10s} " + " ".join(f"{ratios[k]:21.2f}x" for k, _ in keys))
        results["ratios"] = ratios
    for k, label in keys:
        ratio = f", x{results['ratios'][k]:.2f} vs baseline" if "ratios" in results else ""
        rows.append({"what": f"demo {W}x{H} {label}", "value": f"{results['fast'][k]:.1f}{ratio}"})
    print(memory_line())
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "results": results, "memory": peak_memory(),
                                               "torch": torch.__version__}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
