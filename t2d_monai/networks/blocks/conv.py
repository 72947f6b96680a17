"""Convolution layers shared by the decoders and the ESM compression."""

from __future__ import annotations

from monai.networks.layers.utils import get_norm_layer
from torch import nn

__all__ = ["conv_norm_relu"]


def conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int, norm: str | tuple = "batch") -> nn.Sequential:
    """``Conv2d(kernel_size, 'same' padding, no bias) -> norm -> ReLU``: ``(N, in, H, W) -> (N, out, H, W)``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        get_norm_layer(norm, 2, out_channels),
        nn.ReLU(inplace=True),
    )
