"""DeepLabV3+ decoder (Chen et al. 2018): the stride-4 decoder of the paper's networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.blocks import SimpleASPP
from torch import nn

from t2d_monai.networks.blocks.conv import conv_norm_relu

__all__ = ["DeepLabV3PlusDecoder"]


class DeepLabV3PlusDecoder(nn.Module):
    """
    DeepLabV3+ decoder (Chen et al. 2018, https://arxiv.org/abs/1802.02611); knows only channel counts.

    ``high`` (stride 8/16) -> [ASPP (MONAI ``SimpleASPP``) when ``aspp``] -> 1x1 conv to ``channels``;
    bilinearly resized to ``low``'s size and concatenated with ``low`` projected to 48 channels (1x1 conv);
    two 3x3 conv-norm-ReLU to ``channels``. Output: ``(N, channels, h_low, w_low)`` (stride 4).

    Args:
        low_channels: channels of the low-level (stride 4) feature.
        high_channels: channels of the encoder output.
        channels: decoder width. Defaults to 256.
        low_proj_channels: width of the projected low-level feature. Defaults to 48.
        aspp: use an ASPP on ``high`` (dilations 1, 6, 12, 18). Defaults to False (the paper's setting).
        norm: MONAI norm name or ``(name, kwargs)``. Defaults to ``"batch"``.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        channels: int = 256,
        low_proj_channels: int = 48,
        aspp: bool = False,
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        self.out_channels = channels
        if aspp:
            aspp_width = channels // 4
            self.aspp: nn.Module = SimpleASPP(
                2,
                high_channels,
                aspp_width,
                kernel_sizes=(1, 3, 3, 3),
                dilations=(1, 6, 12, 18),
                norm_type=norm,
                acti_type="relu",
            )
            high_channels = 4 * aspp_width
        else:
            self.aspp = nn.Identity()
        self.high_proj = conv_norm_relu(high_channels, channels, 1, norm)
        self.low_proj = conv_norm_relu(low_channels, low_proj_channels, 1, norm)
        self.fuse = nn.Sequential(
            conv_norm_relu(channels + low_proj_channels, channels, 3, norm), conv_norm_relu(channels, channels, 3, norm)
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """``low (N, Cl, h, w)``, ``high (N, Ch, h', w')`` -> ``(N, channels, h, w)``."""
        high = self.high_proj(self.aspp(high))
        high = F.interpolate(high, size=[low.shape[2], low.shape[3]], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([high, self.low_proj(low)], dim=1))
