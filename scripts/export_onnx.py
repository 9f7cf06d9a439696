#!/usr/bin/env python
"""Export PyMAF (or HMR) to ONNX: images [B,3,224,224] -> vertices, joints, camera, pose, shape (dynamic batch;
the outputs are described in ``pymaf/onnx_export.py``).

    python scripts/export_onnx.py --checkpoint data/pretrained_model/PyMAF_model_checkpoint.pt --out pymaf.onnx

Without --checkpoint the weights are random (useful to test a deployment pipeline).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402
from pymaf.onnx_export import OUTPUT_NAMES, ExportWrapper, export_onnx  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="PyMAF/SPIN/our checkpoint (default: random weights)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--data-root", default=None, help="data root with the SMPL files (else $PYMAF_DATA, ./data)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    parser.add_argument("--check", action="store_true", help="compare onnxruntime with PyTorch on a random batch")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from pymaf import load_model

    model = load_model(args.checkpoint, data_root=args.data_root)
    path = export_onnx(model, args.out, opset=args.opset)
    print(f"wrote {path} (inputs: images [B,3,224,224]; outputs: {', '.join(OUTPUT_NAMES)})")
    if args.check:
        import onnxruntime as ort
        images = torch.randn(2, 3, 224, 224)
        with torch.no_grad():
            ref = ExportWrapper(model)(images)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(OUTPUT_NAMES, {"images": images.numpy()})
        for name, a, b in zip(OUTPUT_NAMES, ref, got):
            print(f"{name:9s} max |onnx - torch| = {abs(a.numpy() - b).max():.2e}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
