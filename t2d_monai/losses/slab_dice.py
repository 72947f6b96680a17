"""Dice loss over a whole thick-slice slab, as the paper's training objective."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss

__all__ = ["SlabDiceLoss"]


class SlabDiceLoss(DiceLoss):
    """Dice loss of one prediction slab of ``k`` slices, counted over all of its slices together.

    The paper (Yu et al. 2019, Sec. 4.2.2) minimises ``1 - 2 sum_i Y_i P_i / sum_i (Y_i + P_i)`` where ``i``
    runs over every voxel of the ``k``-slice slab. A plain :class:`monai.losses.DiceLoss` on the
    ``(N, k * C, H, W)`` logits of :class:`t2d_monai.networks.T2DNet` would instead average ``k`` per-slice
    Dice values, which gives slices without any vessel the same weight as slices full of them. This loss
    regroups the channels into ``(N, C, k, H, W)`` (channel ``s * C + c`` is class ``c`` of slice ``s``)
    and then applies :class:`~monai.losses.DiceLoss` unchanged, so every DiceLoss option still works.

    Args:
        num_classes: ``C``, the classes predicted per slice (1 for a single sigmoid channel).
        kwargs: passed to :class:`monai.losses.DiceLoss` (e.g. ``sigmoid=True``, ``batch=True``).

    Raises:
        ValueError: when ``num_classes < 1``, or the channel count of an input is not a multiple of it.

    Example::

        loss = SlabDiceLoss(sigmoid=True)
        value = loss(logits, labels)  # logits (N, k, H, W), labels (N, k, H, W) in {0, 1}
    """

    def __init__(self, num_classes: int = 1, **kwargs) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def _to_slab(self, x: torch.Tensor, name: str, num_classes: int) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] % num_classes != 0:
            raise ValueError(
                f"SlabDiceLoss expects {name} of shape (N, k * {num_classes}, H, W), got {tuple(x.shape)}."
            )
        n, channels, h, w = x.shape
        return x.reshape(n, channels // num_classes, num_classes, h, w).transpose(1, 2)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002 (DiceLoss API)
        """``input``: logits ``(N, k * C, H, W)``; ``target``: ``(N, k, H, W)`` indices or ``(N, k * C, H, W)``."""
        target_classes = self.num_classes if target.shape[1] == input.shape[1] else 1
        return super().forward(
            self._to_slab(input, "input", self.num_classes), self._to_slab(target, "target", target_classes)
        )
