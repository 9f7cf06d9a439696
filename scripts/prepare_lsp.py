#!/usr/bin/env python
"""Write the SPIN-format npz of LSP or LSP-extended (spec §4.1, §4.6) from ``joints.mat``.

    python scripts/prepare_lsp.py --raw-dir <lsp root> --out data/dataset_extras/lsp_dataset_test.npz --split test
    python scripts/prepare_lsp.py --raw-dir <lsp root> --split train \
        --out data/dataset_extras/lsp_dataset_original_train.npz
    python scripts/prepare_lsp.py --raw-dir <lspet root> --out data/dataset_extras/hr-lspet_train.npz --split all

<root> holds ``joints.mat`` and ``images/``. LSP's array is 3 x 14 x 2000 and LSP-extended's 14 x 3 x 10000
(told apart by the shape). The 14 LSP joints are the first 14 of J24 (same order).

- LSP: every joint gets visibility 1 (as SPIN); split 'train' = images 1-1000, 'test' = 1001-2000, whose rows
  also name the UPi-S1h segmentations ``data/lsp/im%04d_segmentation.png`` / ``..._part_segmentation.png``
  (relative to the upi-s1h folder); image names ``images/im%04d.jpg``.
- LSP-extended: visibility from the third column; image names ``images/im%05d.jpg`` (``--ext`` to change).
- center/scale: box of the visible joints, scale = 1.2 x max side / 200.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.io

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.data.spin_npz import keypoint_box, save_spin_npz  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.errors import DataError, MissingFileError  # noqa: E402


def read_joints(path: Path) -> tuple[np.ndarray, bool]:
    """joints.mat -> ([N, 14, 3] x, y, third value; is_lspet)."""
    if not path.exists():
        raise MissingFileError(f"LSP joints file not found: {path}")
    j = np.asarray(scipy.io.loadmat(str(path))["joints"], np.float64)
    if j.ndim == 3 and j.shape[:2] == (3, 14):
        return j.transpose(2, 1, 0), False
    if j.ndim == 3 and j.shape[:2] == (14, 3):
        return j.transpose(2, 0, 1), True
    raise DataError(f"{path}: 'joints' has shape {j.shape}, expected (3, 14, N) (LSP) or (14, 3, N) (LSP-extended)")


def prepare_lsp(raw_dir: Path, out: Path, split: str = "test", ext: str = "jpg") -> int:
    joints, lspet = read_joints(Path(raw_dir) / "joints.mat")
    n_all = joints.shape[0]
    if lspet or split == "all":
        ids = np.arange(n_all)
    elif split == "train":
        ids = np.arange(min(1000, n_all))
    else:
        ids = np.arange(1000, n_all)
    part = np.zeros((len(ids), 24, 3))
    part[:, :14, :2] = joints[ids, :, :2]
    part[:, :14, 2] = (joints[ids, :, 2] > 0) if lspet else 1.0
    center, scale = keypoint_box(part)
    keep = scale > 0
    digits = 5 if lspet else 4
    fields = dict(imgname=np.array([f"images/im{i + 1:0{digits}d}.{ext}" for i in ids[keep]]),
                  center=center[keep], scale=scale[keep], part=part[keep])
    if not lspet and split == "test":
        fields["maskname"] = np.array([f"data/lsp/im{i + 1:04d}_segmentation.png" for i in ids[keep]])
        fields["partname"] = np.array([f"data/lsp/im{i + 1:04d}_part_segmentation.png" for i in ids[keep]])
    save_spin_npz(out, **fields)
    return int(keep.sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", required=True, type=Path, help="folder with joints.mat and images/")
    ap.add_argument("--out", required=True, type=Path, help="output npz")
    ap.add_argument("--split", default="test", choices=["train", "test", "all"],
                    help="LSP: images 1-1000 (train), 1001-2000 (test) or all; LSP-extended: always all")
    ap.add_argument("--ext", default="jpg", help="image file extension")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    n = prepare_lsp(args.raw_dir, args.out, args.split, args.ext)
    print(f"wrote {args.out}: {n} samples")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
