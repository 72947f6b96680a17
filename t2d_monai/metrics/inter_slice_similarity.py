"""Inter-slice similarity (Yu et al. 2019, Table 2): how much a prediction's slice-to-slice
smoothness differs from the ground truth's.

"We compute the dice score between every pair of neighboring slices along axial axis [...]
We use L2-distance to evaluate the similarity of inter-slice dice score of prediction and that of
ground truth" (https://arxiv.org/abs/1904.01150, section 4.3.2). Smaller is better.
"""

from __future__ import annotations

import torch
from monai.metrics.utils import ignore_background
from monai.utils import MetricReduction, look_up_option

from t2d_monai.metrics.reduced_metric import ReducedIterationMetric

from t2d_monai.transforms.view_permute import VIEW_AXES, VIEWS

__all__ = ["SLICE_AXES", "InterSliceSimilarity", "compute_inter_slice_similarity", "neighbour_slice_dice"]

#: axis names -> spatial axis of a RAS ``(B, C, X, Y, Z)`` tensor (the slicing axis of that view).
SLICE_AXES = {view: VIEW_AXES[view][-1] for view in VIEWS}


def _spatial_axis(axis: int | str) -> int:
    if isinstance(axis, str):
        return SLICE_AXES[look_up_option(axis, tuple(SLICE_AXES))]
    if int(axis) != axis or not 0 <= axis <= 2:
        raise ValueError(f"axis must be 0, 1, 2 (spatial axis X, Y, Z) or one of {tuple(SLICE_AXES)}, got {axis!r}.")
    return int(axis)


def neighbour_slice_dice(mask: torch.Tensor, axis: int | str = "axial") -> torch.Tensor:
    """Dice between every pair of neighbouring slices of each ``(batch, channel)`` mask.

    Args:
        mask: binary ``(B, C, X, Y, Z)`` tensor (soft values give a soft Dice).
        axis: slicing axis, a spatial index (0 = X, 1 = Y, 2 = Z) or a view name
            (``"axial"`` = Z, default; ``"coronal"`` = Y; ``"sagittal"`` = X).

    Returns:
        ``(B, C, S - 1)`` with ``S`` slices along ``axis``: entry ``i`` is
        ``2 |M_i ∩ M_{i+1}| / (|M_i| + |M_{i+1}|)``, and 1 when both slices are empty (two empty
        slices are identical, so an empty prediction where the ground truth is empty costs nothing).
    """
    if mask.ndim != 5:
        raise ValueError(f"expected a (B, C, X, Y, Z) tensor, got shape {tuple(mask.shape)}.")
    m = mask.float().movedim(2 + _spatial_axis(axis), -1).flatten(2, 3)  # (B, C, P, S)
    first, second = m[..., :-1], m[..., 1:]
    intersection = (first * second).sum(2)
    total = first.sum(2) + second.sum(2)
    return torch.where(total > 0, 2 * intersection / total.clamp_min(1e-12), torch.ones_like(total))


def compute_inter_slice_similarity(
    y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True, axis: int | str = "axial"
) -> torch.Tensor:
    """L2 distance between the neighbouring-slice Dice sequences of ``y_pred`` and ``y``, per batch item and channel.

    Args:
        y_pred: binarised prediction ``(B, C, X, Y, Z)``, one-hot (or one binary channel), as for
            MONAI's ``DiceMetric``.
        y: ground truth of the same shape and format.
        include_background: keep the first channel; set False for one-hot inputs whose channel 0 is
            background (as for ``DiceMetric``; with one channel there is nothing to drop).
        axis: slicing axis (see :func:`neighbour_slice_dice`), axial by default as in the paper.

    Returns:
        ``(B, C)`` (``C - 1`` without background): ``sqrt(sum_i (d_pred_i - d_gt_i) ** 2)`` where
        ``d_*`` are the :func:`neighbour_slice_dice` sequences; pairs of empty slices count as Dice 1.

    Raises:
        ValueError: when the shapes differ or the inputs are not 5D.
    """
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = ignore_background(y_pred, y)
    return torch.linalg.vector_norm(neighbour_slice_dice(y_pred, axis) - neighbour_slice_dice(y, axis), dim=-1)


class InterSliceSimilarity(ReducedIterationMetric):
    """The paper's inter-slice similarity as a MONAI cumulative metric (smaller is better).

    For prediction and ground truth, the Dice between every pair of neighbouring slices along
    ``axis`` (axial by default) gives one sequence each; the metric is the L2 distance between the
    two sequences, per batch item and channel (:func:`compute_inter_slice_similarity`). A pair of
    slices that are both empty has Dice 1. Inputs are ``(B, C, X, Y, Z)`` binarised one-hot (or
    one binary channel) like ``DiceMetric``'s, in RAS orientation so that the view names fit.
    Works with MONAI handlers (``MeanDice``-style ``IgniteMetricHandler``) and ``evaluate`` configs.

    Args:
        include_background: keep channel 0 (default True, as ``DiceMetric``).
        axis: slicing axis, 0/1/2 or ``"sagittal"``/``"coronal"``/``"axial"`` (default).
        reduction: ``monai.utils.MetricReduction`` for :meth:`aggregate` (default ``"mean"``).
        get_not_nans: :meth:`aggregate` also returns the count of not-nan values.

    Example::

        >>> metric = InterSliceSimilarity()
        >>> metric(y_pred=pred, y=label)  # (B, C) for this iteration
        >>> metric.aggregate().item()
    """

    def __init__(
        self,
        include_background: bool = True,
        axis: int | str = "axial",
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(include_background, reduction, get_not_nans)
        self.axis = _spatial_axis(axis)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return compute_inter_slice_similarity(y_pred, y, self.include_background, self.axis)
