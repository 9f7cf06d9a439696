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
        self.weight = nn.Parameter(torch.cat(phases).contiguous(), requires_grad=False)   # [4C', C, 2, 2]
        bias = deconv.bias.detach().repeat(4) if deconv.bias is not None else None
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias)           # [B,4C',H+1,W+1]
        y = y.unflatten(1, (2, 2, self.out_channels))                          # [B,2,2,C',H+1,W+1]
        rows = [torch.stack([y[:, a, c, :, a:a + h, c:c + w] for c in (0, 1)], dim=-1) for a in (0, 1)]
        return torch.stack(rows, dim=3).reshape(b, self.out_channels, 2 * h, 2 * w)   # [B,C',H,2,W,2] -> 2H, 2W


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
def fuse_for_inference(model: nn.Module, conv_dtype: torch.dtype | None = None) -> nn.Module:
    """A copy of ``model`` (in eval mode) with its BatchNorms folded and its channel-reducing stride-2 deconvs as
    :class:`SubpixelDeconv` (module docstring). ``model`` itself is not changed. Raises ValueError for a model
    in training mode (folding needs the frozen statistics).

    ``conv_dtype`` (the autocast dtype the copy will run under, e.g. bf16): the 2D convolutions' weights and
    biases are stored in it, cast once instead of by autocast at every call; autocast casts them to exactly the
    same values, so the outputs do not change."""
    if model.training:
        raise ValueError("fuse_for_inference needs a model in eval mode (call model.eval() first)")
    fused = copy.deepcopy(model)
    _fold_batchnorms(fused)
    _subpixel_deconvs(fused)
    if conv_dtype is not None:
        for mod in fused.modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, SubpixelDeconv)):
                mod.to(conv_dtype)
    for p in fused.parameters():
        p.requires_grad_(False)
    return fused
