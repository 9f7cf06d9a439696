"""Deconvolution feature pyramid (spec §1.3) and the fixed 21×21 sampling grid of iteration 0 (spec §1.4)."""
from __future__ import annotations

import torch
from torch import nn

_KERNEL_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}  # kernel -> (padding, output_padding); each doubles H, W


def make_deconv_layers(in_channels: int, filters: list[int], kernels: list[int]) -> nn.Sequential:
    """[ConvTranspose2d(k, stride 2, no bias) → BN → ReLU] × len(filters), flattened into one Sequential.

    With the defaults (2048 → 256, 256, 256; k = 4) the official ``deconv_layers.0..8`` come out, maps
    7 → 14 → 28 → 56. PyTorch default init (spec §1.12).
    """
    if len(filters) != len(kernels):
        raise ValueError(f"deconv_filters {filters} and deconv_kernels {kernels} must have the same length")
    layers: list[nn.Module] = []
    for out_channels, k in zip(filters, kernels):
        if k not in _KERNEL_PADDING:
            raise ValueError(f"deconv kernel {k} not supported (expected one of {sorted(_KERNEL_PADDING)})")
        pad, out_pad = _KERNEL_PADDING[k]
        layers += [nn.ConvTranspose2d(in_channels, out_channels, k, stride=2, padding=pad,
                                      output_padding=out_pad, bias=False),
                   nn.BatchNorm2d(out_channels, momentum=0.1), nn.ReLU(inplace=True)]
        in_channels = out_channels
    return nn.Sequential(*layers)


def stage_slices(n_iter: int, n_blocks: int = 3) -> list[tuple[int, int]]:
    """Which ``deconv_layers`` indices each feedback iteration applies (spec §1.3).

    n_iter=3: [0:3], [3:6], [6:9]; n_iter=2: [0:6], [6:9]; n_iter=1: [0:9]. The first iteration takes the
    surplus blocks so that the last map always has the finest resolution.
    """
    if not 1 <= n_iter <= n_blocks:
        raise ValueError(f"model.n_iter must be in 1..{n_blocks} (one deconv block per iteration), got {n_iter}")
    first = n_blocks - n_iter + 1
    bounds = [0, first] + list(range(first + 1, n_blocks + 1))
    return [(3 * a, 3 * b) for a, b in zip(bounds[:-1], bounds[1:])]


def make_points_grid(size: int = 21) -> torch.Tensor:
    """Uniform grid in normalised coordinates, [1, 2, size²] (spec §1.4).

    'ij' meshgrid of linspace(-1, 1, size): point k = size·i + j has x = lin[i], y = lin[j], so x varies
    slowest (column-major in image terms). Row 0 holds x, row 1 holds y. The order fixes the layout of
    ``regressor.0.fc1``'s input, so it must not change.
    """
    lin = torch.linspace(-1.0, 1.0, size)
    xv, yv = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack((xv.reshape(-1), yv.reshape(-1)))[None]
