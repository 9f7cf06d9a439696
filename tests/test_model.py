"""PyMAF / HMR network contract: names and shapes of the official layout, output shapes, gradients, the fast
inference path against the straightforward one, runtime options. One model per module (ResNet-50 on CPU)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pymaf.config import ModelConfig, RuntimeConfig
from pymaf.checkpoint import own_names
from pymaf.model import FULL_KEYS, HMR, PyMAF, build_model
from pymaf.runtime import apply_runtime
from pymaf.model.pyramid import make_points_grid
from pymaf.model.reference import reference_forward

LAYOUT = Path(__file__).resolve().parent / "data" / "official_state_dict_layout.json"  # copy of shared/reference/
B = 2
FULL_SHAPES = {"theta": (85,), "verts": (6890, 3), "kp_2d": (49, 2), "kp_3d": (49, 3), "smpl_kp_3d": (24, 3),
               "rotmat": (24, 3, 3), "pred_cam": (3,), "pred_shape": (10,), "pred_pose": (144,)}


def _layout(variant: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(s) for k, s, _ in json.loads(LAYOUT.read_text())[variant]["state_dict"]}


@pytest.fixture(scope="module")
def model(body_files) -> PyMAF:
    torch.manual_seed(0)
    return build_model(ModelConfig(), body_files).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(B, 3, 224, 224, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def dmap(model) -> torch.Tensor:
    ids = model.vertex_ids
    d = torch.zeros(len(ids), 6890)
    d[torch.arange(len(ids)), ids] = 1.0
    return d


def test_state_dict_matches_official_layout(model):
    """Every official entry except the known redundant ones (§10.10-11) exists here with the same shape."""
    official = _layout("maf_off")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    redundant = {k for k in official if ".smpl." in k or k.endswith(".Dmap") or k == "points_grid"
                 or ".init_" in k}
    assert set(official) - redundant == set(ours) - {"init_pose", "init_shape", "init_cam"}
    assert all(ours[k] == official[k] for k in set(official) - redundant)
    assert ours["init_pose"] == official["regressor.0.init_pose"]
    assert not any("smpl" in k or k.startswith("mean_") for k in ours)       # no SMPL arrays, no caches
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == json.loads(LAYOUT.read_text())["maf_off"]["total_params_excl_smpl_placeholders"]
    # grid order of §1.4: point k = 21 i + j has x = lin[i], y = lin[j]
    grid = make_points_grid(21)
    lin = torch.linspace(-1, 1, 21)
    assert torch.equal(grid[0, :, 21 * 3 + 5], torch.stack((lin[3], lin[5])))


def test_eval_output_contract(model, images):
    with torch.no_grad():
        out = model(images)
    assert out["dp_out"] == []
    smpl_out = out["smpl_out"]
    assert len(smpl_out) == 4
    for o in (smpl_out[0], smpl_out[-1]):
        assert set(o) == set(FULL_KEYS)
        for k, shape in FULL_SHAPES.items():
            assert tuple(o[k].shape) == (B, *shape), k
            assert o[k].dtype == torch.float32 and torch.isfinite(o[k]).all(), k
    for o in smpl_out[1:-1]:                                   # sparse intermediate outputs
        assert tuple(o["verts_431"].shape) == (B, 431, 3)
        assert tuple(o["pred_pose"].shape) == (B, 144) and tuple(o["rotmat"].shape) == (B, 24, 3, 3)
    final = smpl_out[-1]
    assert torch.allclose(final["theta"][:, :3], final["pred_cam"]) and torch.allclose(final["theta"][:, 3:13],
                                                                                       final["pred_shape"])
    assert tuple(model.h36m_joints(final["verts"]).shape) == (B, 17, 3)
    assert tuple(model.lsp14_joints(final["verts"]).shape) == (B, 14, 3)


def _assert_outs_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    for k in a:
        if k != "verts_431":
            assert torch.allclose(a[k], b[k], atol=atol, rtol=1e-5), (k, (a[k] - b[k]).abs().max().item())


def test_fast_path_equals_straightforward(model, images, dmap):
    """Precomputed mean mesh + sparse 431-vertex LBS + index selection == full SMPL everywhere + dense Dmap."""
    with torch.no_grad():
        fast = model(images)["smpl_out"]
        full = model(images, full_outputs=True)["smpl_out"]
        ref_out = reference_forward(model, images, dmap=dmap)
    ref = ref_out["smpl_out"]
    assert len(ref_out["dp_out"]) == 1                          # the official path runs the IUV head
    assert len(fast) == len(full) == len(ref)
    for t, (f, r) in enumerate(zip(fast, ref)):
        _assert_outs_close(f, r)
        if "verts_431" in f:
            assert torch.allclose(f["verts_431"], r["verts"][:, model.vertex_ids], atol=1e-5), t
    for f, r in zip(full, ref):
        assert set(f) == set(FULL_KEYS)
        _assert_outs_close(f, r)


def test_training_outputs_and_every_parameter_gets_a_gradient(model, images):
    model.train()
    try:
        model.zero_grad(set_to_none=True)
        out = model(images)
        assert len(out["dp_out"]) == 1
        iuv = out["dp_out"][0]
        assert {k: tuple(v.shape) for k, v in iuv.items()} == {
            "predict_u": (B, 25, 56, 56), "predict_v": (B, 25, 56, 56),
            "predict_uv_index": (B, 25, 56, 56), "predict_ann_index": (B, 15, 56, 56)}
        loss = sum(v.sum() for v in iuv.values())
        for o in out["smpl_out"][1:]:
            assert set(o) == set(FULL_KEYS)
            loss = loss + sum(o[k].sum() for k in ("verts", "kp_2d", "kp_3d", "pred_cam", "pred_shape", "pred_pose"))
        loss.backward()
        no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not no_grad, no_grad
        assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.startswith("regressor.0.fc1"))
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_detaching_rules(model, images):
    """§1.10: no gradient reaches regressor k < t from iteration t's output through the parameter state."""
    model.train()
    try:
        model.zero_grad(set_to_none=True)
        model(images)["smpl_out"][-1]["pred_pose"].sum().backward()
        assert all(p.grad is None for n, p in model.named_parameters() if n.startswith(("regressor.0.", "regressor.1.")))
        assert model.regressor[2].fc1.weight.grad is not None
        assert model.deconv_layers[0].weight.grad is not None          # the feature chain is not detached
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_mean_output_follows_loaded_init(model, images):
    state = model.state_dict()
    new_shape = state["init_shape"] + 0.5
    try:
        model.load_state_dict({**state, "init_shape": new_shape})
        expect = model.full_output(model.init_pose, model.init_shape, model.init_cam)
        assert torch.allclose(model.mean_verts, expect["verts"], atol=1e-6)
        with torch.no_grad():
            out0 = model(images)["smpl_out"][0]
        assert torch.allclose(out0["pred_shape"], new_shape.expand(B, -1))
    finally:
        model.load_state_dict(state)


