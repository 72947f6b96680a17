"""Building blocks of the thickened 2D networks: shared conv layers, decoders, slice fusion and heads."""

from __future__ import annotations

from .conv import conv_norm_relu
from .deeplabv3plus_decoder import DeepLabV3PlusDecoder
from .slice_attention import (
    SLICE_FUSION_BLOCKS,
    ConcatSliceFusion,
    DotSliceFusion,
    SliceSensitiveAttention,
    fused_feature_moments,
    make_slice_fusion,
)
from .slice_heads import GroupSliceHead, PlainSliceHead, SSAGroupSliceHead, make_slice_head
from .unet_decoder import DECODERS, UNetDecoder, UpsampleBlock, default_unet_channels, make_decoder

__all__ = [
    "DECODERS",
    "SLICE_FUSION_BLOCKS",
    "ConcatSliceFusion",
    "DeepLabV3PlusDecoder",
    "DotSliceFusion",
    "GroupSliceHead",
    "PlainSliceHead",
    "SSAGroupSliceHead",
    "SliceSensitiveAttention",
    "UNetDecoder",
    "UpsampleBlock",
    "conv_norm_relu",
    "default_unet_channels",
    "fused_feature_moments",
    "make_decoder",
    "make_slice_fusion",
    "make_slice_head",
]
