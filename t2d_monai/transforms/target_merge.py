"""Merge the foreground probability maps of several single-target models into one label map.

Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image Segmentation"
(https://arxiv.org/abs/1904.01150), section 4.1: one model per organ, and "when a pixel is predicted as more
than one organ, we choose the one with the largest confidence".
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, get_equivalent_dtype

__all__ = ["BACKGROUND", "MergeTargets", "MergeTargetsd", "check_targets", "merge_targets", "target_legend"]

#: the legend's name of label 0
BACKGROUND = "background"


def _threshold_list(names: Sequence[str], thresholds: float | Sequence[float] | Mapping[str, float]) -> list[float]:
    """One threshold per name, from a single value, a sequence in the names' order, or a name -> value mapping."""
    if isinstance(thresholds, Mapping):
        missing = [n for n in names if n not in thresholds]
        if missing:
            raise ValueError(f"no threshold for target(s) {missing}; give one per target, e.g. {{name: 0.5}}.")
        values = [thresholds[n] for n in names]
    elif isinstance(thresholds, Real):
        values = [thresholds] * len(names)
    else:
        values = list(thresholds)
        if len(values) != len(names):
            raise ValueError(
                f"{len(values)} threshold(s) {values} for {len(names)} target(s) {list(names)}; give one threshold "
                "per target in the same order (or a single value for all)."
            )
    for name, value in zip(names, values):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
            raise ValueError(
                f"threshold of target {name!r} is {value!r}; it must be a probability strictly between 0 and 1 "
                "(the bundle's `threshold`, e.g. 0.5)."
            )
    return [float(v) for v in values]


def check_targets(
    names: Sequence[str], thresholds: float | Sequence[float] | Mapping[str, float], dtype: Any = torch.uint8
) -> list[float]:
    """Check the target names and thresholds of :func:`merge_targets`; returns one threshold per name.

    Raises:
        ValueError: no target; a name that is empty, not a string, repeated or ``"background"``; a threshold
            missing or outside ``(0, 1)``; more targets than the integer ``dtype`` can label.
    """
    names = list(names)
    if not names:
        raise ValueError("no target to merge; give at least one target (name, probability map, threshold).")
    bad = [n for n in names if not isinstance(n, str) or not n or n == BACKGROUND]
    if bad:
        raise ValueError(f"target names {bad} are not allowed: use non-empty strings other than {BACKGROUND!r} "
                         "(label 0 is the background).")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"target names {repeated} are given more than once in {names}; give each target a unique "
                         "name (e.g. the bundle folder's name).")
    torch_dtype = get_equivalent_dtype(dtype, torch.Tensor)
    if torch_dtype.is_floating_point or torch_dtype.is_complex or torch_dtype == torch.bool:
        raise ValueError(f"dtype {dtype} is not an integer type; use e.g. torch.uint8 or numpy.int16.")
    max_label = torch.iinfo(torch_dtype).max
    if len(names) > max_label:
        raise ValueError(f"{len(names)} targets do not fit in {dtype} (labels up to {max_label}); merge fewer "
                         "targets or pass a wider dtype, e.g. dtype=torch.int16.")
    return _threshold_list(names, thresholds)


def target_legend(names: Sequence[str]) -> dict[int, str]:
    """Label value -> name of a map merged from targets ``names``: ``{0: "background", 1: names[0], ...}``."""
    return {0: BACKGROUND, **{i + 1: str(n) for i, n in enumerate(names)}}


