#!/usr/bin/env python
"""Every benchmark in one short run, and one summary table: device, torch, cuDNN, each speed-up against the
baseline measured in the same run, peak memory.

    python scripts/benchmark_all.py --device cuda          # sized to finish in under ~5 minutes on one GPU
    python scripts/benchmark_all.py --device cpu           # smaller sizes (2-core machines: ~15 minutes)
    bash scripts/benchmark_all.sh                           # the same, device: cuda when available

Runs, each in its own process (so each peak CPU RSS is its own), with ``--json`` into ``--out`` (default
``logs/benchmarks/<time>``, the full logs beside): ``benchmark_inference.py`` (batch 1 and 64 on CUDA, 1 and 8 on
the CPU), ``benchmark_train.py``, ``benchmark_data.py`` (loader only), ``benchmark_render.py`` and
``benchmark_demo.py``. ``--no-compile`` skips the torch.compile configurations (their compilation is most of the
time on a CPU).
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402


def plan(device: str, compile_: bool) -> dict[str, list[str]]:
    """benchmark name -> its arguments (before ``--json``), sized for the device."""
    cuda = device.startswith("cuda")
    no_compile = [] if compile_ else ["--no-compile"]
    return {
        "inference": ["--device", device, "--batch-sizes", "1", "64" if cuda else "8",
                      "--iters", "20" if cuda else "5", "--warmup", "3" if cuda else "2"] + no_compile,
        "train": ["--device", device, "--steps", "10" if cuda else "3"] + no_compile,
        "data": ["--device", device, "--skip-model", "--batches", "10"],
        "render": ["--device", device, "--repeat", "5" if cuda else "3"],
        "demo": ["--device", device, "--frames", "60" if cuda else "24"],
    }


def summary_rows(name: str, res: dict) -> list[tuple[str, str, str]]:
    """(what, value, peak memory) rows of one benchmark's JSON."""
    mem = res.get("memory", {})
    cpu = f"RSS {mem.get('cpu_peak_rss_mib', float('nan')):.0f} MiB"
    rows: list[tuple[str, str, str]] = []
    if name == "inference":
        for r in res["rows"]:
            if r["config"] != "baseline":
                cuda = f"CUDA {r['cuda_max_allocated_mib']:.0f} MiB" if r.get("cuda_max_allocated_mib") else cpu
                rows.append((f"inference b{r['batch']} {r['config']}", f"{r['speedup']:.2f}x "
                             f"({r['ms_per_batch']:.1f} ms/batch)", cuda))
    elif name == "train":
        for r in res["rows"]:
            share = (f", data wait {100 * r['data_share']:.0f}%"
                     + (f", IUV render {100 * r['render_share']:.0f}%" if r.get("render_share") is not None else ""))
            peak = r.get("cuda_max_allocated_mib")
            rows.append((f"train b{res['batch']} {r['path']}", f"{r['samples_per_s']:.1f} samples/s{share}",
                         f"CUDA {peak:.0f} MiB" if peak == peak and peak is not None else cpu))
        rows.append(("train speed-up fast / fp32", f"{res['speedup']:.2f}x", cpu))
    elif name == "data":
        best = max(res["loader_samples_per_s"].items(), key=lambda kv: kv[1])
        rows.append(("data loader (best workers)", f"{best[1]:.0f} samples/s with {best[0]} workers", cpu))
    else:   # render, demo: their own rows
        rows += [(r["what"], r["value"], r.get("memory", cpu)) for r in res.get("rows", [])]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="folder for the JSON results and logs (default logs/benchmarks/<time>)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    ap.add_argument("--only", nargs="*", default=None, help="run only these: inference train data render demo")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or HERE.parent / "logs" / "benchmarks" / stamp)
    out.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")
    dev_name = torch.cuda.get_device_name(args.device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    header = f"device {dev_name}; torch {torch.__version__}; cuDNN {cudnn if cuda else 'n/a (CPU)'}"
    print(header, flush=True)
    rows: list[tuple[str, str, str]] = []
    failed = []
    t_all = time.perf_counter()
    for name, bench_args in plan(args.device, not args.no_compile).items():
        if args.only and name not in args.only:
            continue
        result, log = out / f"{name}.json", out / f"{name}.log"
        cmd = [sys.executable, str(HERE / f"benchmark_{name}.py"), *bench_args, "--json", str(result)]
        t0 = time.perf_counter()
        with open(log, "w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
        took = time.perf_counter() - t0
        print(f"  {name:10s} {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {took:5.0f} s: {' '.join(cmd[1:])}",
              flush=True)
        if rc != 0 or not result.is_file():
            failed.append(name)
            rows.append((name, f"FAILED: see {log}", ""))
            continue
        rows += summary_rows(name, json.loads(result.read_text()))
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    lines = [header, f"{'what':<{w0}}  {'result':<{w1}}  peak memory", "-" * (w0 + w1 + 16)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.append(f"total {time.perf_counter() - t_all:.0f} s; JSON and logs in {out}")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
