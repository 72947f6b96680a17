"""Fuse the probability volumes of the three single-view models (axial, coronal, sagittal).

Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image Segmentation"
(https://arxiv.org/abs/1904.01150), section 4.2.2: "Predictions from three viewpoints are fused
by majority voting" after thresholding each view's averaged probabilities at 0.5.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, MeanEnsemble, Transform, VoteEnsemble
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, look_up_option

__all__ = ["FUSION_METHODS", "ViewFusion", "ViewFusiond", "fuse_views"]

#: "vote": majority vote of the thresholded views (the paper); "mean": mean probability.
FUSION_METHODS = ("vote", "mean")


def fuse_views(
    views: Sequence[Any] | Mapping[Hashable, Any], method: str = "vote", threshold: float = 0.5
) -> torch.Tensor:
    """Fuse per-view probability volumes of one case, all channel-first ``(C, X, Y, Z)`` in the same space.

    - ``method="vote"``: with one channel, each view is binarised (``p >= threshold``) and the
      fused mask is 1 where more than half of the views say 1 (``monai.transforms.VoteEnsemble``;
      with an even number of views a tie gives 0); with ``C > 1`` channels (softmax classes), each
      view votes its argmax class and the fused class is the most voted one (a tie goes to the
      lowest class index), returned one-hot ``(C, X, Y, Z)``. ``threshold`` is not used then.
    - ``method="mean"``: the mean probability over the views (``monai.transforms.MeanEnsemble``),
      ``(C, X, Y, Z)``, to be thresholded by the caller.

    Args:
        views: the views' probability volumes (a sequence, or a mapping whose values are the views),
            already returned to the original orientation (e.g. ``Invertd`` over ``ViewPermuted``).
        method: ``"vote"`` (default, the paper's) or ``"mean"``.
        threshold: binarisation threshold of one-channel probabilities for ``"vote"`` (default 0.5).

    Returns:
        float tensor ``(C, X, Y, Z)`` (same type as the first view, e.g. a ``MetaTensor``).

    Raises:
        ValueError: when there is no view, or the views' shapes differ.

    Example::

        >>> fused = fuse_views([p_axial, p_coronal, p_sagittal])  # each (1, X, Y, Z) probabilities
    """
    method = look_up_option(method, FUSION_METHODS)
    items = list(views.values()) if isinstance(views, Mapping) else list(views)
    if not items:
        raise ValueError("fuse_views needs at least one view, got none.")
    shapes = [tuple(v.shape) for v in items]
    if len(set(shapes)) != 1:
        raise ValueError(
            f"all views must have the same shape (C, X, Y, Z) in the original orientation, got {shapes}; "
            "invert ViewPermuted (Invertd) on every view's prediction before fusing."
        )
    tensors = [convert_to_tensor(v, track_meta=False) for v in items]
    if method == "mean":
        fused = MeanEnsemble()(tensors)
    elif shapes[0][0] == 1:
        fused = VoteEnsemble()([(v >= threshold).float() for v in tensors])
    else:
        num_classes = shapes[0][0]
        voted = VoteEnsemble(num_classes=num_classes)([v.argmax(0, keepdim=True) for v in tensors])
        fused = torch.nn.functional.one_hot(voted[0].long(), num_classes).movedim(-1, 0)
    return convert_to_dst_type(fused, items[0], dtype=torch.float32)[0]


class ViewFusion(Transform):
    """Callable form of :func:`fuse_views` for bundle configs: ``ViewFusion(method)(views)``.

    Args:
        method: ``"vote"`` (default) or ``"mean"``.
        threshold: binarisation threshold of one-channel probabilities for ``"vote"`` (default 0.5).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, method: str = "vote", threshold: float = 0.5) -> None:
        self.method = look_up_option(method, FUSION_METHODS)
        self.threshold = float(threshold)

    def __call__(self, views: Sequence[Any] | Mapping[Hashable, Any]) -> torch.Tensor:
        return fuse_views(views, self.method, self.threshold)


class ViewFusiond(MapTransform):
    """Dictionary form: fuse the items of ``keys`` (one per view) into ``output_key``.

    Args:
        keys: keys of the views' ``(C, X, Y, Z)`` probability volumes, e.g.
            ``["pred_axial", "pred_coronal", "pred_sagittal"]``.
        output_key: key of the fused result (default ``"pred"``).
        method: ``"vote"`` (default) or ``"mean"``.
        threshold: binarisation threshold of one-channel probabilities for ``"vote"`` (default 0.5).
        allow_missing_keys: fuse only the keys present.

    Example (bundle config)::

        {"_target_": "t2d_monai.transforms.ViewFusiond",
         "keys": ["pred_axial", "pred_coronal", "pred_sagittal"], "output_key": "pred"}
    """

    backend = ViewFusion.backend

    def __init__(
        self,
        keys: KeysCollection,
        output_key: str = "pred",
        method: str = "vote",
        threshold: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key
        self.fusion = ViewFusion(method, threshold)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.output_key] = self.fusion([d[key] for key in self.key_iterator(d)])
        return d
