"""Building blocks of the thickened 2D networks."""

from __future__ import annotations

from .slice_attention import (
    SLICE_FUSION_BLOCKS,
    ConcatSliceFusion,
    DotSliceFusion,
    SliceSensitiveAttention,
    fused_feature_moments,
    make_slice_fusion,
)

__all__ = [
    "SLICE_FUSION_BLOCKS",
    "ConcatSliceFusion",
    "DotSliceFusion",
    "SliceSensitiveAttention",
    "fused_feature_moments",
    "make_slice_fusion",
]
