"""Evaluate a PyMAF/HMR checkpoint on one benchmark with the official protocol (spec §5).

    python eval.py --checkpoint data/pretrained_model/PyMAF_model_checkpoint.pt --dataset 3dpw
    python eval.py --checkpoint logs/quickstart/checkpoints/best.pt --dataset synthetic-val
    python eval.py --random-weights --dataset synthetic-val         # randomly initialised model (smoke test)

The network runs in fp32 by default with the exact speed-ups of ``pymaf.runtime`` (``runtime.fuse``,
``channels_last``; ``--compile`` adds frozen-weight compilation); ``--amp bf16`` is opt-in (faster, metrics within
the tolerance in the README's "Speed").
Prints a metric table and samples/s, writes ``<out-dir>/eval_<dataset>.json`` (schema: pymaf/eval/report.py)
and, with ``--save-samples``, ``eval_<dataset>_samples.npz``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from pymaf.cli import add_debug_flag, run_cli
from pymaf.data.loader import default_num_workers
from pymaf.eval import DATASETS, evaluate


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="official PyMAF checkpoint or one of ours")
    p.add_argument("--random-weights", action="store_true",
                   help="evaluate a randomly initialised model instead of a checkpoint (smoke test only)")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-root", default=None, help="data root (default: $PYMAF_DATA, else ./data)")
    p.add_argument("--cfg", default=None, help="YAML config of the model (default: the built-in defaults)")
    p.add_argument("--opts", nargs="*", default=[], help="config overrides KEY=VALUE")
    p.add_argument("--batch-size", type=int, default=None, help="default: eval.batch_size of the config (32)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers (default: eval.num_workers of the config, at most the available cores)")
    p.add_argument("--out-dir", default="logs/eval", help="where the JSON report (and samples npz) go")
    p.add_argument("--save-samples", action="store_true", help="also save per-sample predictions and errors")
    p.add_argument("--coco-official-scores", action="store_true",
                   help="COCO: keep the official score=1 / keypoint-bbox area (spec §10.17) for comparison")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"],
                   help="autocast dtype of the network (default none: fp32, the metrics are the protocol's to float "
                        "tolerance); recorded in the report's settings.amp. Replaces runtime.amp of --cfg")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network with frozen weights (same numbers; compiling takes about a minute "
                        "per batch shape on a CPU, so it pays on large sets); recorded in settings.compile")
    p.add_argument("--log-every", type=int, default=50, help="print running metrics every N batches")
    add_debug_flag(p)
    args = p.parse_args(argv)
    no_ckpt = args.checkpoint in (None, "", "none")
    if no_ckpt and not args.random_weights:
        from pymaf.errors import InputError
        raise InputError("no checkpoint given (--checkpoint): the metrics of a randomly initialised model mean "
                         "nothing; pass --checkpoint FILE, or --random-weights for a smoke test")
    if args.random_weights and not no_ckpt:
        p.error("use either --checkpoint or --random-weights, not both")

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from pymaf.config import load_config
    from pymaf.paths import resolve_data_root

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if any(o.split("=", 1)[0] == "runtime.amp" for o in args.opts):
        from pymaf.errors import InputError
        raise InputError("--opts runtime.amp=...: eval.py takes the autocast dtype from --amp (default none = fp32)")
    opts = list(args.opts) + [f"runtime.device={device}", f"runtime.amp={args.amp}"] + \
        (["runtime.compile=true"] if args.compile else [])
    cfg = load_config(args.cfg, opts)
    if args.random_weights:
        logging.getLogger("pymaf").warning("--random-weights: evaluating a RANDOMLY INITIALISED model "
                                           "(the metrics are meaningless)")
    batch_size = args.batch_size if args.batch_size is not None else cfg.eval.batch_size
    workers = args.num_workers if args.num_workers is not None else min(cfg.eval.num_workers, default_num_workers())
    return evaluate(args.dataset, None if no_ckpt else args.checkpoint, resolve_data_root(args.data_root),
                    device=device, batch_size=batch_size, num_workers=workers, out_dir=Path(args.out_dir),
                    save_samples=args.save_samples, coco_official_scores=args.coco_official_scores, cfg=cfg,
                    infer_model_cfg=args.cfg is None and not any(o.startswith("model.") for o in args.opts),
                    log_every=args.log_every)


if __name__ == "__main__":
    sys.exit(run_cli(main))
