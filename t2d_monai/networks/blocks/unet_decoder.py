"""Full-resolution decoder: the DeepLabV3+ decoder followed by U-Net-style upsampling stages to stride 2 and 1;
and the table of decoder names the networks accept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from t2d_monai.networks.blocks.conv import conv_norm_relu
from t2d_monai.networks.blocks.deeplabv3plus_decoder import DeepLabV3PlusDecoder

__all__ = ["DECODERS", "UNetDecoder", "UpsampleBlock", "default_unet_channels", "make_decoder"]


def default_unet_channels(channels: int) -> tuple[int, int]:
    """Default widths of the stride-2 and stride-1 stages for a decoder of width ``channels``: a half and a
    quarter of it (at least 1), so the two full-resolution-ish stages cost about what the stride-4 stage does."""
    return max(channels // 2, 1), max(channels // 4, 1)


class UpsampleBlock(nn.Module):
    """
    One decoding stage: ``x`` reduced to ``channels`` by a 1x1 conv-norm-ReLU at its own (coarse) resolution,
    bilinearly resized to ``size`` (``align_corners=False``), concatenated with ``skip`` when the stage has one,
    then two 3x3 conv-norm-ReLU: ``(N, in_channels, h, w) -> (N, channels, size[0], size[1])``.

    Args:
        in_channels: channels of ``x``.
        skip_channels: channels of the skip (0: a stage without skip).
        channels: output width.
        norm: MONAI norm name or ``(name, kwargs)``. Defaults to ``"batch"``.
    """

    def __init__(self, in_channels: int, skip_channels: int, channels: int, norm: str | tuple = "batch") -> None:
        super().__init__()
        self.skip_channels = int(skip_channels)
        self.reduce = conv_norm_relu(in_channels, channels, 1, norm)
        self.fuse = nn.Sequential(
            conv_norm_relu(channels + self.skip_channels, channels, 3, norm), conv_norm_relu(channels, channels, 3, norm)
        )

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor], size: list[int]) -> torch.Tensor:
        """``x (N, C_in, h, w)``, ``skip (N, C_skip, size[0], size[1])`` or None -> ``(N, channels, *size)``."""
        x = F.interpolate(self.reduce(x), size=[int(size[0]), int(size[1])], mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.fuse(x)


class UNetDecoder(nn.Module):
    """
    Full-resolution decoder for structures one or two pixels wide (an extension of Yu et al. 2019, whose
    DeepLabV3+ decoder stops at stride 4); knows only channel counts, like :class:`DeepLabV3PlusDecoder`.

    - stride 4: :class:`DeepLabV3PlusDecoder` on ``high`` (the encoder output, stride 8/16/32) and the stride-4
      skip ``skips[1]``, width ``channels`` (``high`` projected, resized to the skip's size, fused with the
      skip projected to ``low_proj_channels``);
    - stride 2: :class:`UpsampleBlock` to ``skips[0]``'s size with that skip, width ``stage_channels[0]``;
    - stride 1: :class:`UpsampleBlock` to ``out_size``, width ``stage_channels[1]``, with the network's input
      slices as the skip when ``input_channels > 0`` (then ``skips`` starts with them), else without skip.

    Every stage resizes to the size it is given (the skip's, then ``out_size``), so any input size works,
    odd ones included (a stride-2 stem gives ``ceil(H/2)``, not ``H/2``).

    Args:
        skip_channels: channels of the skips, finest first: ``(stride 2, stride 4)``.
        high_channels: channels of the encoder output.
        channels: width of the stride-4 stage. Defaults to 256.
        stage_channels: widths of the stride-2 and stride-1 stages; None: ``(channels // 2, channels // 4)``
            (:func:`default_unet_channels`). Defaults to None.
        low_proj_channels: width of the projected stride-4 skip. Defaults to 48.
        aspp: an ASPP on ``high`` (see :class:`DeepLabV3PlusDecoder`). Defaults to False.
        norm: MONAI norm name or ``(name, kwargs)``. Defaults to ``"batch"``.
        input_channels: channels of a stride-1 skip (the input slices themselves, which carry a one-pixel vessel
            exactly where it is); 0: no stride-1 skip. Defaults to 0.

    Raises:
        ValueError: ``skip_channels`` or ``stage_channels`` not two ints >= 1, or ``input_channels < 0``.

    Example::

        >>> dec = UNetDecoder((64, 64), 512, channels=32)
        >>> skips = [torch.randn(1, 64, 17, 24), torch.randn(1, 64, 9, 12)]
        >>> dec(skips, torch.randn(1, 512, 3, 3), [33, 47]).shape
        torch.Size([1, 8, 33, 47])
    """

    def __init__(
        self,
        skip_channels: Sequence[int],
        high_channels: int,
        channels: int = 256,
        stage_channels: Sequence[int] | None = None,
        low_proj_channels: int = 48,
        aspp: bool = False,
        norm: str | tuple = "batch",
        input_channels: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(input_channels, bool) or not isinstance(input_channels, int) or input_channels < 0:
            raise ValueError(f"input_channels must be an int >= 0, got {input_channels!r}.")
        skip_channels = _two_widths("skip_channels", skip_channels, "(stride-2 skip, stride-4 skip)")
        stages = _two_widths(
            "stage_channels",
            default_unet_channels(channels) if stage_channels is None else stage_channels,
            "(stride-2 stage, stride-1 stage)",
        )
        self.skip_channels: list[int] = list(skip_channels)
        self.stage_channels: list[int] = list(stages)
        self.out_channels = stages[1]
        self.stride4 = DeepLabV3PlusDecoder(skip_channels[1], high_channels, channels, low_proj_channels, aspp, norm)
        self.stride2 = UpsampleBlock(channels, skip_channels[0], stages[0], norm)
        self.input_channels = int(input_channels)
        self.stride1 = UpsampleBlock(stages[0], self.input_channels, stages[1], norm)

    def forward(self, skips: list[torch.Tensor], high: torch.Tensor, out_size: list[int]) -> torch.Tensor:
        """``skips [(N, C_s2, h2, w2), (N, C_s4, h4, w4)]`` (with ``input_channels``: ``[(N, C_in, H, W), ...]``
        first), ``high (N, C_h, h', w')``, ``out_size [H, W]`` -> ``(N, stage_channels[1], H, W)``."""
        wanted = 3 if self.input_channels > 0 else 2
        if len(skips) != wanted:
            raise ValueError(
                f"UNetDecoder expects {wanted} skips ({'[input, ' if wanted == 3 else '['}stride 2, stride 4]), "
                f"got {len(skips)}."
            )
        x = self.stride4(skips[-1], high)
        x = self.stride2(x, skips[-2], [skips[-2].shape[2], skips[-2].shape[3]])
        top: Optional[torch.Tensor] = skips[0] if self.input_channels > 0 else None
        return self.stride1(x, top, out_size)


def _two_widths(name: str, value: Sequence[int], meaning: str) -> tuple[int, int]:
    """``value`` as two ints >= 1, or a ValueError naming ``name`` and what the two numbers are."""
    widths = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else ()
    if len(widths) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in widths):
        raise ValueError(f"{name} must be two ints >= 1 {meaning}, got {value!r}.")
    return int(widths[0]), int(widths[1])


#: decoder names of T2DNet and DeepLabV3Plus: the paper's stride-4 decoder and the full-resolution one
DECODERS = ("deeplabv3plus", "unet")


def make_decoder(
    name: str,
    skip_channels: Sequence[int],
    high_channels: int,
    channels: int = 256,
    unet_channels: Sequence[int] | None = None,
    aspp: bool = False,
    norm: str | tuple = "batch",
    input_channels: int = 0,
) -> nn.Module:
    """
    The decoder ``name`` (one of :data:`DECODERS`) of T2DNet and DeepLabV3Plus: ``"deeplabv3plus"``
    (:class:`DeepLabV3PlusDecoder`, takes the last of ``skip_channels`` as its low-level channels, ignores
    ``unet_channels``) or ``"unet"`` (:class:`UNetDecoder`, ``skip_channels`` = (stride 2, stride 4),
    ``unet_channels`` its ``stage_channels``, ``input_channels`` its stride-1 skip). Its output width is
    ``out_channels``.

    Raises:
        ValueError: unknown ``name`` (the message lists the options); ``unet_channels`` not two ints >= 1.
    """
    name = look_up_option(name, DECODERS)
    if name == "unet":
        if unet_channels is not None:
            unet_channels = _two_widths("unet_channels", unet_channels, "(stride-2 stage, stride-1 stage)")
        return UNetDecoder(skip_channels, high_channels, channels, unet_channels, aspp=aspp, norm=norm,
                           input_channels=input_channels)
    return DeepLabV3PlusDecoder(list(skip_channels)[-1], high_channels, channels, aspp=aspp, norm=norm)
