"""Metrics of the thickened 2D networks paper."""

from __future__ import annotations

from .inter_slice_similarity import (
    SLICE_AXES,
    InterSliceSimilarity,
    compute_inter_slice_similarity,
    neighbour_slice_dice,
)

__all__ = ["SLICE_AXES", "InterSliceSimilarity", "compute_inter_slice_similarity", "neighbour_slice_dice"]
