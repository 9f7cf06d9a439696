#!/usr/bin/env python
"""Export PyMAF (or HMR) to ONNX: image [B,3,224,224] -> vertices, joints, camera, pose, shape.

    python scripts/export_onnx.py --checkpoint data/pretrained_model/PyMAF_model_checkpoint.pt --out pymaf.onnx

Outputs (float32; B is a dynamic axis): ``vertices`` [B,6890,3] (model frame), ``joints`` [B,49,3] (spec §2.2),
``camera`` [B,3] crop camera (s, tx, ty) (spec §1.8), ``pose`` [B,72] axis-angle, ``shape`` [B,10] betas.
The graph is the fast inference path (precomputed mean mesh, 431-vertex sparse LBS, no IUV head). Without
--checkpoint the weights are random (useful to test a deployment pipeline).
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402

OUTPUT_NAMES = ["vertices", "joints", "camera", "pose", "shape"]


class ExportWrapper(nn.Module):
    """images [B,3,224,224] -> (vertices [B,6890,3], joints [B,49,3], camera [B,3], pose [B,72], shape [B,10])."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images)["smpl_out"][-1]
        return out["verts"], out["kp_3d"], out["pred_cam"], out["theta"][:, 13:], out["pred_shape"]


def export_onnx(model: nn.Module, out_path: str | Path, batch_size: int = 1, opset: int = 17) -> Path:
    """Export ``model`` (eval mode is set) to ``out_path`` with a dynamic batch axis; returns the path."""
    model.eval()
    wrapper = ExportWrapper(model).eval()
    dummy = torch.randn(batch_size, 3, 224, 224)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    axes = {"images": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUT_NAMES}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)    # the TorchScript exporter is deprecated
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # shape checks traced as constants
        torch.onnx.export(wrapper, (dummy,), str(out_path), input_names=["images"], output_names=OUTPUT_NAMES,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    return out_path


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
