"""ONNX export of PyMAF or HMR (the library behind ``scripts/export_onnx.py``): images [B,3,224,224] -> SMPL.

Outputs (float32; B is a dynamic axis): ``vertices`` [B,6890,3] (model frame), ``joints`` [B,49,3] (spec §2.2),
``camera`` [B,3] crop camera (s, tx, ty) (spec §1.8), ``pose`` [B,72] axis-angle, ``shape`` [B,10] betas.
The graph is the fast inference path (precomputed mean mesh, 431-vertex sparse LBS, no IUV head).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

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

