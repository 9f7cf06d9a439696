"""Benchmark the pure-PyTorch renderer: ms per batch of 64 IUV maps at 56x56, and the demo's overlay and side
view of one person on a 1920x1080 frame.

    python scripts/benchmark_render.py [--device cpu|cuda|all] [--data-root DIR] [--batch 64] [--threads N]
                                       [--frame-size 1080 1920] [--json FILE]

The body model is the real SMPL + DensePose files under the data root when present, else the built-in body
model (generated once into the cache). Baselines, run in the same process: for the IUV maps a dense rasterizer
that tests every face against every pixel (face chunks of 512; the script checks that both give the same face
map); for the overlay and the side view the full-frame render (every frame-sized pass of the rasterizer and the
shading; what the demo did before it rendered the people's window only; the script checks that both give the
same image). The person stands half the frame high at the demo's default focal length (5000 * max(H, W) / 224).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.body.files import resolve_body_files  # noqa: E402
from pymaf.body.model_file import load_smpl_model  # noqa: E402
from pymaf.demo.run import default_focal_length  # noqa: E402
from pymaf.render import overlay  # noqa: E402
from pymaf.render.iuv import IUVRenderer  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import memory_line, peak_memory  # noqa: E402


def timeit(fn, device: torch.device, repeat: int) -> float:
    """Median wall time in ms (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def dense_face_map(r: IUVRenderer, verts: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Baseline: every DensePose face against every pixel centre (same conventions), -> face map [B,S,S]."""
    from pymaf.geometry import cam_to_translation
    from pymaf.render.rasterizer import project_vertices

    S, k = r.size, r.size / r.crop_size
    vp = project_vertices(verts[:, r.vert_ids], cam_to_translation(cam),
                          r.focal_length * k, torch.full((len(cam), 2), 112 * k, device=verts.device))
    ys, xs = torch.meshgrid(torch.arange(S, device=verts.device) + 0.5,
                            torch.arange(S, device=verts.device) + 0.5, indexing="ij")
    out = []
    for b in range(len(vp)):
        best = torch.full((S * S,), float("inf"), device=verts.device)
        fid = torch.full((S * S,), -1, dtype=torch.long, device=verts.device)
        for f0 in range(0, len(r.faces), 512):
            tri = vp[b, r.faces[f0:f0 + 512]]  # [f,3,3]
            a, c1, c2 = tri[:, 0, :2, None], tri[:, 1, :2, None], tri[:, 2, :2, None]
            p = torch.stack([xs.reshape(-1), ys.reshape(-1)])[None]  # [1,2,P]
            area = (c1[:, 0] - a[:, 0]) * (c2[:, 1] - a[:, 1]) - (c1[:, 1] - a[:, 1]) * (c2[:, 0] - a[:, 0])
            l1 = ((p[:, 0] - a[:, 0]) * (c2[:, 1] - a[:, 1]) - (p[:, 1] - a[:, 1]) * (c2[:, 0] - a[:, 0])) / area
            l2 = ((c1[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (c1[:, 1] - a[:, 1]) * (p[:, 0] - a[:, 0])) / area
            l0 = 1 - l1 - l2
            inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
            depth = 1 / (l0 / tri[:, 0, 2:] + l1 / tri[:, 1, 2:] + l2 / tri[:, 2, 2:])
            depth = torch.where(inside, depth, torch.full_like(depth, float("inf")))
            d, i = depth.min(0)
            better = d < best
            best, fid = torch.where(better, d, best), torch.where(better, i + f0, fid)
        out.append(fid.view(S, S))
    return torch.stack(out)


@contextlib.contextmanager
def full_frame_rendering():
    """Baseline of the overlay rows: the renderer's window is the whole frame (the path before the window)."""
    window = overlay._covered_window
    overlay._covered_window = lambda verts_px, H, W: (0, 0, H, W)
    try:
        yield
    finally:
        overlay._covered_window = window


def frame_rows(name: str, template: torch.Tensor, faces: torch.Tensor, dev: torch.device, H: int, W: int,
               repeat: int) -> list[dict]:
    """Overlay and side view of one person half the frame high: full-frame baseline vs window, ms and fps."""
    focal = default_focal_length(H, W)  # the demo's camera
    height = float(template[:, 1].max() - template[:, 1].min())
    t = np.array([[0.1 * height, 0.0, focal * height / (0.5 * H)]], dtype=np.float32)
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    v, f = template[None].numpy(), faces.numpy()
    calls = {"overlay": lambda: overlay.render_overlay(image, v, f, t, focal, device=dev),
             "side view": lambda: overlay.render_side_view(v, f, t, focal, (H, W), device=dev)}
    rows, total = [], {"full frame": 0.0, "window": 0.0}
    for what, fn in calls.items():
        with full_frame_rendering():
            base, ref = timeit(fn, dev, repeat), fn()
        ms, same = timeit(fn, dev, repeat), bool(np.array_equal(fn(), ref))
        total["full frame"] += base
        total["window"] += ms
        print(f"[{name}] {what} {W}x{H}, 1 person: full frame {base:8.2f} ms ({1000 / base:5.1f} fps), window "
              f"{ms:8.2f} ms ({1000 / ms:5.1f} fps) -> x{base / ms:.2f}; images {'identical' if same else 'DIFFER'}")
        rows.append({"what": f"render [{name}] {what} {W}x{H}", "value": f"{1000 / ms:.1f} fps ({ms:.1f} ms), "
                     f"x{base / ms:.2f} vs full frame{'' if same else ', IMAGES DIFFER'}", "ms": ms,
                     "baseline_ms": base, "identical": same})
    both = total["window"]
    print(f"[{name}] overlay + side view per frame: {both:.2f} ms ({1000 / both:.1f} fps; full frame "
          f"{1000 / total['full frame']:.1f} fps)")
    rows.append({"what": f"render [{name}] overlay + side view", "value": f"{1000 / both:.1f} fps ({both:.1f} ms), "
                 f"x{total['full frame'] / both:.2f} vs full frame", "ms": both, "baseline_ms": total["full frame"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cuda only when available)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--frame-size", type=int, nargs=2, default=[1080, 1920], metavar=("H", "W"),
                    help="overlay / side-view frame size")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, all cores)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    files = resolve_body_files(args.data_root)
    smpl = load_smpl_model(files.smpl["neutral"])
    template = torch.tensor(smpl["v_template"], dtype=torch.float32) * torch.tensor([1.0, -1.0, -1.0])  # upright
    faces = torch.tensor(smpl["f"], dtype=torch.long)
    print(f"body model: {'built-in' if files.builtin else 'real'} ({files.root}); {len(template)} verts, "
          f"{len(faces)} faces; torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA is not available: CPU only")
        devices.remove("cuda")
    gen = torch.Generator().manual_seed(0)
    B = args.batch
    rows: list[dict] = []
    verts = template[None] + 0.01 * torch.randn(B, 1, 3, generator=gen)
    cam = torch.stack([0.75 + 0.2 * torch.rand(B, generator=gen), 0.1 * torch.randn(B, generator=gen),
                       0.1 * torch.randn(B, generator=gen)], 1)
    for name in devices:
        dev = torch.device(name)
        r = IUVRenderer(files.uv_processed, size=args.size).to(dev)
        v, c = verts.to(dev), cam.to(dev)
        ms = timeit(lambda: r(v, c), dev, args.repeat)
        fg = (r.rasterize(v, c).face_idx >= 0).float().mean().item()
        print(f"[{name}] IUV maps: {ms:8.2f} ms per batch of {B} at {args.size}x{args.size} "
              f"({ms / B:.3f} ms/map, foreground {100 * fg:.1f}%)")
        nb = 2 if name == "cpu" else 8
        base = timeit(lambda: dense_face_map(r, v[:nb], c[:nb]), dev, 1) / nb
        agree = (dense_face_map(r, v[:nb], c[:nb]) == r.rasterize(v[:nb], c[:nb]).face_idx).float().mean().item()
        print(f"[{name}]   dense baseline: {base:8.2f} ms/map -> speed-up x{base / (ms / B):.1f}; "
              f"face maps agree on {100 * agree:.2f}% of pixels")
        rows.append({"what": f"render [{name}] IUV maps b{B} {args.size}px", "value": f"{ms / B:.3f} ms/map, "
                     f"x{base / (ms / B):.1f} vs dense, agree {100 * agree:.2f}%", "ms_per_map": ms / B})
        rows += frame_rows(name, template, faces, dev, *args.frame_size, args.repeat)
    print(memory_line())
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "memory": peak_memory(), "torch": torch.__version__,
                                               "threads": torch.get_num_threads()}, indent=2))


if __name__ == "__main__":
    sys.exit(run_cli(main))
