"""Inference over thick-slice windows, and over the three views of a volume."""

from __future__ import annotations

import warnings
from typing import Any

from t2d_monai.utils.windows import window_starts

from .multi_view_inferer import MultiViewInferer, view_to_view_order
from .thick_slice_inferer import ACTIVATIONS, WEIGHTINGS, ThickSliceInferer, slab_weights

__all__ = [
    "ACTIVATIONS",
    "MultiViewInferer",
    "ThickSliceInferer",
    "WEIGHTINGS",
    "slab_weights",
    "view_to_view_order",
    "window_starts",
]

#: names that moved to t2d_monai.transforms (view fusion is a transform of predictions); kept until 0.2.0
_MOVED_TO_TRANSFORMS = ("FUSION_METHODS", "ViewFusion", "ViewFusiond", "fuse_views")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_TRANSFORMS:
        warnings.warn(
            f"t2d_monai.inferers.{name} is deprecated (removed in 0.2.0): use t2d_monai.transforms.{name}.",
            FutureWarning,
            stacklevel=2,
        )
        from t2d_monai.transforms import view_fusion

        return getattr(view_fusion, name)
    raise AttributeError(f"module 't2d_monai.inferers' has no attribute {name!r}")
