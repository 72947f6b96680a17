"""Losses over a whole thick-slice slab: the network's ``k * C`` channels regrouped as ``C`` classes x ``k`` slices."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch.nn.modules.loss import _Loss

__all__ = ["SlabDiceLoss", "SlabLoss", "capped_margin", "to_slab"]


def to_slab(x: torch.Tensor, num_classes: int, name: str = "input") -> torch.Tensor:
    """``(N, k * C, H, W)`` (channel ``s * C + c`` = class ``c`` of slice ``s``) -> ``(N, C, k, H, W)``.

    Raises:
        ValueError: when ``x`` is not 4D or its channels are not a multiple of ``num_classes``.
    """
    if x.ndim != 4 or x.shape[1] % num_classes != 0:
        raise ValueError(f"expected {name} of shape (N, k * {num_classes}, H, W), got {tuple(x.shape)}.")
    n, channels, h, w = x.shape
    return x.reshape(n, channels // num_classes, num_classes, h, w).transpose(1, 2)


def capped_margin(margin: int, num_slices: int) -> int:
    """The end slices per side a ``num_slices``-slice slab leaves out of the loss: ``margin``, capped at
    ``(num_slices - 1) // 2`` so that at least the centre slice keeps its loss."""
    return min(int(margin), (int(num_slices) - 1) // 2)


class SlabLoss(_Loss):
    """Apply a MONAI/torch segmentation loss to a thick-slice slab as one 3D block ``(N, C, k, H, W)``.

    :class:`t2d_monai.networks.T2DNet` predicts ``(N, k * C, H, W)`` logits. A loss applied to that tensor
    directly would treat the ``k`` slices as ``k`` classes, so a Dice loss would average ``k`` per-slice
    Dice values and give slices without any vessel the weight of slices full of them. This wrapper
    regroups prediction and target into ``(N, C, k, H, W)`` first; ``loss`` then sees one 3D block per slab.

    With ``margin > 0`` the ``margin`` slices at each end of the slab are left out of the loss (an extension of
    the paper, which supervises every slice): an end slice sees its context on one side only, and with
    :class:`~t2d_monai.inferers.ThickSliceInferer`'s ``weighting="gaussian"`` it counts for almost nothing at
    inference, so training spends the network on the slices inference uses. The margin is capped at
    ``(k - 1) // 2``, so at least one slice (the centre) stays: a one-slice network is unaffected. Such a network
    must be run with windows at a stride of at most ``k - 2 * margin``, so that every slice falls inside some
    window's supervised slices (the bundles' ``slab_margin`` and
    :func:`~t2d_monai.bundle.check_window_stride`).

    Args:
        loss: the wrapped loss, e.g. ``monai.losses.DiceLoss(sigmoid=True)`` or ``DiceCELoss(sigmoid=True)``.
        num_classes: ``C``, the classes predicted per slice (1 for one sigmoid channel).
        margin: slices at each end of the slab without loss. Defaults to 0 (every slice, the paper's).

    Raises:
        ValueError: when ``num_classes < 1`` or ``margin`` is not an int >= 0, or an input's channels are not a
            multiple of ``num_classes``.
    """

    def __init__(self, loss: torch.nn.Module, num_classes: int = 1, margin: int = 0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f"margin must be an int >= 0 (slices at each end without loss), got {margin!r}.")
        self.loss = loss
        self.num_classes = num_classes
        self.margin = margin

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002 (loss API)
        """``input``: logits ``(N, k * C, H, W)``; ``target``: ``(N, k, H, W)`` class indices or ``(N, k * C, H, W)``."""
        target_classes = self.num_classes if target.shape[1] == input.shape[1] else 1
        pred, true = to_slab(input, self.num_classes), to_slab(target, target_classes, "target")
        if pred.shape[2] != true.shape[2]:
            raise ValueError(f"input has {pred.shape[2]} slices, target {true.shape[2]}; they must match.")
        margin = capped_margin(self.margin, pred.shape[2])
        if margin:
            pred, true = pred[:, :, margin:-margin], true[:, :, margin:-margin]
        return self.loss(pred, true)


class SlabDiceLoss(SlabLoss):
    """The paper's training objective: Dice loss over every voxel of a ``k``-slice slab.

    Yu et al. 2019 (Sec. 4.2.2) minimise ``1 - 2 sum_i Y_i P_i / sum_i (Y_i + P_i)`` with ``i`` over the
    whole slab: :class:`SlabLoss` around :class:`monai.losses.DiceLoss`, whose options all work.

    Args:
        num_classes: ``C``, the classes predicted per slice.
        margin: slices at each end of the slab without loss (:class:`SlabLoss`). Defaults to 0 (the paper's).
        kwargs: passed to :class:`monai.losses.DiceLoss` (e.g. ``sigmoid=True``, ``batch=True``).

    Example::

        loss = SlabDiceLoss(sigmoid=True)
        value = loss(logits, labels)  # logits (N, k, H, W), labels (N, k, H, W) in {0, 1}
    """

    def __init__(self, num_classes: int = 1, margin: int = 0, **kwargs) -> None:
        super().__init__(DiceLoss(**kwargs), num_classes, margin)
