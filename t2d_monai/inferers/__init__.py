"""Inference over thick-slice windows and fusion of the three views."""

from __future__ import annotations

from .thick_slice_inferer import ACTIVATIONS, ThickSliceInferer, window_starts
from .view_fusion import FUSION_METHODS, ViewFusion, ViewFusiond, fuse_views

__all__ = [
    "ACTIVATIONS",
    "FUSION_METHODS",
    "ThickSliceInferer",
    "ViewFusion",
    "ViewFusiond",
    "fuse_views",
    "window_starts",
]
