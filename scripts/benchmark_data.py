#!/usr/bin/env python
"""Which limits training: the data loader or the model? Both measured in the same run, in samples/s.

    python scripts/benchmark_data.py [--data-root D] [--batch-size 32] [--batches 30] [--device auto]

1. Loader: the training pipeline (BaseDataset with augmentation + MixedBatchSampler + DataLoader with persistent
   workers and pinned memory) over the synthetic training set, with 1, 2 and all cores as workers. The first
   batch (worker start-up) is not timed.
2. Model: full PyMAF training steps (forward, IUV targets, losses, backward, Adam) through
   ``pymaf.train.trainer.Trainer.train_step`` on the available device, on one fixed batch.

The ratio loader/model > 1 means the loader keeps up. The synthetic dataset is generated first if missing
(``--num-samples`` images of ``--image-size`` pixels; real datasets have larger JPEGs than the default 256x256,
so use e.g. ``--image-size 1000`` on a fresh ``--data-root`` to see H36M-sized decoding costs).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_memory import memory_line, peak_memory  # noqa: E402
from pymaf.data.dataset import build_dataset  # noqa: E402
from pymaf.data.loader import build_loader, default_num_workers  # noqa: E402
from pymaf.data.mixed import MixedBatchSampler, MixedDataset  # noqa: E402
from pymaf.paths import dataset_npz, resolve_data_root  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402


def loader_rate(data_root: Path, workers: int, batch_size: int, batches: int, backend: str) -> float:
    """Training-loader samples/s with ``workers`` worker processes (0 = in the main process)."""
    ds = MixedDataset([build_dataset(data_root, "synthetic", "train", crop_backend=backend)], ["synthetic"])
    sampler = MixedBatchSampler(ds.sizes, [1.0], batch_size, batches_per_epoch=batches + 1, seed=0)
    loader = build_loader(ds, batch_sampler=sampler, num_workers=workers, pin_memory=torch.cuda.is_available())
    it = iter(loader)
    next(it)  # worker start-up
    t0 = time.perf_counter()
    n = sum(int(b["img"].shape[0]) for b in it)
    return n / (time.perf_counter() - t0)


def model_rate(data_root: Path, device: str, batch_size: int, steps: int) -> tuple[float, str]:
    """Training-step samples/s of the full PyMAF step on ``device`` (needs pymaf.train / pymaf.model)."""
    from pymaf.config import load_config
    from pymaf.train.trainer import Trainer
    with tempfile.TemporaryDirectory() as log_dir:
        cfg = load_config(None, [f"runtime.device={device}", f"train.batch_size={batch_size}", "data.num_workers=0",
                                 f"train.log_dir={log_dir}"])
        trainer = Trainer(cfg, data_root, progress=False)
        batch = next(iter(trainer.loader))
        batch = {k: v.to(trainer.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        trainer.train_step(batch)  # warm-up (allocations, cudnn autotune)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        name = torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else "CPU"
        return steps * batch_size / (time.perf_counter() - t0), name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=30, help="timed loader batches per setting")
    ap.add_argument("--backend", default="spin", choices=["spin", "head"])
    ap.add_argument("--num-samples", type=int, default=512, help="synthetic samples to generate if missing")
    ap.add_argument("--image-size", type=int, default=256, help="side of the generated synthetic images if missing")
    ap.add_argument("--device", default="auto", help="model device: auto (cuda if available), cpu, cuda")
    ap.add_argument("--model-batch-size", type=int, default=None, help="default: --batch-size")
    ap.add_argument("--model-steps", type=int, default=5)
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file (benchmark_all.py)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # the main process only collates; the workers do the work

    root = resolve_data_root(args.data_root)
    if not dataset_npz(root, "synthetic", "train").exists():
        from pymaf.data.synthetic import generate_synthetic_dataset
        print(f"generating {args.num_samples} synthetic samples in {root / 'synthetic'} ...", flush=True)
        generate_synthetic_dataset(root, args.num_samples, 0, seed=0, image_size=args.image_size)
    cores = default_num_workers()
    print(f"loader: synthetic train set, batch {args.batch_size}, backend '{args.backend}', {cores} cores available")
    rates = {}
    for w in sorted({1, 2, cores}):
        rates[w] = loader_rate(root, w, args.batch_size, args.batches, args.backend)
        print(f"  {w:3d} worker(s): {rates[w]:8.1f} samples/s  ({rates[w] / w:6.1f} per worker)", flush=True)
    result = {"benchmark": "data", "loader_samples_per_s": rates}

    def finish() -> int:
        print(memory_line())
        if args.json:
            Path(args.json).write_text(json.dumps({**result, "memory": peak_memory()}, indent=1))
        return 0

    if args.skip_model:
        return finish()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cpu":
        torch.set_num_threads(cores)
    mbs = args.model_batch_size or args.batch_size
    try:
        rate, name = model_rate(root, device, mbs, args.model_steps)
    except ImportError as e:
        print(f"model: training step not available yet ({e}); skipped")
        return finish()
    best_w = max(rates, key=rates.get)
    print(f"model: PyMAF training step on {name}, batch {mbs}: {rate:8.1f} samples/s")
    print(f"ratio loader ({best_w} workers) / model = {rates[best_w] / rate:.2f}: "
          f"{'the model limits, the loader keeps up' if rates[best_w] >= rate else 'the loader limits'}; "
          f"feeding this device takes ~{math.ceil(rate / rates[1])} worker(s) at {rates[1]:.0f} samples/s each")
    result.update(model_samples_per_s=rate, model_device=name, loader_over_model=rates[best_w] / rate)
    return finish()


if __name__ == "__main__":
    sys.exit(run_cli(main))
