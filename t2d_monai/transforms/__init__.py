"""Transforms between a 3D CT volume and the ``(k, H, W)`` thick-slice inputs of a thickened 2D network."""

from __future__ import annotations

from .check_image_label import CheckImageLabeld
from .thick_slice import (
    SLICE_PAD_MODES,
    RandThickSliceGroupd,
    ThickSliceGroup,
    ThickSliceGroupd,
    pad_slices,
    slice_padding,
)
from .view_permute import VIEW_AXES, ViewPermute, ViewPermuted, permute_spatial

__all__ = [
    "CheckImageLabeld",
    "SLICE_PAD_MODES",
    "VIEW_AXES",
    "RandThickSliceGroupd",
    "ThickSliceGroup",
    "ThickSliceGroupd",
    "ViewPermute",
    "ViewPermuted",
    "pad_slices",
    "permute_spatial",
    "slice_padding",
]
