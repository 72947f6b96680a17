"""Surface-distance metrics in millimetres: MONAI's Hausdorff distance (95th percentile) and normalised surface
Dice, with the voxel spacing read from each prediction's affine instead of counting voxels.

MONAI's ``HausdorffDistanceMetric`` and ``SurfaceDiceMetric`` measure in voxels unless ``spacing`` is passed to
every call, and MONAI's ignite handler (``IgniteMetricHandler``) passes none; a CT volume of 0.8 x 0.8 x 5 mm
voxels then reports a one-slice error as 1 instead of 5 mm. These subclasses take the spacing of every batch
item from its ``MetaTensor`` affine (what ``LoadImaged`` and ``Invertd`` give), so the figures are in mm in
``evaluate.json`` and the benchmark alike.
"""

from __future__ import annotations

import torch
from monai.data import MetaTensor
from monai.metrics import HausdorffDistanceMetric, SurfaceDiceMetric

__all__ = ["HausdorffDistance95", "NormalizedSurfaceDice", "spacing_of"]


def spacing_of(y_pred: torch.Tensor, name: str = "the metric") -> list[list[float]]:
    """Voxel spacing (mm) of every batch item of ``y_pred (B, C, *spatial)``, from its ``MetaTensor`` affine.

    Raises:
        ValueError: ``y_pred`` is a plain tensor (no affine), naming the fix.
    """
    if not isinstance(y_pred, MetaTensor):
        raise ValueError(
            f"{name} measures in millimetres and needs the voxel spacing: pass MetaTensors with their affine "
            "(as LoadImaged and Invertd give) or call it with spacing=(sx, sy, sz)."
        )
    spatial = y_pred.ndim - 2
    affine = y_pred.affine
    affines = affine.reshape(-1, *affine.shape[-2:])
    if affines.shape[0] not in (1, y_pred.shape[0]):
        raise ValueError(f"{name}: {affines.shape[0]} affines for a batch of {y_pred.shape[0]}.")
    spacing = torch.linalg.vector_norm(affines[:, :spatial, :spatial].double(), dim=1)  # (B or 1, spatial)
    return [[float(s) for s in spacing[min(b, spacing.shape[0] - 1)]] for b in range(y_pred.shape[0])]


class HausdorffDistance95(HausdorffDistanceMetric):
    """
    95th-percentile symmetric Hausdorff distance in mm (MONAI's ``HausdorffDistanceMetric(percentile=95)``),
    spacing from each item's affine (:func:`spacing_of`) unless ``spacing`` is given to the call. Inputs
    ``(B, C, X, Y, Z)`` binarised like ``DiceMetric``'s; output ``(B, C)``. An empty prediction or label gives
    nan for that item (MONAI's rule), which :meth:`aggregate`'s mean leaves out.

    Args:
        include_background: keep channel 0. Defaults to True (one binary vessel channel).
        kwargs: the rest of ``HausdorffDistanceMetric``'s arguments (``reduction``, ``get_not_nans``, ...).
    """

    def __init__(self, include_background: bool = True, **kwargs) -> None:
        super().__init__(include_background=include_background, percentile=95.0, **kwargs)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:  # type: ignore[override]
        if kwargs.get("spacing") is None:
            kwargs["spacing"] = spacing_of(y_pred, type(self).__name__)
        return super()._compute_tensor(y_pred, y, **kwargs)


class NormalizedSurfaceDice(SurfaceDiceMetric):
    """
    Normalised surface Dice (Nikolov et al. 2021, https://arxiv.org/abs/1809.04430) at a tolerance in mm:
    the share of both boundaries that lies within ``tolerance_mm`` of the other (MONAI's ``SurfaceDiceMetric``),
    spacing from each item's affine (:func:`spacing_of`). Inputs ``(B, C, X, Y, Z)`` binarised; output ``(B, C)``
    in [0, 1], higher is better; 0 where only one of prediction and label is empty, nan where both are (left
    out of the mean).

    Args:
        tolerance_mm: boundary tolerance in mm, the same for every channel. Defaults to 1.0.
        include_background: keep channel 0. Defaults to True (one binary vessel channel).
        kwargs: the rest of ``SurfaceDiceMetric``'s arguments (``reduction``, ``get_not_nans``, ...).

    Raises:
        ValueError: ``tolerance_mm`` not a number > 0.
    """

    def __init__(self, tolerance_mm: float = 1.0, include_background: bool = True, **kwargs) -> None:
        if isinstance(tolerance_mm, bool) or not isinstance(tolerance_mm, (int, float)) or not tolerance_mm > 0:
            raise ValueError(f"tolerance_mm must be a number of millimetres > 0, got {tolerance_mm!r}.")
        self.tolerance_mm = float(tolerance_mm)
        super().__init__(class_thresholds=[self.tolerance_mm], include_background=include_background, **kwargs)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:  # type: ignore[override]
        if kwargs.get("spacing") is None:
            kwargs["spacing"] = spacing_of(y_pred, type(self).__name__)
        # one tolerance per channel kept, whatever the channel count
        self.class_thresholds = [self.tolerance_mm] * max(y_pred.shape[1] - (0 if self.include_background else 1), 1)
        return super()._compute_tensor(y_pred, y, **kwargs)
