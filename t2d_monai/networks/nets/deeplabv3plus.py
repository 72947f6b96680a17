"""DeepLabV3+ (2D) on the dilated ResNet encoder; ASPP off by default, as in the thickened 2D network paper;
optionally with the full-resolution ``"unet"`` decoder."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from t2d_monai.networks.blocks.unet_decoder import DECODERS, make_decoder
from t2d_monai.networks.nets.resnet_encoder import ResNetEncoder

__all__ = ["DeepLabV3Plus"]


class DeepLabV3Plus(nn.Module):
    """
    2D DeepLabV3+ (Chen et al. 2018, https://arxiv.org/abs/1802.02611) on a dilated ResNet
    (:class:`ResNetEncoder`), without ASPP by default as in Yu et al. 2019
    (https://arxiv.org/abs/1904.01150): the plain "k-slice DeepLab" baseline when given k slices as channels.

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)`` logits, for any ``H``, ``W``.

    ``decoder="unet"`` replaces the stride-4 DeepLabV3+ decoder (whose logits are bilinearly upsampled x4) by
    :class:`~t2d_monai.networks.blocks.UNetDecoder`, decoding to the input resolution with the stem's
    stride-2 output and f1 as skips: the same decoder as ``T2DNet(..., decoder="unet")``, so single-slice and
    early-fusion baselines can be compared with it.

    Args:
        in_channels: input channels. Defaults to 1.
        out_channels: output channels (classes). Defaults to 1.
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"resnet101"``. Defaults to ``"resnet50"``.
        output_stride: 8, 16 or 32. Defaults to 16.
        aspp: use an ASPP module. Defaults to False.
        decoder_channels: decoder width. Defaults to 256.
        norm: MONAI norm name or ``(name, kwargs)``. Defaults to ``"batch"``.
        pretrained: local torchvision ResNet state-dict file, or None (see :class:`ResNetEncoder`).
        decoder: ``"deeplabv3plus"`` or ``"unet"``. Defaults to ``"deeplabv3plus"``.
        unet_channels: widths of the ``"unet"`` decoder's stride-2 and stride-1 stages; None:
            ``(decoder_channels // 2, decoder_channels // 4)``. Ignored by ``"deeplabv3plus"``. Defaults to None.
        encoder_depth: ResNet stages used, 5 (the full ResNet) or 4 (without ``layer4``; output stride 8 or
            16), see :class:`ResNetEncoder`. Defaults to 5.

    Raises:
        ValueError: bad ``in_channels``, ``out_channels``, ``backbone``, ``output_stride``, ``encoder_depth``,
            ``decoder`` (the message lists the options) or ``unet_channels``.

    Example::

        >>> net = DeepLabV3Plus(in_channels=3, out_channels=2, backbone="resnet18")
        >>> net(torch.randn(1, 3, 33, 47)).shape
        torch.Size([1, 2, 33, 47])
        >>> DeepLabV3Plus(1, 1, backbone="resnet18", decoder="unet")(torch.randn(1, 1, 29, 38)).shape
        torch.Size([1, 1, 29, 38])
    """

    # TorchScript constant: the branch on it is resolved when scripting (the two decoders take different inputs)
    __constants__ = ["full_resolution"]

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
        decoder: str = "deeplabv3plus",
        unet_channels: Sequence[int] | None = None,
        encoder_depth: int = 5,
    ) -> None:
        super().__init__()
        if not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"out_channels must be an int >= 1, got {out_channels!r}.")
        self.decoder_name = look_up_option(decoder, DECODERS)
        #: True for decoder="unet" (logits decoded at the input size)
        self.full_resolution = self.decoder_name == "unet"
        self.encoder = ResNetEncoder(in_channels, backbone, output_stride, norm, pretrained, encoder_depth)
        self.decoder = make_decoder(
            self.decoder_name,
            (self.encoder.stem_channels, self.encoder.f1_channels),
            self.encoder.f2_channels,
            decoder_channels,
            unet_channels,
            aspp=aspp,
            norm=norm,
            input_channels=in_channels if self.full_resolution else 0,
        )
        self.head = nn.Conv2d(int(self.decoder.out_channels), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W) -> (N, out_channels, H, W)``."""
        size = [x.shape[2], x.shape[3]]
        if self.full_resolution:
            skips = self.encoder.forward_early(x)
            return self.head(self.decoder([x] + skips, self.encoder.forward_f2(skips[1]), size))
        low = self.encoder.forward_f1(x)
        feat = self.decoder(low, self.encoder.forward_f2(low))
        return F.interpolate(self.head(feat), size=size, mode="bilinear", align_corners=False)


