#!/usr/bin/env python
"""Draw a training run's result picture: validation crops with the ground-truth mesh and the predicted meshes at
the start (the run's initial weights) and at the end (checkpoints/latest.pt) of training, above the validation
curve (pymaf/train/result_figure.py).

    python scripts/result_figure.py --log-dir logs/quickstart [--data-root D] [--out logs/quickstart/result.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.config import load_config  # noqa: E402
from pymaf.paths import resolve_data_root  # noqa: E402
from pymaf.train.result_figure import result_figure, write_png  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log-dir", required=True, help="train.log_dir of the run (config.yaml, tb/, checkpoints/)")
    ap.add_argument("--data-root", default=None, help="data root (else $PYMAF_DATA, else ./data)")
    ap.add_argument("--out", default=None, help="PNG to write (default: <log-dir>/result.png)")
    ap.add_argument("--samples", type=int, default=3, help="validation samples shown")
    ap.add_argument("--scale", type=float, default=1.0, help="resize the picture by this factor")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    log_dir = Path(args.log_dir)
    cfg = load_config(log_dir / "config.yaml")
    image = result_figure(cfg, resolve_data_root(args.data_root), log_dir / "checkpoints" / "latest.pt",
                          log_dir / "tb", args.samples)
    out = write_png(image, args.out or log_dir / "result.png", args.scale)
    print(f"result picture: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
