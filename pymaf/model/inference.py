"""Exact inference rewrites of a trained network (``runtime.fuse``; issue "Speed close to the hardware").

:func:`fuse_for_inference` returns a copy of an eval-mode PyMAF / HMR network that computes the same function to
float rounding (tested against :func:`pymaf.model.reference.reference_forward` to 1e-5 relative) with fewer, larger
operations:

* every BatchNorm that directly follows a convolution (the ResNet trunks' ``convK``/``bnK`` and ``downsample``
  pairs, the deconv pyramid's ConvTranspose → BN) is folded into that convolution's weight and bias
  (``torch.nn.utils.fusion.fuse_conv_bn_eval``), so its pass over the feature map disappears;
* a stride-2 4×4 transposed convolution whose input has more channels than its output (the pyramid's first
  stage on the 2048-channel backbone map) becomes :class:`SubpixelDeconv`: one 2×2 convolution with 4× the output
  channels on the 1-padded input, then an interleave of its four phases. It measured faster than PyTorch's
  ConvTranspose2d on the CPU for that shape (2048→256 at 7×7) in fp32 and bf16, both memory formats, batch 1 and
  8; for the 256→256 stages it measured as fast or slower, so they stay.

* on the CPU (``pack_weights``, channels_last inputs), every 2D (transposed) convolution becomes
  :class:`PackedConv2d`: its weight is stored in oneDNN's blocked layout once instead of being reordered by eager
  PyTorch at every call (the same oneDNN convolution: equal to float rounding, mostly bit for bit).

The copy is for inference only (no BatchNorm statistics left to train) and its state dict no longer has the
official layout: keep the original for ``state_dict`` / checkpoints.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

_CONVS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d)

# Output phase a of a stride-2, 4×4, padding-1 transposed convolution reads input rows (i-1+a, i+a) with kernel
# rows PHASE_TAPS[a] (out[2i+a] = Σ_k in[(2i+a+1-k)/2]·w[k] over the k of the right parity).
PHASE_TAPS = {0: (3, 1), 1: (2, 0)}


class SubpixelDeconv(nn.Module):
    """``ConvTranspose2d(C, C', 4, stride=2, padding=1)`` as one 2×2 convolution C → 4C' on the 1-padded input
    (output phase (a, b) = channel group 2a+b, window offset (a, b)) and an interleave: [B,C,H,W] -> [B,C',2H,2W].
    Same numbers as the transposed convolution up to float summation order."""

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not (deconv.kernel_size == (4, 4) and deconv.stride == (2, 2) and deconv.padding == (1, 1)
                and deconv.output_padding == (0, 0) and deconv.groups == 1 and deconv.dilation == (1, 1)):
            raise ValueError(f"SubpixelDeconv takes ConvTranspose2d(k=4, stride=2, padding=1) only, got {deconv}")
        w = deconv.weight.detach()                                             # [C, C', 4, 4]
        phases = [w[:, :, list(PHASE_TAPS[a])][:, :, :, list(PHASE_TAPS[b])].transpose(0, 1)
                  for a in (0, 1) for b in (0, 1)]                             # 4 × [C', C, 2, 2]
        self.out_channels = w.shape[1]
        self.conv = nn.Conv2d(w.shape[0], 4 * w.shape[1], 2, bias=deconv.bias is not None).to(w)
        self.conv.weight.copy_(torch.cat(phases))                             # [4C', C, 2, 2]
        if deconv.bias is not None:
            self.conv.bias.copy_(deconv.bias.detach().repeat(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y = self.conv(F.pad(x, (1, 1, 1, 1)))                                  # [B,4C',H+1,W+1]
        y = y.unflatten(1, (2, 2, self.out_channels))                          # [B,2,2,C',H+1,W+1]
        rows = [torch.stack([y[:, a, c, :, a:a + h, c:c + w] for c in (0, 1)], dim=-1) for a in (0, 1)]
        return torch.stack(rows, dim=3).reshape(b, self.out_channels, 2 * h, 2 * w)   # [B,C',H,2,W,2] -> 2H, 2W


class PackedConv2d(nn.Module):
    """A CPU ``nn.Conv2d`` or ``nn.ConvTranspose2d`` run by oneDNN directly with its weight in oneDNN's blocked
    layout, reordered once (on the first call, for that input shape; any other shape still computes correctly).
    Eager PyTorch reorders the plain weight at every call, which is much of a small batch's convolution time
    (torchvision ResNet-50 at batch 1, 2-core AVX-512 CPU: 75 -> 53 ms fp32, 42 -> 28 ms bf16; the pyramid's
    256-channel deconvolution at 28x28: 16 -> 9 ms fp32). For channels_last inputs it runs the oneDNN
    convolution ``F.conv2d`` runs: equal to float rounding, mostly bit for bit (oneDNN may pick another kernel
    for a shape; tested). ``dtype``: the dtype the convolution runs in; the input is cast to it, as autocast
    casts a convolution's input (bf16 under bf16 autocast)."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"PackedConv2d takes zero-padded convolutions with numeric padding, got {conv}")
        dtype = dtype or conv.weight.dtype
        self.weight = nn.Parameter(conv.weight.detach().to(dtype), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().to(dtype), requires_grad=False) if conv.bias is not None else None
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        extra = [list(conv.output_padding)] if self.transposed else []  # the transposed ops' argument order
        self.args = (list(conv.padding), *extra, list(conv.stride), list(conv.dilation), conv.groups)
        self._packed: torch.Tensor | None = None  # the oneDNN weight (opaque layout: not a parameter or buffer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.dtype).contiguous(memory_format=torch.channels_last)  # a no-op for channels_last
        ops = torch.ops.mkldnn
        if self._packed is None:
            reorder = ops._reorder_convolution_transpose_weight if self.transposed else ops._reorder_convolution_weight
            self._packed = reorder(self.weight, *self.args, list(x.shape))
        run = ops._convolution_transpose_pointwise if self.transposed else ops._convolution_pointwise
        return run(x, self._packed, self.bias, *self.args, "none", [], "")


def can_pack_weights(device: torch.device | str) -> bool:
    """Whether :class:`PackedConv2d` runs here: a CPU device and PyTorch built with oneDNN."""
    return torch.device(device).type == "cpu" and torch.backends.mkldnn.is_available()


def _pack_convs(module: nn.Module, dtype: torch.dtype | None) -> None:
    for name, child in module.named_children():
        if (isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)) and child.padding_mode == "zeros"
                and not isinstance(child.padding, str)):
            setattr(module, name, PackedConv2d(child, dtype))
        else:
            _pack_convs(child, dtype)


