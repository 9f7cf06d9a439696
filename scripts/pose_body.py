#!/usr/bin/env python
"""Build the body model (real SMPL under the data root, else the built-in one), pose it, report.

    python scripts/pose_body.py [--data-root D] [--out posed.obj]

A smoke check of the SMPL layer: it loads the files through the same loaders as training and
evaluation, poses the neutral model in a few random poses and prints the 49-joint skeleton's extent.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf.body.files import resolve_body_files  # noqa: E402
from pymaf.body.smpl import build_smpl, load_mean_params  # noqa: E402
from pymaf.geometry import axis_angle_to_rotmat, rot6d_to_rotmat  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=None, help="write the mean-pose mesh as OBJ here")
    add_debug_flag(ap)
    args = ap.parse_args(argv)

    files = resolve_body_files(args.data_root)
    smpl = build_smpl(files, "neutral")
    mean = load_mean_params(files.mean_params)
    print(f"body model: {'built-in' if files.builtin else 'SMPL'} from {files.root}")

    rot = rot6d_to_rotmat(torch.as_tensor(mean["pose"]).view(1, 24, 6))
    betas = torch.as_tensor(mean["shape"]).view(1, 10)
    out = smpl(betas=betas, body_pose=rot[:, 1:], global_orient=rot[:, :1])
    v = out.vertices[0]
    print(f"mean pose: vertices {tuple(out.vertices.shape)}, joints {tuple(out.joints.shape)}, "
          f"height {float(v[:, 1].max() - v[:, 1].min()):.3f} m (y-down camera frame)")

    g = torch.Generator().manual_seed(0)
    aa = 0.3 * torch.randn(4, 24, 3, generator=g)
    out = smpl(betas=torch.randn(4, 10, generator=g), body_pose=axis_angle_to_rotmat(aa[:, 1:]),
               global_orient=axis_angle_to_rotmat(aa[:, :1]))
    span = (out.joints.amax(1) - out.joints.amin(1)).norm(dim=-1)
    print(f"4 random poses: joint extents {[round(float(s), 3) for s in span]} m, "
          f"finite={bool(torch.isfinite(out.vertices).all())}")
    if args.out:
        import trimesh
        trimesh.Trimesh(v.numpy(), smpl.faces.numpy(), process=False).export(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
