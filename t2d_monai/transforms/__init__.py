"""Transforms between a 3D CT volume and the ``(k, H, W)`` thick-slice slabs of a thickened 2D network, the
fusion of the three views' predictions, and the merge of several targets' predictions into one label map."""

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
from .target_merge import MergeTargets, MergeTargetsd, check_targets, merge_targets, target_legend
from .view_fusion import FUSION_METHODS, ViewFusion, ViewFusiond, fuse_views
from .view_permute import VIEW_AXES, VIEWS, ViewPermute, ViewPermuted, permute_spatial

__all__ = [
    "CheckImageLabeld",
    "FUSION_METHODS",
    "MergeTargets",
    "MergeTargetsd",
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
    "check_targets",
    "fuse_views",
    "merge_targets",
    "pad_slices",
    "permute_spatial",
    "slice_padding",
    "target_legend",
    # deprecated aliases (removed in 0.2.0)
    "RandThickSliceGroupd",
    "ThickSliceGroup",
    "ThickSliceGroupd",
]
