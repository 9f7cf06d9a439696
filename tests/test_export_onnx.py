"""ONNX export: onnxruntime on CPU matches PyTorch to 1e-4 on the built-in body model (dynamic batch)."""
from __future__ import annotations

import pytest
import torch

from pymaf.config import ModelConfig
from pymaf.model import build_model
from pymaf.onnx_export import OUTPUT_NAMES, ExportWrapper, export_onnx

ort = pytest.importorskip("onnxruntime")


def test_onnx_matches_pytorch(body_files, tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(), body_files).eval()
    path = export_onnx(model, tmp_path / "pymaf.onnx", batch_size=1)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))   # batch 2: dynamic axis
    with torch.no_grad():
        ref = ExportWrapper(model)(images)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(OUTPUT_NAMES, {"images": images.numpy()})
    shapes = [(2, 6890, 3), (2, 49, 3), (2, 3), (2, 72), (2, 10)]
    for name, a, b, shape in zip(OUTPUT_NAMES, ref, got, shapes):
        assert tuple(b.shape) == shape, name
        assert abs(a.numpy() - b).max() < 1e-4, name
