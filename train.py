"""Train PyMAF (spec §3).

    python train.py --cfg configs/quickstart.yaml [--data-root D] [--resume] [--opts train.max_steps=50 ...]
    torchrun --nproc_per_node=N train.py --cfg configs/pymaf_spin_setting.yaml --data-root D   # DDP, N GPUs

Outputs go to train.log_dir: config.yaml, tb/ (TensorBoard), checkpoints/latest.pt and best.pt.
``--resume`` continues exactly from checkpoints/latest.pt. For the synthetic dataset, the data is generated
under the data root first when missing; at the end the validation errors are printed next to the mean pose's.
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
    from pymaf.train.data_adapter import ensure_synthetic
    ensure_synthetic(cfg, data_root)
    trainer = Trainer(cfg, data_root, resume=args.resume)
    result = trainer.fit()      # a NonFiniteLossError / RunError becomes "error: ..." (pymaf.cli.run_cli)
    if trainer.info.is_main and result.val:
        v = result.val
        print(f"trained {result.step} steps; checkpoints in {result.log_dir / 'checkpoints'}")
        print(f"validation on {cfg.data.eval_dataset} ({'last iteration'} vs mean pose), mm:")
        print(f"  MPJPE     {v['mpjpe']:7.1f}   vs mean pose {v['mpjpe_mean_pose']:7.1f}   "
              f"({100 * (1 - v['mpjpe'] / v['mpjpe_mean_pose']):.0f}% lower)")
        print(f"  PA-MPJPE  {v['pa_mpjpe']:7.1f}   vs mean pose {v['pa_mpjpe_mean_pose']:7.1f}   "
              f"({100 * (1 - v['pa_mpjpe'] / v['pa_mpjpe_mean_pose']):.0f}% lower)")
        print(f"  PVE       {v['pve']:7.1f}   vs mean pose {v['pve_mean_pose']:7.1f}")
    from pymaf.train.dist import cleanup
    cleanup(trainer.info)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
