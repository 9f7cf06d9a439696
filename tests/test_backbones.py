"""The backbone seam (``model.backbone``): every registered trunk's contract, its ImageNet file, depth inference
from a state dict, and small backbones trained through the real trainer on the quickstart recipe whose
checkpoints come back through ``pymaf.load_model`` with the backbone inferred."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from pymaf.checkpoint import infer_model_config, own_names, read_checkpoint
from pymaf.config import ModelConfig, load_config
from pymaf.model.backbone import BACKBONES, ResNetTrunk, build_backbone, find_imagenet_weights, infer_backbone
from test_train import _make_tiny_dataset

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
CHANNELS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048}


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_registered_resnets_and_their_depth_is_inferred(name):
    module, channels = build_backbone(ModelConfig(backbone=name))
    assert channels == module.out_channels == CHANNELS[name]
    state = module.state_dict()
    assert infer_backbone({f"feature_extractor.{k}": v for k, v in state.items()}) == name
    assert infer_backbone(own_names(state)) == name                      # SPIN's flat HMR names
    depth = int(name[len("resnet"):])
    url = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1.url
    assert module.imagenet_url == url and module.imagenet_files[0] == url.rsplit("/", 1)[1]
    if name in ("resnet18", "resnet101"):
        with torch.no_grad():
            fmap, pooled = module.eval()(torch.randn(1, 3, 224, 224))
        assert tuple(fmap.shape) == (1, channels, 7, 7) and torch.allclose(pooled, fmap.mean(dim=(2, 3)))


def test_registry_names_and_imagenet_file_lookup(tmp_path, monkeypatch):
    assert set(BACKBONES) == set(CHANNELS)
    with pytest.raises(ValueError, match="model.backbone must be one of"):
        build_backbone(ModelConfig(backbone="resnet19"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    trunk = ResNetTrunk(18)
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth"):
        find_imagenet_weights(trunk, tmp_path)
    (tmp_path / "pretrained_model").mkdir()
    (tmp_path / "pretrained_model" / "resnet18-f37072fd.pth").write_bytes(b"")
    assert find_imagenet_weights(trunk, tmp_path).name == "resnet18-f37072fd.pth"
    assert ResNetTrunk(50).imagenet_files == ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth")
    state = {f"feature_extractor.{k}": v for k, v in trunk.state_dict().items()} | {"regressor.fc1.weight": 0}
    assert infer_model_config(state)["backbone"] == "resnet18"
    assert infer_model_config(state, {"config": {"model": {"backbone": "mynet"}}})["backbone"] == "mynet"  # trainer's


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, body_root: Path) -> Path:
    root = tmp_path_factory.mktemp("backbone_data")
    _make_tiny_dataset(root, body_root)
    return root


@pytest.mark.parametrize("arch", ["pymaf", "hmr"])
def test_small_backbone_trains_on_quickstart_and_round_trips(arch, data_root, tmp_path):
    import pymaf
    from pymaf.train import Trainer
    cfg = load_config(QUICKSTART, [
        f"model.arch={arch}", "model.backbone=resnet18", "model.n_iter=2", "data.num_workers=0",
        "eval.num_workers=0", "train.batch_size=2", "train.max_steps=2", "train.epoch_length=2",
        "train.val_every=0", "train.val_at_end=false", f"train.log_dir={tmp_path}"])
    tr = Trainer(cfg, data_root, progress=False)
    result = tr.fit()
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    assert tr.model.feature_extractor.out_channels == 512
    path = tmp_path / "checkpoints" / "latest.pt"
    assert infer_model_config(*read_checkpoint(path))["backbone"] == "resnet18"
    loaded = pymaf.load_model(path, data_root=data_root)                   # backbone and sizes inferred
    if arch == "pymaf":                                                     # and the quickstart's maf_last_slope
        assert [m.last_slope for m in loaded.maf_extractor] == [cfg.model.maf_last_slope] * 2 != [0.0] * 2
    assert loaded.feature_extractor.input_res == tr.model.feature_extractor.input_res == cfg.model.input_res
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = tr.model.eval()(images)["smpl_out"][-1], loaded(images)["smpl_out"][-1]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_input_res_resizes_the_crops_inside_the_backbone():
    """model.input_res: a 224 crop goes through the trunk as its antialiased bilinear resize to input_res (the same
    numbers as resizing first); 224 leaves the input alone; a backbone without ``input_res`` refuses another size,
    and the IUV head needs input_res = 4 x dp_heatmap_size."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    small, _ = build_backbone(ModelConfig(backbone="resnet18", input_res=128))
    full, _ = build_backbone(ModelConfig(backbone="resnet18"))
    full.load_state_dict(small.state_dict())
    small.eval()
    full.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert full(x)[0].shape == (2, 512, 7, 7)
        full.input_res = 128                                                 # takes 128 inputs as they are
        (m_small, g_small), (m_ref, g_ref) = small(x), full(F.interpolate(x, size=(128, 128), mode="bilinear",
                                                                           align_corners=False, antialias=True))
    assert m_small.shape == (2, 512, 4, 4)
    assert torch.allclose(m_small, m_ref, atol=1e-6) and torch.allclose(g_small, g_ref, atol=1e-6)
    BACKBONES["fixed"] = lambda: type("Fixed", (torch.nn.Module,), {"out_channels": 8})()
    try:
        with pytest.raises(ValueError, match="model.input_res=128: backbone 'fixed' takes 224 only"):
            build_backbone(ModelConfig(backbone="fixed", input_res=128))
    finally:
        del BACKBONES["fixed"]
    with pytest.raises(ValueError, match="input_res=128 with model.aux_supv_on"):
        load_config(None, ["model.input_res=128"])
    assert load_config(None, ["model.input_res=128", "model.aux_supv_on=false"]).model.input_res == 128