def merge_targets(
    probabilities: Sequence[Any] | Mapping[str, Any],
    names: Sequence[str] | None = None,
    thresholds: float | Sequence[float] | Mapping[str, float] = 0.5,
    dtype: Any = torch.uint8,
) -> Any:
    """One label map from per-target foreground probability maps of the same case, all of the same shape.

    A voxel is 0 (background) where no target's probability reaches its threshold (``p >= threshold``, as
    ``monai.transforms.AsDiscrete(threshold=...)`` that the bundles apply, so one target merged alone gives
    exactly its bundle's mask), else ``1 + i`` where target ``i`` has the largest probability among the targets
    at or above their thresholds. Ties (equal probabilities) go to the target given first. NaN counts as below
    every threshold.

    Args:
        probabilities: the maps, e.g. ``(H, W, D)`` or ``(1, H, W, D)`` tensors or arrays in ``[0, 1]``, in
            target order; or a mapping name -> map (its order is the target order).
        names: target names in the order of ``probabilities`` (a sequence); None for a mapping (its keys).
        thresholds: one value for all targets, one per target in order, or a mapping name -> value; each in
            ``(0, 1)``. Default 0.5.
        dtype: integer type of the result (torch or numpy); default ``torch.uint8`` (up to 255 targets).

    Returns:
        label map of the maps' shape and ``dtype``, of the first map's type (a ``MetaTensor`` keeps its
        metadata, a numpy array stays one). :func:`target_legend` names its values.

    Raises:
        ValueError: no map; names missing, of another count than the maps, or invalid; maps of different shapes
            (naming both targets and shapes); thresholds missing or outside ``(0, 1)``; more targets than
            ``dtype`` can label (:func:`check_targets`).

    Example::

        >>> labels = merge_targets({"pancreas": p1, "duodenum": p2}, thresholds={"pancreas": 0.5, "duodenum": 0.4})
        >>> target_legend(["pancreas", "duodenum"])
        {0: 'background', 1: 'pancreas', 2: 'duodenum'}
    """
    if isinstance(probabilities, Mapping):
        if names is not None:
            raise ValueError("names are the mapping's keys when probabilities is a mapping; leave names out.")
        names, maps = list(probabilities), list(probabilities.values())
    else:
        maps = list(probabilities)
        if names is None:
            raise ValueError("names are required when probabilities is a sequence; give one name per map in order "
                             "(or pass a mapping name -> map).")
        names = list(names)
    if not maps:
        raise ValueError("no probability map to merge; give at least one target.")
    if len(maps) != len(names):
        raise ValueError(f"{len(maps)} probability map(s) for {len(names)} name(s) {names}; give one name per map.")
    values = check_targets(names, thresholds, dtype)
    shapes = [tuple(m.shape) for m in maps]
    for name, shape in zip(names[1:], shapes[1:]):
        if shape != shapes[0]:
            raise ValueError(
                f"probability maps differ in shape: target {names[0]!r} has {shapes[0]}, target {name!r} has "
                f"{shape}; give every target's map in the same space (the bundles write them in the input's space)."
            )
    stacked = torch.stack([convert_to_tensor(m, dtype=torch.float32, track_meta=False) for m in maps])
    limits = torch.tensor(values, dtype=torch.float32, device=stacked.device).view(-1, *([1] * (stacked.ndim - 1)))
    above = stacked >= limits  # NaN >= t is False
    best = torch.where(above, stacked, torch.full_like(stacked, -1.0)).argmax(0)  # first maximum: ties -> first target
    labels = torch.where(above.any(0), best + 1, torch.zeros_like(best))
    torch_dtype = get_equivalent_dtype(dtype, torch.Tensor)
    out_dtype = torch_dtype if isinstance(maps[0], torch.Tensor) else get_equivalent_dtype(torch_dtype, np.ndarray)
    return convert_to_dst_type(labels.to(torch_dtype), maps[0], dtype=out_dtype)[0]


class MergeTargets(Transform):
    """Callable form of :func:`merge_targets` with the targets fixed: ``MergeTargets(names, thresholds)(maps)``.

    Args:
        names: target names, in the order (tie order) of the maps it will be given.
        thresholds: one value, one per target, or name -> value; each in ``(0, 1)``. Default 0.5.
        dtype: integer type of the label map; default ``torch.uint8``.

    Raises:
        ValueError: invalid names or thresholds (:func:`check_targets`), here rather than at the first call.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self, names: Sequence[str], thresholds: float | Sequence[float] | Mapping[str, float] = 0.5,
        dtype: Any = torch.uint8,
    ) -> None:
        self.names = list(names)
        self.thresholds = check_targets(self.names, thresholds, dtype)
        self.dtype = dtype

    @property
    def legend(self) -> dict[int, str]:
        """Label value -> target name (:func:`target_legend`)."""
        return target_legend(self.names)

    def __call__(self, probabilities: Sequence[Any]) -> Any:
        return merge_targets(probabilities, self.names, self.thresholds, self.dtype)


class MergeTargetsd(MapTransform):
    """Dictionary form: merge the probability maps under ``keys`` (one per target, in target order) into
    ``output_key``.

    Args:
        keys: keys of the targets' maps, e.g. ``["pred_pancreas", "pred_duodenum"]``; their order is the tie order.
        thresholds: one value, one per key, or name -> value; each in ``(0, 1)``. Default 0.5.
        names: target names of the keys (the legend's names); default: the keys.
        output_key: key of the label map (default ``"pred"``).
        dtype: integer type of the label map; default ``torch.uint8``.

    Example (bundle config)::

        {"_target_": "t2d_monai.transforms.MergeTargetsd", "keys": ["pred_pancreas", "pred_duodenum"],
         "names": ["pancreas", "duodenum"], "thresholds": 0.5}
    """

    backend = MergeTargets.backend

    def __init__(
        self,
        keys: KeysCollection,
        thresholds: float | Sequence[float] | Mapping[str, float] = 0.5,
        names: Sequence[str] | None = None,
        output_key: str = "pred",
        dtype: Any = torch.uint8,
    ) -> None:
        super().__init__(keys)
        self.merge = MergeTargets([str(k) for k in self.keys] if names is None else names, thresholds, dtype)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.output_key] = self.merge([d[key] for key in self.keys])
        return d
