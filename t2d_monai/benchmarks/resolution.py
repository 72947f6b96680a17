"""How much Dice a 2D network that predicts at a reduced in-plane resolution can reach on a label.

DeepLabV3+ (and so every 2D row of the comparison) predicts at 1/4 of its input size and upsamples the
logits bilinearly. Vessels one or two voxels wide do not survive that: even a perfect stride-4
prediction loses them. :func:`stride_ceiling_dice` estimates the loss on the true mask itself: each
slice of the view is average-pooled by ``stride`` (the best a stride-``stride`` map can hold: the vessel
share of each cell), upsampled back bilinearly and thresholded; the best Dice over a few thresholds is
reported. It is an estimate of the ceiling, not a strict bound (a network may place its low-resolution
logits more cleverly than the cell averages), and it ignores everything else the network gets wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from t2d_monai.transforms.view_permute import VIEW_AXES

__all__ = ["DEEPLAB_PREDICTION_STRIDE", "stride_ceiling_dice"]

#: in-plane stride of the logits of DeepLabV3+ and T2DNet before the final bilinear upsampling
DEEPLAB_PREDICTION_STRIDE = 4


def stride_ceiling_dice(
    label: torch.Tensor,
    view: str,
    stride: int = DEEPLAB_PREDICTION_STRIDE,
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
) -> float:
    """
    Dice of a binary ``label`` after a round trip through a stride-``stride`` in-plane grid of ``view``.

    Args:
        label: ``(X, Y, Z)`` or ``(1, X, Y, Z)`` binary mask in RAS order (as loaded by the bundle).
        view: ``"axial"``, ``"coronal"`` or ``"sagittal"``: which two axes are in-plane.
        stride: pooling factor in both in-plane axes (>= 1; 1 returns 1.0 for a non-empty label).
        thresholds: thresholds tried on the upsampled cell averages; the best Dice is returned.

    Returns:
        the best Dice; 1.0 for an empty label (nothing to lose).

    Raises:
        ValueError: unknown view, a label that is not 3D (or 4D with one channel), or stride < 1.
    """
    if view not in VIEW_AXES:
        raise ValueError(f"view must be one of {list(VIEW_AXES)}, got {view!r}.")
    if int(stride) < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}.")
    mask = torch.as_tensor(label)
    if mask.dim() == 4 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() != 3:
        raise ValueError(f"label must be (X, Y, Z) or (1, X, Y, Z), got shape {tuple(mask.shape)}.")
    mask = (mask > 0).float()
    total = float(mask.sum())
    if total == 0:
        return 1.0
    # slicing axis first: (slices, 1, H, W), the in-plane axes in the view's order
    order = VIEW_AXES[view]
    slices = mask.permute(order[2], order[0], order[1]).unsqueeze(1)
    h, w = slices.shape[-2:]
    stride = int(stride)
    padded = F.pad(slices, [0, (-w) % stride, 0, (-h) % stride])
    cells = F.avg_pool2d(padded, stride)
    back = F.interpolate(cells, size=padded.shape[-2:], mode="bilinear", align_corners=False)[..., :h, :w]
    best = 0.0
    for t in thresholds:
        pred = back > float(t)
        inter = float((pred & (slices > 0)).sum())
        best = max(best, 2 * inter / (float(pred.sum()) + total))
    return best
