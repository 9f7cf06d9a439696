#!/usr/bin/env python
"""Inference speed of PyMAF: the straightforward official-style path versus the fast path and its options.

    python scripts/benchmark_inference.py                       # CPU, batch 1 and 64
    python scripts/benchmark_inference.py --device cuda --iters 50
    python scripts/benchmark_inference.py --batch-sizes 1 8 --iters 3 --no-compile

Configurations, all in the same process on the same weights (random unless --checkpoint):

* ``baseline``: what the official forward computes (spec §1.10, §8): fp32 eager, a full SMPL forward of the mean
  parameters per call, full SMPL + axis-angle + 2D keypoints at every iteration, three dense 431×6890
  down-sampling matmuls, and the IUV head at inference;
* ``fast (unfused)``: precomputed mean mesh, 431-vertex sparse LBS for intermediate iterations, index selection,
  no IUV head (fp32 eager, contiguous; the same numbers, see tests/test_model.py);
* ``fast``: that, run as ``eval.py`` runs it by default: ``apply_runtime(..., inference=True)`` with the
  default runtime, ``fuse`` (BatchNorm folded, sub-pixel first deconv: ``pymaf.model.inference``) and
  ``channels_last``; fp32, the same numbers to float rounding (tests/test_inference.py);
* ``fast+<amp>`` (autocast, bf16 by default: the demo's default), ``fast+compile`` (inductor, weights frozen)
  and ``fast+all`` (both; without ``--no-compile`` only).

Prints the median ms/batch, ms/image, images/s and the speed-up against the baseline of the same run, then the
peak memory (CPU RSS of the process; on CUDA the max allocated of each configuration during its warm-up). The
timed calls are interleaved across configurations (robust to other load on shared machines).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from bench_memory import memory_line, peak_memory, reset_cuda_peak  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_configs(configs: list, images: torch.Tensor, iters: int, warmup: int) -> tuple[list[float], list[float]]:
    """(median seconds per call, CUDA max allocated MiB during the warm-up or nan) of each ``fn(images)``. Calls
    are interleaved (one call of every configuration per round) so that load from other processes hits all
    configurations alike."""
    times: list[list[float]] = [[] for _ in configs]
    peaks: list[float] = []
    with torch.inference_mode():
        for _, fn in configs:
            reset_cuda_peak()
            for _ in range(max(1, warmup)):
                fn(images)
            peaks.append(peak_memory().get("cuda_max_allocated_mib", float("nan")))
        for _ in range(iters):
            for i, (_, fn) in enumerate(configs):
                _sync(images.device)
                start = time.perf_counter()
                fn(images)
                _sync(images.device)
                times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], peaks


def build_configs(model, device: torch.device, amp: str, use_compile: bool) -> list[tuple[str, object]]:
    """(name, callable) pairs; each option gets its own copy of the model."""
    from pymaf.config import RuntimeConfig
    from pymaf.model.reference import reference_forward
    from pymaf.runtime import apply_runtime

    ids = model.vertex_ids
    dmap = torch.zeros(len(ids), model.smpl.v_template.shape[0], device=device)
    dmap[torch.arange(len(ids), device=device), ids.to(device)] = 1.0       # the official dense Dmap

    def fast(**opts) -> torch.nn.Module:
        return apply_runtime(copy.deepcopy(model), RuntimeConfig(device=str(device), **opts), inference=True)

    configs = [("baseline", lambda x: reference_forward(model, x, dmap)), ("fast (unfused)", model), ("fast", fast())]
    configs.append((f"fast+{amp}", fast(amp=amp)))
    if use_compile:
        configs += [("fast+compile", fast(compile=True)), ("fast+all", fast(amp=amp, compile=True))]
    return configs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="'cpu' (default) or 'cuda'")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--iters", type=int, default=10, help="timed rounds (one call of every configuration each)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (compile happens here)")
    parser.add_argument("--amp", default="bf16", choices=["bf16", "fp16"], help="autocast dtype of the amp option")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--checkpoint", default=None, help="weights (default: random init)")
    parser.add_argument("--data-root", default=None, help="data root with the SMPL files")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file (benchmark_all.py)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in the baseline and the fast path
        torch.backends.cudnn.allow_tf32 = False

    from pymaf import load_model

    model = load_model(args.checkpoint, data_root=args.data_root, device=device).eval()
    name_w = 22
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, iters {args.iters}, warmup {args.warmup}")
    rows: list[dict] = []
    print(f"{'batch':>5}  {'config':<{name_w}}  {'ms/batch':>9}  {'ms/image':>9}  {'images/s':>9}  {'vs baseline':>11}")
    for batch in args.batch_sizes:
        # built anew per batch size, caches reset: a compiled configuration compiles for this shape (a second
        # shape would recompile it with a dynamic batch dimension, slower to compile and to run)
        torch._dynamo.reset()
        configs = build_configs(model, device, args.amp, not args.no_compile)
        images = torch.randn(batch, 3, 224, 224, device=device)
        seconds, peaks = time_configs(configs, images, args.iters, args.warmup)
        base = seconds[0]
        rows += [{"batch": batch, "config": name, "ms_per_batch": 1e3 * sec, "speedup": base / sec,
                  "cuda_max_allocated_mib": peak if peak == peak else None}
                 for (name, _), sec, peak in zip(configs, seconds, peaks)]
        for (name, _), sec, peak in zip(configs, seconds, peaks):
            mem = f"  {peak:9.0f} MiB CUDA max allocated" if peak == peak else ""
            print(f"{batch:>5}  {name:<{name_w}}  {1e3 * sec:9.2f}  {1e3 * sec / batch:9.2f}  {batch / sec:9.1f}  "
                  f"{base / sec:10.2f}x{mem}", flush=True)
        del configs
    print(memory_line())
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "inference", "device": str(device), "rows": rows,
                                               "memory": peak_memory()}, indent=1))


if __name__ == "__main__":
    sys.exit(run_cli(main))
