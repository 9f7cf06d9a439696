"""Train PyMAF (spec §3).

    python train.py --cfg configs/quickstart.yaml [--data-root D] [--resume] [--opts train.max_steps=50 ...]
    torchrun --nproc_per_node=N train.py --cfg configs/pymaf_spin_setting.yaml --data-root D   # DDP, N GPUs

Outputs go to train.log_dir: config.yaml, tb/ (TensorBoard), checkpoints/latest.pt and best.pt.
``--resume`` continues exactly from checkpoints/latest.pt (settings that would make it another run are refused,
listed as ``key: old -> new``); a new run refuses a log dir that holds checkpoints unless ``--overwrite``.
For the synthetic dataset, the data is generated under the data root first when missing; at the end the
validation errors are printed next to the mean pose's.
"""
from __future__ import annotations

import argparse
import sys

import torch

from pymaf.cli import add_debug_flag, run_cli
from pymaf.config import describe, load_config
from pymaf.paths import resolve_data_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", default=None, help="YAML config (configs/*.yaml)")
    ap.add_argument("--data-root", default=None, help="data root (else $PYMAF_DATA, else ./data)")
    ap.add_argument("--resume", action="store_true", help="continue from <log_dir>/checkpoints/latest.pt")
    ap.add_argument("--overwrite", action="store_true",
                    help="start a new run in a log dir that holds another run's checkpoints (they are deleted)")
    ap.add_argument("--opts", nargs="*", default=[], help="KEY=VALUE overrides, e.g. train.batch_size=16")
    ap.add_argument("--print-config", action="store_true", help="print every config key with its help and exit")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)

    cfg = load_config(args.cfg, args.opts)
    if args.print_config:
        print("\n".join(describe(cfg)))
        return 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data_root = resolve_data_root(args.data_root)

    from pymaf.train import Trainer
    from pymaf.train.data_adapter import prepare_training_data
    from pymaf.train.dist import init_from_env
    info = init_from_env(cfg.runtime.device)     # the process group first: data generation is per machine
    prepare_training_data(cfg, data_root, info)
    trainer = Trainer(cfg, data_root, resume=args.resume, overwrite=args.overwrite, info=info)
    result = trainer.fit()      # a NonFiniteLossError / RunError becomes "error: ..." (pymaf.cli.run_cli)
    if trainer.info.is_main and result.val:
        v = result.val
        print(f"trained {result.step} steps; checkpoints in {result.log_dir / 'checkpoints'}")
        b = result.best
        print(f"validation on {cfg.data.eval_dataset} (the eval.py protocol; last iteration vs mean pose); "
              f"best.pt: {b['metric']} {b['value']:.1f} at step {b['step']}")
        for name, value in v.items():
            if name.endswith("_mean_pose") or f"{name}_mean_pose" not in v:
                continue
            mean = v[f"{name}_mean_pose"]
            gain = f"   ({100 * (1 - value / mean):.0f}% lower)" if mean > 0 and name in ("mpjpe", "pa_mpjpe") else ""
            print(f"  {name:<9} {value:7.1f}   vs mean pose {mean:7.1f}{gain}")
    from pymaf.train.dist import cleanup
    cleanup(trainer.info)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
