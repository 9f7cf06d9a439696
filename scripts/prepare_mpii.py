#!/usr/bin/env python
"""Write the SPIN-format npz of MPII Human Pose (spec §4.1, §4.6) from its annotation ``.mat``.

    python scripts/prepare_mpii.py --raw-dir <MPII root> --out data/dataset_extras/mpii_train.npz

<MPII root> holds ``mpii_human_pose_v1_u12_1.mat`` (or pass ``--annotations``) and ``images/``. The struct
``RELEASE`` has ``annolist(i).image.name``, ``annolist(i).annorect(j)`` with ``objpos.{x,y}``, ``scale`` and
``annopoints.point(k).{id,x,y,is_visible}``, and ``img_train(i)``. One row per annotated person of the
training images (``img_train == 1``, with annopoints):

- part: the 16 MPII joints in J24 (r-ankle, r-knee, r-hip, l-hip, l-knee, l-ankle -> 0..5, pelvis -> 14,
  thorax -> 15, upper neck -> 12, head top -> 13, r-wrist .. l-wrist -> 6..11); every annotated joint gets
  visibility 1 (occluded ones included, as SPIN), unannotated joints 0;
- center/scale: the annotation's ``objpos`` and ``scale`` (MPII's person scale w.r.t. 200 px, the values
  SPIN's npz carries); persons without them fall back to the keypoint box x 1.2;
- imgname: ``images/<name>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.data.spin_npz import keypoint_box, save_spin_npz  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.errors import DataError, MissingFileError  # noqa: E402

# MPII joint id -> J24 index
MPII_TO_J24 = [0, 1, 2, 3, 4, 5, 14, 15, 12, 13, 6, 7, 8, 9, 10, 11]
ANNOTATION_FILE = "mpii_human_pose_v1_u12_1.mat"


def _items(x: Any) -> list:
    """A MATLAB struct array / cell / single struct (loadmat squeeze_me=True) as a list."""
    if isinstance(x, np.ndarray):
        return list(x.ravel())
    return [] if x is None else [x]


def _field(s: Any, name: str) -> Any:
    v = getattr(s, name, None)
    if isinstance(v, np.ndarray) and v.size == 0:
        return None
    return v


def person_rows(rect: Any) -> tuple[np.ndarray, np.ndarray | None, float | None] | None:
    """(part [24, 3], objpos or None, scale or None) of one annorect, or None without annotated joints."""
    points = _field(rect, "annopoints")
    points = _items(_field(points, "point")) if points is not None else []
    if not points:
        return None
    part = np.zeros((24, 3))
    for p in points:
        jid = int(np.asarray(p.id).ravel()[0])
        if 0 <= jid < 16:
            part[MPII_TO_J24[jid]] = (float(p.x), float(p.y), 1.0)
    objpos, scale = _field(rect, "objpos"), _field(rect, "scale")
    center = None
    if objpos is not None and _field(objpos, "x") is not None:
        center = np.array([float(objpos.x), float(objpos.y)])
    return part, center, (float(scale) if scale is not None else None)


def prepare_mpii(raw_dir: Path, out: Path, annotations: Path | None = None) -> int:
    path = Path(annotations) if annotations else Path(raw_dir) / ANNOTATION_FILE
    if not path.exists():
        raise MissingFileError(f"MPII annotation file not found: {path}")
    release = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)["RELEASE"]
    annolist, is_train = _items(release.annolist), np.asarray(release.img_train).ravel()
    if len(annolist) != len(is_train):
        raise DataError(f"{path}: {len(annolist)} annolist entries but {len(is_train)} img_train flags")
    rows: dict[str, list] = {"imgname": [], "center": [], "scale": [], "part": []}
    for entry, train in zip(annolist, is_train):
        if not train:
            continue
        name = str(entry.image.name)
        for rect in _items(_field(entry, "annorect")):
            got = person_rows(rect)
            if got is None:
                continue
            part, center, scale = got
            if center is None or scale is None or scale <= 0:
                c, s = keypoint_box(part[None])
                center, scale = c[0], float(s[0])
            if scale <= 0:
                continue
            rows["imgname"].append(f"images/{name}")
            rows["center"].append(center)
            rows["scale"].append(scale)
            rows["part"].append(part)
    if not rows["imgname"]:
        raise DataError(f"{path}: no annotated person in the training images")
    save_spin_npz(out, **{k: np.asarray(v) for k, v in rows.items()})
    return len(rows["imgname"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", required=True, type=Path, help="MPII root (images/ and the annotation .mat)")
    ap.add_argument("--out", required=True, type=Path, help="output npz, e.g. data/dataset_extras/mpii_train.npz")
    ap.add_argument("--annotations", type=Path, default=None,
                    help=f"annotation file (default <raw-dir>/{ANNOTATION_FILE})")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    n = prepare_mpii(args.raw_dir, args.out, args.annotations)
    print(f"wrote {args.out}: {n} samples")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
