"""Samples/s of full PyMAF training steps (data loading + forward + IUV GT rendering + backward + Adam):
the straightforward fp32 path versus the fast path (autocast, channels_last, torch.compile), in one run.

    python scripts/benchmark_train.py --data-root D [--device cuda] [--batch-size 64] [--steps 20]

Uses the built-in synthetic dataset (generated when missing). Prints one line per path (samples/s, the share of
the step time spent waiting for data and rendering the IUV targets, host syncs per step counted by
``pymaf.train.syncs`` on one extra untimed step, CUDA max allocated), the ratio and the peak CPU RSS.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.config import load_config
from pymaf.paths import resolve_data_root
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from bench_memory import memory_line, peak_memory, reset_cuda_peak  # noqa: E402


class TimedRenderer(torch.nn.Module):
    """The trainer's IUV renderer with its wall time summed in ``seconds`` (CUDA synchronised around each call, so
    the time is the renderer's own)."""

    def __init__(self, inner: torch.nn.Module, sync) -> None:
        super().__init__()
        self.inner, self.sync, self.seconds = inner, sync, 0.0

    def forward(self, *args, **kwargs):
        self.sync()
        t0 = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self.sync()
        self.seconds += time.perf_counter() - t0
        return out


def count_syncs(tr, batch) -> str:
    """Host syncs of one (untimed) training step, by kind (``pymaf.train.syncs``)."""
    from pymaf.train.syncs import SyncCounter, optimizer_host_tensors
    try:
        with SyncCounter(host_tensors=optimizer_host_tensors(tr.optimizer), device=tr.device) as c:
            tr.train_step(batch)
    except Exception as e:  # e.g. a compiler that refuses to trace under a dispatch mode
        return f"n/a ({type(e).__name__})"
    return f"{c.total} ({c.summary()})"


def run(cfg_overrides: list[str], data_root, steps: int, warmup: int) -> dict:
    """-> {samples_per_s, data_share, render_share (of the step time; None without the IUV head), syncs,
    cuda_max_allocated_mib (nan on the CPU)}."""
    from pymaf.train import Trainer
    from pymaf.data.loader import to_device
    cfg = load_config(None, cfg_overrides)
    tr = Trainer(cfg, data_root, progress=False)
    it = tr._batches()
    sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)
    timed = None
    if cfg.model.aux_supv_on:
        tr.renderer = timed = TimedRenderer(tr.renderer, sync)
    reset_cuda_peak()
    n, t_data, t0 = 0, 0.0, 0.0
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0, n, t_data = time.perf_counter(), 0, 0.0
            if timed is not None:
                timed.seconds = 0.0
        td = time.perf_counter()
        batch = to_device(next(it), tr.device)
        t_data += time.perf_counter() - td
        tr.train_step(batch)
        n += batch["img"].shape[0]
    sync()
    dt = time.perf_counter() - t0
    peak = peak_memory().get("cuda_max_allocated_mib", float("nan"))
    syncs = count_syncs(tr, batch)
    tr.log.close()
    return {"samples_per_s": n / dt, "data_share": t_data / dt, "syncs": syncs, "cuda_max_allocated_mib": peak,
            "render_share": timed.seconds / dt if timed is not None else None}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=0, help="0: 64 on CUDA, 4 on CPU")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (0: 20 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed steps (0: 5 on CUDA, 1 on CPU; compile needs some)")
    ap.add_argument("--workers", type=int, default=-1, help="DataLoader workers (-1: 8 on CUDA, 2 on CPU)")
    ap.add_argument("--amp", default="", help="fast-path autocast dtype (default bf16)")
    ap.add_argument("--no-compile", action="store_true", help="fast path without torch.compile")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file (benchmark_all.py)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    bs = args.batch_size or (64 if cuda else 4)
    steps = args.steps or (20 if cuda else 3)
    warmup = args.warmup or (5 if cuda else 1)
    workers = args.workers if args.workers >= 0 else (8 if cuda else 2)
    if cuda:
        torch.backends.cudnn.benchmark = True
    root = resolve_data_root(args.data_root)
    from pymaf.train.data_adapter import ensure_synthetic
    log_dir = tempfile.mkdtemp(prefix="pymaf_bench_")
    common = [f"runtime.device={args.device}", f"train.batch_size={bs}", f"data.num_workers={workers}",
              f"train.log_dir={log_dir}", "train.log_every=1000000", "train.epoch_length=100000"]
    ensure_synthetic(load_config(None, common), root)
    amp = args.amp or "bf16"
    paths = {"fp32 (straightforward)": [],
             f"fast ({amp} autocast + channels_last{'' if args.no_compile else ' + compile'})":
                 [f"runtime.amp={amp}", "runtime.channels_last=true", f"runtime.compile={not args.no_compile}"]}
    dev = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {dev}; batch {bs}; {steps} timed steps after {warmup} warm-up; {workers} loader workers")
    results, rows = {}, []
    for name, extra in paths.items():
        r = run(common + extra, root, steps, warmup)
        results[name] = r["samples_per_s"]
        rows.append({"path": name, **r})
        render = f"{100 * r['render_share']:4.1f}%" if r["render_share"] is not None else "n/a (no IUV head)"
        mem = r["cuda_max_allocated_mib"]
        print(f"{name:55s} {r['samples_per_s']:8.2f} samples/s | waiting for data {100 * r['data_share']:4.1f}% | "
              f"IUV target rendering {render} of the step | host syncs/step {r['syncs']}"
              + (f" | CUDA max allocated {mem:.0f} MiB" if mem == mem else ""), flush=True)
    base, fast = list(results.values())
    print(f"speed-up fast / fp32: {fast / base:.2f}x")
    print(memory_line())
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "train", "device": args.device, "batch": bs,
                                               "rows": rows, "speedup": fast / base, "memory": peak_memory()},
                                              indent=1))


if __name__ == "__main__":
    sys.exit(run_cli(main))
