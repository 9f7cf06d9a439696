"""Checkpoints: our round trip, files that mimic the official PyMAF and SPIN key sets (generated from the layout
JSON), error reports, ImageNet backbone lookup, and ``pymaf.load_model``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from pymaf.body.joints import IDX431
from pymaf.checkpoint import CheckpointError, infer_model_config, load_checkpoint, read_checkpoint, \
    save_model_checkpoint
from pymaf.config import ModelConfig
from pymaf.model import build_model
from pymaf.model.backbone import ResNetTrunk, find_imagenet_weights
from pymaf.model.pyramid import make_points_grid

LAYOUT = Path(__file__).resolve().parent / "data" / "official_state_dict_layout.json"  # copy of shared/reference/


@pytest.fixture(scope="module")
def layout() -> dict:
    return json.loads(LAYOUT.read_text())


@pytest.fixture(scope="module")
def model(body_files):
    torch.manual_seed(0)
    return build_model(ModelConfig(), body_files).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))


def fake_state(entries: list, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the layout's names/shapes/dtypes; the constant official buffers made consistent."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape, dtype in entries:
        if dtype == "int64":
            state[name] = torch.randint(0, 100, shape, generator=g)
        else:
            state[name] = torch.randn(shape, generator=g) * 0.01
    for k in [k for k in state if k.endswith(".Dmap")]:
        d = torch.zeros(431, 6890)
        d[torch.arange(431), torch.tensor(IDX431)] = 1.0
        state[k] = d
    if "points_grid" in state:
        state["points_grid"] = make_points_grid(21)
    for key in ("init_pose", "init_shape", "init_cam"):
        for k in (1, 2):
            if f"regressor.{k}.{key}" in state:
                state[f"regressor.{k}.{key}"] = state[f"regressor.0.{key}"].clone()
    return state


def _final(model, images) -> dict:
    with torch.no_grad():
        return model(images)["smpl_out"][-1]


def test_save_load_round_trip(model, images, body_files, tmp_path):
    path = tmp_path / "ckpt" / "model.pt"
    save_model_checkpoint(path, model, extra={"step": 7, "config": {"lr": 1e-4}})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]            # no temp file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 7 and raw["arch"] == "pymaf"
    assert not any("smpl" in k for k in raw["model"])                          # no SMPL arrays in our files
    assert not any(6890 in v.shape for v in raw["model"].values())
    torch.manual_seed(123)
    other = build_model(ModelConfig(), body_files).eval()
    report = load_checkpoint(other, path)
    assert report.source == "pymaf" and not report.skipped
    a, b = _final(model, images), _final(other, images)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="reserved"):
        save_model_checkpoint(path, model, extra={"model": 1})


def test_fake_official_checkpoint_loads_and_reports_skips(model, layout, tmp_path):
    state = fake_state(layout["maf_off"]["state_dict"])
    path = tmp_path / "PyMAF_model_checkpoint.pt"
    torch.save({"model": state, "optimizer": {}, "epoch": 3}, path)
    backup = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        report = load_checkpoint(model, path)
        assert report.source == "official-pymaf"
        assert report.loaded == len(model.state_dict()) == 395
        assert len(report.skipped) == 441 - 395
        assert sum(".smpl." in k for k in report.skipped) == 36
        assert sum(k.endswith(".Dmap") for k in report.skipped) == 3
        assert "points_grid" in report.skipped and "regressor.1.init_pose" in report.skipped
        text = report.summary()
        assert "Dmap" in text and "SMPL" in text
        assert any("v_template" in n for n in report.notes)                     # random SMPL != the loaded one
        sd = model.state_dict()
        assert torch.equal(sd["regressor.1.fc1.weight"], state["regressor.1.fc1.weight"])
        assert torch.equal(sd["init_pose"], state["regressor.0.init_pose"])
        # the precomputed mean output follows the loaded init_* (post-load hook)
        expect = model.full_output(model.init_pose, model.init_shape, model.init_cam)["verts"]
        assert torch.allclose(model.mean_verts, expect, atol=1e-6)
        assert infer_model_config(*read_checkpoint(path)) == {
            "arch": "pymaf", "backbone": "resnet50", "n_iter": 3, "mlp_dim": [256, 128, 64, 5], "deconv_filters": [256, 256, 256],
            "deconv_kernels": [4, 4, 4], "aux_supv_on": True}
    finally:
        model.load_state_dict(backup)


def test_missing_unexpected_and_mismatched_keys_are_named(model, layout):
    state = fake_state(layout["maf_off"]["state_dict"])
    del state["regressor.2.fc2.bias"]
    state["regressor.0.extra_head.weight"] = torch.zeros(3)
    state["dp_head.predict_u.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, {"model": state})
    msg = str(err.value)
    assert "regressor.2.fc2.bias" in msg and "regressor.0.extra_head.weight" in msg
    assert "dp_head.predict_u.bias" in msg and "missing" in msg and "unexpected" in msg


def test_official_dmap_must_select_our_vertices(model, layout):
    state = fake_state(layout["maf_off"]["state_dict"])
    state["maf_extractor.1.Dmap"] = state["maf_extractor.1.Dmap"].roll(1, dims=1)
    with pytest.raises(CheckpointError, match="maf_extractor.1.Dmap"):
        load_checkpoint(model, {"model": state})


def test_fake_spin_checkpoint_loads_into_hmr(body_files, layout, images, tmp_path):
    torch.manual_seed(0)
    hmr = build_model(ModelConfig(arch="hmr"), body_files).eval()
    state = fake_state(layout["hmr"]["state_dict"], seed=5)
    path = tmp_path / "model_checkpoint.pt"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}, path)
    report = load_checkpoint(hmr, path)
    assert report.source == "spin-hmr" and report.loaded == 331 and not report.skipped
    assert torch.equal(hmr.state_dict()["regressor.fc1.weight"], state["fc1.weight"])
    assert infer_model_config(*read_checkpoint(path)) == {"arch": "hmr", "backbone": "resnet50"}
    with pytest.raises(CheckpointError, match="arch='pymaf'"):
        load_checkpoint(hmr, {"model": fake_state(layout["maf_off"]["state_dict"])})


def test_load_model_api(model, images, body_root, tmp_path):
    import pymaf

    path = tmp_path / "ours.pt"
    save_model_checkpoint(path, model)
    loaded = pymaf.load_model(path, data_root=body_root)
    assert not loaded.training
    a, b = _final(model, images), _final(loaded, images)
    assert all(torch.allclose(a[k], b[k]) for k in a)
    fresh = pymaf.load_model(data_root=body_root, cfg=ModelConfig(arch="hmr"))
    assert type(fresh).__name__ == "HMR" and not fresh.training


def test_imagenet_backbone_lookup(body_files, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError, match="resnet50-0676ba61.pth"):
        find_imagenet_weights(ResNetTrunk(50), tmp_path)
    net = torchvision.models.resnet50(weights=None)
    (tmp_path / "pretrained_model").mkdir()
    torch.save(net.state_dict(), tmp_path / "pretrained_model" / "resnet50-0676ba61.pth")
    model = build_model(ModelConfig(backbone_weights="imagenet"), body_files, data_root=tmp_path)
    assert torch.equal(model.feature_extractor.layer3[2].conv2.weight, net.layer3[2].conv2.weight)
    assert torch.equal(model.feature_extractor.bn1.running_var, net.bn1.running_var)
