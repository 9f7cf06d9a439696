#!/usr/bin/env python
"""Convert an official SMPL v1.0 .pkl (chumpy pickles) once to a plain .npz, without chumpy.

    python scripts/convert_smpl.py --in data/smpl/SMPL_NEUTRAL.pkl --out data/smpl/SMPL_NEUTRAL.npz

The .npz holds v_template, shapedirs, posedirs, J_regressor (dense), weights, kintree_table, f
(spec §9) and loads without any pickle.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not
from pymaf.body.model_file import load_smpl_model, save_smpl_npz  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="inp", metavar="IN", required=True, type=Path, help="SMPL model (.pkl or .npz)")
    parser.add_argument("--out", required=True, type=Path, help="output .npz")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".npz":
        parser.error(f"--out must end in .npz, got {args.out}")
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists (use --force to overwrite)")
    model = load_smpl_model(args.inp)   # a BodyModelError / MissingFileError: "error: ..." (pymaf.cli.run_cli)
    save_smpl_npz(model, args.out)
    summary = ", ".join(f"{k} {tuple(v.shape)}" for k, v in model.items())
    print(f"wrote {args.out}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
