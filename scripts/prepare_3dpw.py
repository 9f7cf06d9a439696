#!/usr/bin/env python
"""Write the SPIN-format npz of 3DPW (spec §4.1, §4.6) from the official sequence files.

    python scripts/prepare_3dpw.py --raw-dir <3DPW root> --out data/dataset_extras/3dpw_test.npz [--split test]

<3DPW root> holds ``sequenceFiles/<split>/*.pkl`` (Python 2 pickles: keys sequence, poses [P][F,72], betas
[P][10+], trans, cam_poses [F,4,4], campose_valid [P][F], genders [P], poses2d [P][F,3,18], img_frame_ids [F],
...) and ``imageFiles/<sequence>/image_XXXXX.jpg``. The pickles are read with an unpickler that only rebuilds
numpy arrays (no arbitrary code). One row per person per valid frame (``campose_valid``):

- pose: the SMPL pose with the global orient pre-multiplied by the camera extrinsic rotation (camera frame);
- shape: the first 10 betas; gender: 'm'/'f';
- openpose: the sequence's 2D poses (OpenPose COCO-18 order) mapped to BODY_25, confidence as given;
- center/scale: box of the 2D keypoints with confidence > 0, scale = 1.2 x max side / 200.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.data.spin_npz import keypoint_box, load_pickle, save_spin_npz  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.errors import DataError, MissingFileError  # noqa: E402

# OpenPose COCO-18 joint k -> BODY_25 index (BODY_25 adds MidHip 8 and the feet).
COCO18_TO_BODY25 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


def _str(x) -> str:
    return x.decode("latin1") if isinstance(x, bytes) else str(x)


def sequence_rows(seq: dict, source: str) -> dict[str, list]:
    """Rows of one sequence pickle (see the module docstring)."""
    name = _str(seq["sequence"])
    frame_ids = np.asarray(seq.get("img_frame_ids", np.arange(len(seq["cam_poses"]))))
    rows: dict[str, list] = {k: [] for k in ("imgname", "center", "scale", "pose", "shape", "gender", "openpose")}
    for p in range(len(seq["poses"])):
        valid = np.asarray(seq["campose_valid"][p]).astype(bool)
        poses = np.asarray(seq["poses"][p], np.float64)
        kp2d = np.asarray(seq["poses2d"][p], np.float64)  # [F, 3, 18]
        if kp2d.ndim != 3 or kp2d.shape[1:] != (3, 18):
            raise DataError(f"{source}: poses2d[{p}] has shape {kp2d.shape}, expected (F, 3, 18)")
        for i in np.nonzero(valid)[0]:
            openpose = np.zeros((25, 3))
            openpose[COCO18_TO_BODY25] = kp2d[i].T
            center, scale = keypoint_box(openpose[None])
            if scale[0] <= 0:
                continue
            r_cam = np.asarray(seq["cam_poses"][i], np.float64)[:3, :3]
            pose = poses[i].copy()
            r_glob, _ = cv2.Rodrigues(pose[:3])
            pose[:3] = cv2.Rodrigues(r_cam @ r_glob)[0][:, 0]
            rows["imgname"].append(f"imageFiles/{name}/image_{int(frame_ids[i]):05d}.jpg")
            rows["center"].append(center[0])
            rows["scale"].append(scale[0])
            rows["pose"].append(pose)
            rows["shape"].append(np.asarray(seq["betas"][p], np.float64)[:10])
            rows["gender"].append(_str(seq["genders"][p])[:1].lower())
            rows["openpose"].append(openpose)
    return rows


def prepare_3dpw(raw_dir: Path, out: Path, split: str = "test") -> int:
    files = sorted((Path(raw_dir) / "sequenceFiles" / split).glob("*.pkl"))
    if not files:
        raise MissingFileError(f"no sequence files in {Path(raw_dir) / 'sequenceFiles' / split} (3DPW layout)")
    rows: dict[str, list] = {}
    for f in files:
        with open(f, "rb") as fh:
            seq = load_pickle(fh, str(f))
        for k, v in sequence_rows(seq, str(f)).items():
            rows.setdefault(k, []).extend(v)
    n = len(rows["imgname"])
    if n == 0:
        raise DataError(f"no valid frames in {len(files)} sequence files under {raw_dir}")
    save_spin_npz(out, **{k: np.asarray(v) for k, v in rows.items()}, has_smpl=np.ones(n))
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", required=True, type=Path, help="3DPW root (sequenceFiles/, imageFiles/)")
    ap.add_argument("--out", required=True, type=Path, help="output npz, e.g. data/dataset_extras/3dpw_test.npz")
    ap.add_argument("--split", default="test", choices=["train", "validation", "test"])
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    n = prepare_3dpw(args.raw_dir, args.out, args.split)
    print(f"wrote {args.out}: {n} samples")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
