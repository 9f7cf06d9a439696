"""Benchmark the pure-PyTorch renderer: ms per batch of 64 IUV maps at 56x56 and per 1024x1024 overlay.

    python scripts/benchmark_render.py [--device cpu|cuda|all] [--data-root DIR] [--batch 64] [--threads N]

The body model is the real SMPL + DensePose files under the data root when present, else the built-in body
model (generated once into the cache). The baseline, run in the same process, is a dense rasterizer that tests
every face against every pixel (face chunks of 512): the script prints the speed-up and checks that both give
the same face map.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.body.files import resolve_body_files  # noqa: E402
from pymaf.body.model_file import load_smpl_model  # noqa: E402
from pymaf.render.iuv import IUVRenderer  # noqa: E402
from pymaf.render.overlay import render_overlay  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cuda only when available)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--overlay-size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machines: keep it low)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
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
        H = W = args.overlay_size
        image = np.full((H, W, 3), 120, np.uint8)
        t = np.array([[0.05, 0.0, 5000 * 1.8 / (0.8 * H)]], dtype=np.float32)  # body ~80% of the image height
        ms = timeit(lambda: render_overlay(image, template[None].numpy(), faces.numpy(), t, 5000.0, device=dev),
                    dev, args.repeat)
        print(f"[{name}] overlay: {ms:8.2f} ms per {H}x{W} image (1 person, incl. numpy round trip)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
