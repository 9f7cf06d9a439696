"""The exact inference rewrites (``pymaf.model.inference``, ``runtime.fuse``): same numbers as the straightforward
official forward to 1e-5 relative, for PyMAF and HMR, in fp32 with and without channels_last; the pre-cast bf16
convolution weights change nothing under autocast; the original model is left alone."""
from __future__ import annotations

import copy
import shutil

import pytest
import torch
from torch import nn

from pymaf.config import ModelConfig, RuntimeConfig
from pymaf.model import build_model
from pymaf.model.inference import PackedConv2d, SubpixelDeconv, can_pack_weights, fuse_for_inference
from pymaf.model.reference import reference_forward
from pymaf.runtime import FrozenCompiled, apply_runtime

KEYS = ("verts", "kp_3d", "kp_2d", "theta", "pred_cam")


def _trained_like_batchnorms(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Non-trivial affine parameters and frozen statistics measured on ``x`` (as training leaves them: each BN
    normalises what reaches it), so that folding them is really tested on activations of a realistic scale."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
            m.reset_running_stats()
            m.momentum = None                                  # cumulative average of this one pass
        model.train()
        model(x)
    for m in bns:
        m.momentum = 0.1
    return model.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


@pytest.fixture(scope="module")
def pymaf_model(body_files) -> nn.Module:
    torch.manual_seed(0)
    return _trained_like_batchnorms(build_model(ModelConfig(), body_files), torch.randn(4, 3, 224, 224))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("bias", [False, True])
def test_subpixel_deconv_equals_the_transposed_convolution(bias):
    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(24, 8, 4, stride=2, padding=1, bias=bias)
    x = torch.randn(3, 24, 5, 7)
    with torch.no_grad():
        ref, got = deconv(x), SubpixelDeconv(deconv)(x)
    assert got.shape == ref.shape == (3, 8, 10, 14)
    assert _rel(got, ref) < 1e-5


def test_subpixel_deconv_refuses_another_geometry():
    with pytest.raises(ValueError, match="k=4, stride=2, padding=1"):
        SubpixelDeconv(nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1))


def test_fused_pymaf_equals_the_official_forward(pymaf_model, images):
    before = {k: v.clone() for k, v in pymaf_model.state_dict().items()}
    fused = fuse_for_inference(pymaf_model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.feature_extractor.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.deconv_layers.modules())
    assert isinstance(fused.deconv_layers[0], SubpixelDeconv)            # 2048 -> 256: rewritten
    assert isinstance(fused.deconv_layers[3], nn.ConvTranspose2d)        # 256 -> 256: kept
    with torch.inference_mode():
        ref = reference_forward(pymaf_model, images)["smpl_out"]
        got = fused(images)["smpl_out"]
    for t in range(1, len(ref)):                                         # every iteration's parameters
        for key in ("pred_pose", "pred_shape", "pred_cam"):
            assert _rel(got[t][key], ref[t][key]) < 1e-5, (t, key)
    for key in KEYS:
        assert _rel(got[-1][key], ref[-1][key]) < 1e-5, key
    after = pymaf_model.state_dict()                                     # the original is untouched
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert any(isinstance(m, nn.BatchNorm2d) for m in pymaf_model.modules())


def test_eval_runtime_equals_the_official_forward(pymaf_model, images):
    """What eval.py runs by default (fuse + channels_last, fp32) is the protocol's forward to 1e-5."""
    runtime = RuntimeConfig()
    assert runtime.fuse and runtime.channels_last and runtime.amp == "none"
    net = apply_runtime(pymaf_model, runtime, inference=True)
    assert any(isinstance(m, PackedConv2d) for m in net.modules()) == can_pack_weights("cpu")
    with torch.inference_mode():
        ref = reference_forward(pymaf_model, images)["smpl_out"][-1]
        got = net(images)["smpl_out"][-1]
        again = net(images[:1])["smpl_out"][-1]  # another batch size than the one the weights were packed for
    pymaf_model.to(memory_format=torch.contiguous_format)
    for key in KEYS:
        assert _rel(got[key], ref[key]) < 1e-5, key
        assert _rel(again[key], ref[key][:1]) < 1e-5, key


