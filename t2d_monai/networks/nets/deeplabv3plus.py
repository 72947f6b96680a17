"""DeepLabV3+ (2D) on the dilated ResNet encoder; ASPP off by default, as in the thickened 2D network paper."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from t2d_monai.networks.blocks.deeplabv3plus_decoder import DeepLabV3PlusDecoder
from t2d_monai.networks.nets.resnet_encoder import ResNetEncoder

__all__ = ["DeepLabV3Plus"]


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


