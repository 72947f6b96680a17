"""Metrics of the thickened 2D networks paper, and the vessel metrics reported next to Dice: surface
distances in mm and centreline Dice."""

from __future__ import annotations

from .centerline_dice import CenterlineDice, compute_centerline_dice
from .inter_slice_similarity import (
    SLICE_AXES,
    InterSliceSimilarity,
    compute_inter_slice_similarity,
    neighbour_slice_dice,
)
from .reduced_metric import ReducedIterationMetric
from .surface_distance import HausdorffDistance95, NormalizedSurfaceDice, spacing_of

__all__ = [
    "SLICE_AXES",
    "CenterlineDice",
    "HausdorffDistance95",
    "InterSliceSimilarity",
    "NormalizedSurfaceDice",
    "ReducedIterationMetric",
    "compute_centerline_dice",
    "compute_inter_slice_similarity",
    "neighbour_slice_dice",
    "spacing_of",
]