@pytest.mark.skipif(not can_pack_weights("cpu"), reason="PyTorch without oneDNN")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_convolution_equals_the_convolution(dtype):
    """PackedConv2d (oneDNN weight packed once) = F.conv2d on channels_last inputs to float rounding (the same
    oneDNN convolution, mostly bit for bit; oneDNN may pick another kernel for a shape), at the batch size it was
    packed for and at others; strides, groups, dilation, no bias; bf16 as under autocast (input cast to bf16)."""
    torch.manual_seed(0)
    convs = [nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4),
             nn.Conv2d(16, 8, 1, bias=False), nn.Conv2d(3, 8, 7, stride=2, padding=3),
             nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), nn.ConvTranspose2d(16, 8, 3, 2, 1, output_padding=1)]
    same = 0
    for conv in convs:
        conv = conv.eval().to(memory_format=torch.channels_last)
        packed = PackedConv2d(conv, dtype).to(memory_format=torch.channels_last)
        for batch in (2, 1, 5):
            x = torch.randn(batch, conv.in_channels, 20, 20).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                ref, got = conv(x), packed(x)
            assert got.dtype == ref.dtype == dtype, (conv, batch)
            scale = ref.float().abs().max()
            tol = 1e-6 if dtype == torch.float32 else 8e-3  # bf16 outputs: one rounding step of 2^-8
            assert (got.float() - ref.float()).abs().max() <= tol * scale, (conv, batch)
            same += int(torch.equal(got, ref))
    assert same >= 9  # most cases are the very same kernel


def test_precast_bf16_weights_change_nothing_under_autocast(pymaf_model, images):
    plain, precast = fuse_for_inference(pymaf_model), fuse_for_inference(pymaf_model, torch.bfloat16)
    assert precast.feature_extractor.conv1.weight.dtype == torch.bfloat16
    assert precast.regressor[0].fc1.weight.dtype == torch.float32         # only the 2D convolutions
    nets = [plain, precast]
    if can_pack_weights("cpu"):  # the demo's CPU default: packed bf16 weights, channels_last
        nets.append(fuse_for_inference(pymaf_model, torch.bfloat16, pack_weights=True))
        assert isinstance(nets[-1].feature_extractor.conv1, PackedConv2d)
    x = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = [net.to(memory_format=torch.channels_last)(x)["smpl_out"][-1] for net in nets]
    for b in out[1:]:
        for key in KEYS:
            assert torch.allclose(out[0][key], b[key], rtol=0, atol=1e-6), key


def test_fused_hmr_equals_the_official_forward(body_files, images):
    torch.manual_seed(0)
    hmr = _trained_like_batchnorms(build_model(ModelConfig(arch="hmr"), body_files), torch.randn(4, 3, 224, 224))
    with torch.inference_mode():
        ref = reference_forward(hmr, images)["smpl_out"][-1]
        got = fuse_for_inference(hmr)(images)["smpl_out"][-1]
    for key in KEYS:
        assert _rel(got[key], ref[key]) < 1e-5, key


def test_fusing_a_training_model_is_refused(body_files):
    model = build_model(ModelConfig(backbone="resnet18"), body_files)      # training mode
    with pytest.raises(ValueError, match="eval mode"):
        fuse_for_inference(model)


def test_folded_batchnorm_matches_conv_then_bn():
    """The folding rule on a ResNet-style block: convK -> bnK children, and conv -> bn inside a Sequential."""
    torch.manual_seed(0)
    block = nn.Module()
    block.conv1, block.bn1 = nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5)
    block.downsample = nn.Sequential(nn.Conv2d(5, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
    x = torch.randn(2, 3, 6, 6)

    def run(m: nn.Module) -> torch.Tensor:
        return m.downsample(m.bn1(m.conv1(x)))

    block.forward = lambda inp: run(block)                     # for the calibration pass
    _trained_like_batchnorms(block, x)

    with torch.no_grad():
        ref, got = run(block), run(fuse_for_inference(block))
    assert _rel(got, ref) < 1e-5
    fused = fuse_for_inference(block)
    assert isinstance(fused.bn1, nn.Identity) and isinstance(fused.downsample[1], nn.Identity)


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="inductor needs a C++ compiler")
def test_compiled_inference_freezes_the_weights():
    """runtime.compile for inference: the same numbers, and the weights really are frozen (oneDNN pre-packed
    convolutions with fused ReLU in the compiled graph, not plain ``mkldnn_convolution`` calls)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    x = torch.randn(2, 3, 12, 12)
    compiled = apply_runtime(copy.deepcopy(net), RuntimeConfig(compile=True), inference=True)
    assert isinstance(compiled, FrozenCompiled)
    with torch.inference_mode():
        ref = net(x)
        compiled(x)
        with torch.profiler.profile() as prof:
            got = compiled(x)
    names = {e.key for e in prof.key_averages()}
    assert any("_convolution_pointwise" in n for n in names), sorted(names)
    assert _rel(got, ref) < 1e-5
