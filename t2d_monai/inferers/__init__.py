"""Inference over thick-slice windows and fusion of the three views."""

from __future__ import annotations

from .multi_view_inferer import MultiViewInferer, view_to_view_order
from t2d_monai.utils.windows import window_starts

from .thick_slice_inferer import ACTIVATIONS, WEIGHTINGS, ThickSliceInferer, slab_weights
from .view_fusion import FUSION_METHODS, ViewFusion, ViewFusiond, fuse_views

__all__ = [
    "ACTIVATIONS",
    "FUSION_METHODS",
    "MultiViewInferer",
    "ThickSliceInferer",
    "ViewFusion",
    "ViewFusiond",
    "WEIGHTINGS",
    "fuse_views",
    "slab_weights",
    "view_to_view_order",
    "window_starts",
]