def test_runtime_options(model, images):
    """channels_last is exact; bf16 autocast keeps the SMPL part in float32 and stays close."""
    with torch.no_grad():
        ref = model(images)["smpl_out"][-1]
        cl = apply_runtime(model, RuntimeConfig(channels_last=True))(images)["smpl_out"][-1]
        model.to(memory_format=torch.contiguous_format)
        bf = apply_runtime(model, RuntimeConfig(amp="bf16", channels_last=False))(images)["smpl_out"][-1]
    assert torch.allclose(cl["verts"], ref["verts"], atol=1e-4)
    assert bf["verts"].dtype == torch.float32
    assert (bf["verts"] - ref["verts"]).abs().max() < 0.05


def test_hmr_contract(body_files, images):
    torch.manual_seed(0)
    hmr = build_model(ModelConfig(arch="hmr"), body_files)
    assert isinstance(hmr, HMR)
    ours = {k: tuple(v.shape) for k, v in hmr.state_dict().items()}
    assert ours == own_names(_layout("hmr"))                    # SPIN's flat names, mapped onto our children
    hmr.eval()
    with torch.no_grad():
        out = hmr(images)
        ref = reference_forward(hmr, images)
    assert len(out["smpl_out"]) == 2 and out["dp_out"] == []
    for k, shape in FULL_SHAPES.items():
        assert tuple(out["smpl_out"][-1][k].shape) == (B, *shape)
        for t in (0, 1):
            assert torch.allclose(out["smpl_out"][t][k], ref["smpl_out"][t][k], atol=1e-5), (t, k)
    hmr.train()
    out = hmr(images)["smpl_out"][-1]
    (out["verts"].sum() + out["kp_2d"].sum()).backward()
    assert all(p.grad is not None for p in hmr.parameters())


def test_model_config_validation(body_files):
    with pytest.raises(ValueError, match="n_iter"):
        build_model(ModelConfig(n_iter=4), body_files)
    with pytest.raises(ValueError, match="arch"):
        build_model(ModelConfig(arch="vit"), body_files)


def test_fast_lbs_gradients_match_smpl_layer(model):
    """Training also runs FastLBS: its gradients w.r.t. pose and shape equal the SMPL layer's."""
    g = torch.Generator().manual_seed(4)
    pose = (model.init_pose.expand(B, -1) + 0.3 * torch.randn(B, 144, generator=g)).requires_grad_(True)
    shape = torch.randn(B, 10, generator=g).requires_grad_(True)
    cam = model.init_cam.expand(B, -1)
    grads = []
    for smpl_layer in (True, False):
        out = model.full_output(pose, shape, cam, smpl_layer=smpl_layer)
        loss = (out["verts"] * torch.linspace(0, 1, 3)).sum() + out["kp_3d"].square().sum() + out["kp_2d"].sum()
        grads.append(torch.autograd.grad(loss, (pose, shape)))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4), (a - b).abs().max().item()


def test_maf_last_slope_keeps_a_signal_where_relu_is_dead():
    """model.maf_last_slope: with every output pre-activation negative (a dead ReLU), 0 (ReLU) gives zeros and no
    gradient to the extractor; 0.2 gives 0.2 x and a gradient. Same parameters either way."""
    from pymaf.config import load_config
    from pymaf.model.maf_extractor import MAFExtractor
    torch.manual_seed(0)
    relu, leaky = MAFExtractor([8, 4, 3]), MAFExtractor([8, 4, 3], 0.2)
    leaky.load_state_dict(relu.state_dict())
    with torch.no_grad():
        for m in (relu, leaky):
            m.conv1.bias.fill_(-100.0)                                       # every output negative
    feat = torch.randn(2, 8, 5, 5)
    points = torch.rand(2, 7, 2) * 2 - 1
    out_relu, out_leaky = relu(feat, points), leaky(feat, points)
    assert out_relu.shape == out_leaky.shape == (2, 3 * 7) and torch.all(out_relu == 0)
    assert torch.all(out_leaky < -0.2 * 50)                                  # 0.2 x the pre-activations
    out_leaky.sum().backward()
    out_relu.sum().backward()
    assert relu.conv0.weight.grad.abs().sum() == 0 and leaky.conv0.weight.grad.abs().sum() > 0
    assert load_config(None, ["model.maf_last_slope=0.2"]).model.maf_last_slope == 0.2
    with pytest.raises(ValueError, match="model.maf_last_slope"):
        load_config(None, ["model.maf_last_slope=2"])