def _fold_batchnorms(module: nn.Module) -> None:
    """Fold, in place and recursively, each BatchNorm into the convolution it follows: ``convK`` → ``bnK``
    children (torchvision ResNet blocks and trunk), or consecutive entries of an ``nn.Sequential``."""
    names = dict(module.named_children())
    pairs: list[tuple[str, str]] = []
    if isinstance(module, nn.Sequential):
        keys = list(names)
        pairs += [(a, b) for a, b in zip(keys, keys[1:]) if isinstance(names[a], _CONVS) and isinstance(names[b], _BNS)]
    pairs += [(n, "bn" + n[4:]) for n in names if n.startswith("conv") and isinstance(names[n], _CONVS)
              and isinstance(names.get("bn" + n[4:]), _BNS)]
    for conv_name, bn_name in pairs:
        conv, bn = getattr(module, conv_name), getattr(module, bn_name)
        if isinstance(bn, nn.Identity):   # already folded (a name pair met twice)
            continue
        setattr(module, conv_name, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d)))
        setattr(module, bn_name, nn.Identity())
    for child in module.children():
        _fold_batchnorms(child)


def _subpixel_deconvs(module: nn.Module) -> None:
    """Replace, in place and recursively, the channel-reducing stride-2 4×4 transposed convolutions."""
    for name, child in module.named_children():
        if (isinstance(child, nn.ConvTranspose2d) and child.kernel_size == (4, 4) and child.stride == (2, 2)
                and child.padding == (1, 1) and child.output_padding == (0, 0) and child.groups == 1
                and child.in_channels > child.out_channels):
            setattr(module, name, SubpixelDeconv(child))
        else:
            _subpixel_deconvs(child)


@torch.no_grad()
def fuse_for_inference(model: nn.Module, conv_dtype: torch.dtype | None = None,
                       pack_weights: bool = False) -> nn.Module:
    """A copy of ``model`` (in eval mode) with its BatchNorms folded and its channel-reducing stride-2 deconvs as
    :class:`SubpixelDeconv` (module docstring). ``model`` itself is not changed. Raises ValueError for a model
    in training mode (folding needs the frozen statistics).

    ``conv_dtype`` (the autocast dtype the copy will run under, e.g. bf16): the 2D convolutions' weights and
    biases are stored in it, cast once instead of by autocast at every call; autocast casts them to exactly the
    same values, so the outputs do not change.

    ``pack_weights`` (CPU only, see :func:`can_pack_weights`; for channels_last inputs, not for torch.compile,
    which packs its own): the 2D convolutions and transposed convolutions become :class:`PackedConv2d`."""
    if model.training:
        raise ValueError("fuse_for_inference needs a model in eval mode (call model.eval() first)")
    fused = copy.deepcopy(model)
    _fold_batchnorms(fused)
    _subpixel_deconvs(fused)
    if pack_weights:
        if not all(can_pack_weights(d) for d in {p.device for p in model.parameters()} | {torch.device("cpu")}):
            raise ValueError("pack_weights: the model must be on the CPU and PyTorch built with oneDNN")
        _pack_convs(fused, conv_dtype)
    if conv_dtype is not None:
        for mod in fused.modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                mod.to(conv_dtype)
    for p in fused.parameters():
        p.requires_grad_(False)
    return fused
