#!/usr/bin/env python
"""Write the SPIN-format npz of COCO 2014 keypoints (spec §4.1, §4.6) from the official annotation JSON.

    python scripts/prepare_coco.py --raw-dir <COCO root> --out data/dataset_extras/coco_2014_train.npz \\
        [--split train] [--min-body-keypoints 12]

<COCO root> holds ``annotations/person_keypoints_<split>2014.json`` and ``<split>2014/*.jpg``. One row per
non-crowd person annotation with at least ``--min-body-keypoints`` labelled body joints (COCO joints 5..16,
SPIN's training filter is 12; use 1 to keep every annotated person):

- part: the 17 COCO joints placed in J24 (inverse of J24_TO_JCOCO), visibility v > 0 -> 1;
- center/scale: the annotation box, center = box centre, scale = 1.2 x max(w, h) / 200;
- imgname: ``<split>2014/<file_name>`` relative to the COCO root.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.body.joints import J24_TO_JCOCO  # noqa: E402
from pymaf.data.spin_npz import save_spin_npz  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.errors import DataError, MissingFileError  # noqa: E402


def prepare_coco(raw_dir: Path, out: Path, split: str = "train", year: int = 2014,
                 min_body_keypoints: int = 12) -> int:
    path = Path(raw_dir) / "annotations" / f"person_keypoints_{split}{year}.json"
    if not path.exists():
        raise MissingFileError(f"COCO annotation file not found: {path}")
    data = json.loads(path.read_text())
    files = {img["id"]: img["file_name"] for img in data["images"]}
    rows: dict[str, list] = {"imgname": [], "center": [], "scale": [], "part": []}
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1 or "keypoints" not in ann:
            continue
        kp = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        vis = kp[:, 2] > 0
        if vis[5:].sum() < min_body_keypoints:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w <= 0 or h <= 0:
            continue
        part = np.zeros((24, 3))
        part[J24_TO_JCOCO, :2] = kp[:, :2]
        part[J24_TO_JCOCO, 2] = vis
        rows["imgname"].append(f"{split}{year}/{files[ann['image_id']]}")
        rows["center"].append([x + w / 2.0, y + h / 2.0])
        rows["scale"].append(1.2 * max(w, h) / 200.0)
        rows["part"].append(part)
    if not rows["imgname"]:
        raise DataError(f"{path}: no person annotation passes the filter (min_body_keypoints={min_body_keypoints})")
    save_spin_npz(out, **{k: np.asarray(v) for k, v in rows.items()})
    return len(rows["imgname"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", required=True, type=Path, help="COCO root (annotations/, train2014/, val2014/)")
    ap.add_argument("--out", required=True, type=Path, help="output npz")
    ap.add_argument("--split", default="train", choices=["train", "val"])
    ap.add_argument("--year", default=2014, type=int)
    ap.add_argument("--min-body-keypoints", default=12, type=int,
                    help="minimum labelled body joints (COCO 5..16) per person (SPIN: 12)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    n = prepare_coco(args.raw_dir, args.out, args.split, args.year, args.min_body_keypoints)
    print(f"wrote {args.out}: {n} samples")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
