"""Three-view inference: one thick-slice model per view on the same volume, fused (the paper's Sec. 4.2.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.inferers import Inferer
from monai.utils import look_up_option

from t2d_monai.transforms.view_fusion import FUSION_METHODS, fuse_views
from t2d_monai.transforms.view_permute import VIEW_AXES, VIEWS

__all__ = ["MultiViewInferer", "view_to_view_order"]


def view_to_view_order(from_view: str, to_view: str) -> list[int]:
    """Spatial permutation taking a volume laid out for ``from_view`` to the layout of ``to_view``.

    Layouts are those of :class:`~t2d_monai.transforms.ViewPermute` (``VIEW_AXES``): output spatial axis
    ``a`` of the result is input spatial axis ``order[a]``.
    """
    source, target = VIEW_AXES[from_view], VIEW_AXES[to_view]
    return [source.index(ras_axis) for ras_axis in target]


class MultiViewInferer(Inferer):
    """Run a per-view network for each of ``views`` on one volume and fuse the probabilities.

    ``inferer(inputs, networks)``: ``inputs`` is ``(N, 1, S0, S1, S2)`` laid out for ``input_view`` (for a
    RAS volume that is ``"axial"``, since :class:`~t2d_monai.transforms.ViewPermute` leaves it unchanged);
    ``networks`` maps each view name to its model (an ``nn.ModuleDict``). For each view the volume is
    permuted so that view's slicing axis is last, ``inferer`` (usually a
    :class:`~t2d_monai.inferers.ThickSliceInferer`) returns ``(N, C, ...)`` probabilities, which are
    permuted back; the views are then fused per case with :func:`~t2d_monai.transforms.fuse_views`
    (``"vote"``: majority vote of the thresholded views, the paper's choice; ``"mean"``: mean probability).

    Args:
        inferer: the single-view inferer, called as ``inferer(volume, network)``.
        views: the views to run (default all three).
        input_view: the layout of ``inputs`` (default ``"axial"``, i.e. RAS order).
        fusion: ``"vote"`` (default) or ``"mean"``.
        threshold: binarisation threshold for ``"vote"`` with one channel.

    Returns:
        ``(N, C, S0, S1, S2)``: the fused mask (``"vote"``) or the mean probability (``"mean"``).

    Raises:
        ValueError: for an unknown view or fusion name, or when ``networks`` has no model for a view.
    """

    def __init__(
        self,
        inferer: Inferer,
        views: Sequence[str] = VIEWS,
        input_view: str = "axial",
        fusion: str = "vote",
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if not views:
            raise ValueError("views must name at least one view.")
        self.inferer = inferer
        self.views = [look_up_option(v, VIEWS) for v in views]
        self.input_view = look_up_option(input_view, VIEWS)
        self.fusion = look_up_option(fusion, FUSION_METHODS)
        self.threshold = float(threshold)

    def __call__(self, inputs: torch.Tensor, network: Mapping[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        missing = [v for v in self.views if v not in network]
        if missing:
            raise ValueError(
                f"MultiViewInferer needs a network for each view {self.views}, missing {missing}; "
                "pass an nn.ModuleDict keyed by view name."
            )
        if inputs.ndim != 5:
            raise ValueError(f"MultiViewInferer expects inputs (N, 1, S0, S1, S2), got shape {tuple(inputs.shape)}.")
        per_view = []
        for view in self.views:
            order = view_to_view_order(self.input_view, view)
            back = np.argsort(order).tolist()
            volume = inputs.permute(0, 1, *(o + 2 for o in order))
            prob = self.inferer(volume, network[view], *args, **kwargs)
            per_view.append(prob.permute(0, 1, *(o + 2 for o in back)))
        fused = [
            fuse_views([p[i] for p in per_view], method=self.fusion, threshold=self.threshold)
            for i in range(inputs.shape[0])
        ]
        return torch.stack([torch.as_tensor(f) for f in fused])
