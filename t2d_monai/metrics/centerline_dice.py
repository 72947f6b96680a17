"""Centreline Dice (clDice, Shit et al. 2021, https://arxiv.org/abs/2003.07311) for thin tubular structures.

Dice weighs a vessel by its volume, so a thick trunk outweighs every thin branch; clDice weighs it by its
length: ``Tprec = |S(P) ∩ L| / |S(P)|`` (how much of the predicted centreline lies inside the label),
``Tsens = |S(L) ∩ P| / |S(L)|`` (how much of the label's centreline is covered), clDice their harmonic mean.
Skeletons ``S`` are scikit-image's ``skeletonize`` (Lee et al. 1994 in 3D), computed on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics.utils import ignore_background
from monai.utils import optional_import

from t2d_monai.metrics.reduced_metric import ReducedIterationMetric

__all__ = ["CenterlineDice", "compute_centerline_dice"]

skeletonize, _has_skimage = optional_import("skimage.morphology", name="skeletonize")


def _skeleton(mask: np.ndarray) -> np.ndarray:
    if not _has_skimage:
        raise ImportError("clDice needs scikit-image (pip install scikit-image) for its skeletons.")
    return np.asarray(skeletonize(mask), dtype=bool)


def _cl_dice(pred: np.ndarray, label: np.ndarray) -> float:
    if not label.any():
        return float("nan")
    if not pred.any():
        return 0.0
    skel_pred, skel_label = _skeleton(pred), _skeleton(label)
    tprec = (skel_pred & label).sum() / max(skel_pred.sum(), 1)
    tsens = (skel_label & pred).sum() / max(skel_label.sum(), 1)
    return float(2 * tprec * tsens / (tprec + tsens)) if tprec + tsens > 0 else 0.0


def compute_centerline_dice(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True) -> torch.Tensor:
    """clDice of binarised ``y_pred`` against ``y``, both ``(B, C, *spatial)`` (2D or 3D), per item and channel.

    Returns:
        ``(B, C)`` (``C - 1`` without background) in [0, 1]: nan where the label is empty, 0 where the
        prediction is empty and the label is not.

    Raises:
        ValueError: shapes differ, or fewer than two spatial dimensions.
    """
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if y_pred.ndim not in (4, 5):
        raise ValueError(f"expected (B, C, H, W) or (B, C, X, Y, Z) tensors, got shape {tuple(y_pred.shape)}.")
    if not include_background and y_pred.shape[1] > 1:
        y_pred, y = ignore_background(y_pred, y)
    pred = y_pred.detach().cpu().numpy() > 0.5
    label = y.detach().cpu().numpy() > 0.5
    values = [[_cl_dice(pred[b, c], label[b, c]) for c in range(pred.shape[1])] for b in range(pred.shape[0])]
    return torch.tensor(values, dtype=torch.float32, device=y_pred.device)


class CenterlineDice(ReducedIterationMetric):
    """
    clDice (:func:`compute_centerline_dice`) as a MONAI cumulative metric, for ``IgniteMetricHandler`` in
    evaluation configs. Inputs ``(B, C, X, Y, Z)`` binarised like ``DiceMetric``'s; higher is better.

    Args:
        include_background: keep channel 0. Defaults to True (one binary vessel channel).
        reduction: ``monai.utils.MetricReduction`` for :meth:`aggregate`. Defaults to ``"mean"`` (nan left out).
        get_not_nans: :meth:`aggregate` also returns the count of not-nan values.

    Example::

        >>> metric = CenterlineDice()
        >>> metric(y_pred=pred, y=label)  # (B, C) for this iteration
        >>> metric.aggregate().item()
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return compute_centerline_dice(y_pred, y, self.include_background)
