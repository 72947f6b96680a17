"""The base of this package's per-case metrics: a MONAI cumulative metric whose buffered ``(B, C)`` values are
reduced by a ``MetricReduction``, as ``DiceMetric``'s are."""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction, look_up_option

__all__ = ["ReducedIterationMetric"]


class ReducedIterationMetric(CumulativeIterationMetric):
    """
    A cumulative metric of ``(B, C)`` values per iteration (subclasses implement ``_compute_tensor``), reduced by
    :meth:`aggregate` like MONAI's ``DiceMetric`` (nan values left out of means).

    Args:
        include_background: keep channel 0 (stored for subclasses). Defaults to True.
        reduction: ``monai.utils.MetricReduction`` for :meth:`aggregate`. Defaults to ``"mean"``.
        get_not_nans: :meth:`aggregate` also returns the count of not-nan values.
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__()
        self.include_background = include_background
        self.reduction = look_up_option(reduction, MetricReduction)
        self.get_not_nans = get_not_nans

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce the buffered ``(B, C)`` values (``reduction`` overrides the constructor's)."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be a PyTorch Tensor, got {type(data)}.")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f
