"""Transforms between a 3D CT volume and the ``(k, H, W)`` thick-slice slabs of a thickened 2D network, and
the fusion of the three views' predictions."""

from __future__ import annotations

from .check_image_label import CheckImageLabeld
from .non_finite import ReplaceNonFinited
from .slab import (
    SLICE_PAD_MODES,
    RandThickSlabd,
    RandThickSliceGroupd,
    ThickSlab,
    ThickSlabd,
    ThickSliceGroup,
    ThickSliceGroupd,
    pad_slices,
    slice_padding,
)
from .view_fusion import FUSION_METHODS, ViewFusion, ViewFusiond, fuse_views
from .view_permute import VIEW_AXES, VIEWS, ViewPermute, ViewPermuted, permute_spatial

__all__ = [
    "CheckImageLabeld",
    "FUSION_METHODS",
    "SLICE_PAD_MODES",
    "VIEWS",
    "VIEW_AXES",
    "RandThickSlabd",
    "ReplaceNonFinited",
    "ThickSlab",
    "ThickSlabd",
    "ViewFusion",
    "ViewFusiond",
    "ViewPermute",
    "ViewPermuted",
    "fuse_views",
    "pad_slices",
    "permute_spatial",
    "slice_padding",
    # deprecated aliases (removed in 0.2.0)
    "RandThickSliceGroupd",
    "ThickSliceGroup",
    "ThickSliceGroupd",
]
