"""DeepLabV3+ (2D) on the dilated ResNet encoder; ASPP off by default, as in the thickened 2D network paper."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from monai.networks.blocks import SimpleASPP
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from t2d_monai.networks.nets.resnet_encoder import ResNetEncoder

__all__ = ["DeepLabV3PlusDecoder", "DeepLabV3Plus", "conv_norm_relu"]


def conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int, norm: str | tuple = "batch") -> nn.Sequential:
    """``Conv2d(kernel_size, 'same' padding, no bias) -> norm -> ReLU``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        get_norm_layer(norm, 2, out_channels),
        nn.ReLU(inplace=True),
    )


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


class DeepLabV3Plus(nn.Module):
    """
    2D DeepLabV3+ (Chen et al. 2018, https://arxiv.org/abs/1802.02611) on a dilated ResNet
    (:class:`ResNetEncoder`), without ASPP by default as in Yu et al. 2019
    (https://arxiv.org/abs/1904.01150): the plain "k-slice DeepLab" baseline when given k slices as channels.

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)`` logits, for any ``H``, ``W``.

    Args:
        in_channels: input channels. Defaults to 1.
        out_channels: output channels (classes). Defaults to 1.
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"resnet101"``. Defaults to ``"resnet50"``.
        output_stride: 8, 16 or 32. Defaults to 16.
        aspp: use an ASPP module. Defaults to False.
        decoder_channels: decoder width. Defaults to 256.
        norm: MONAI norm name or ``(name, kwargs)``. Defaults to ``"batch"``.
        pretrained: local torchvision ResNet state-dict file, or None (see :class:`ResNetEncoder`).

    Raises:
        ValueError: bad ``in_channels``, ``out_channels``, ``backbone`` or ``output_stride``.

    Example::

        >>> net = DeepLabV3Plus(in_channels=3, out_channels=2, backbone="resnet18")
        >>> net(torch.randn(1, 3, 33, 47)).shape
        torch.Size([1, 2, 33, 47])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        backbone: str = "resnet50",
        output_stride: int = 16,
        aspp: bool = False,
        decoder_channels: int = 256,
        norm: str | tuple = "batch",
        pretrained: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"out_channels must be an int >= 1, got {out_channels!r}.")
        self.encoder = ResNetEncoder(in_channels, backbone, output_stride, norm, pretrained)
        self.decoder = DeepLabV3PlusDecoder(
            self.encoder.f1_channels, self.encoder.f2_channels, decoder_channels, aspp=aspp, norm=norm
        )
        self.head = nn.Conv2d(decoder_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W) -> (N, out_channels, H, W)``."""
        low = self.encoder.forward_f1(x)
        feat = self.decoder(low, self.encoder.forward_f2(low))
        return F.interpolate(self.head(feat), size=[x.shape[2], x.shape[3]], mode="bilinear", align_corners=False)


