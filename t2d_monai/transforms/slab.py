"""Thick-slice slabs: ``num_slices`` neighbouring slices of a volume as the channels of one 2D sample.

A thickened 2D network (Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image
Segmentation", https://arxiv.org/abs/1904.01150) sees ``k`` neighbouring slices as ``k`` input
channels and predicts ``k`` slice masks. These transforms cut such ``(k, H, W)`` slabs out of a
``(1, H, W, D)`` volume whose slicing axis is last (see :class:`~t2d_monai.transforms.ViewPermute`),
for images and labels alike (a label slab keeps one channel per slice).

Volumes with fewer than ``k`` slices are padded along the slicing axis (``pad_mode``, default
``"edge"``: the first and last slices are repeated, so a padded image slice keeps its label; ``"reflect"``
mirrors the volume at its end slices)
with the extra slices split over both ends (the odd one at the end), exactly as
:class:`~t2d_monai.inferers.ThickSliceInferer` pads at test time.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from copy import deepcopy
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, Randomizable, Transform
from monai.transforms.traits import MultiSampleTrait
from monai.utils import TransformBackends, convert_to_tensor, deprecated, look_up_option

from t2d_monai import __version__

__all__ = [
    "SLICE_PAD_MODES",
    "RandThickSlabd",
    "ThickSlab",
    "ThickSlabd",
    "pad_slices",
    "slice_padding",
    # deprecated aliases (removed in 0.2.0)
    "RandThickSliceGroupd",
    "ThickSliceGroup",
    "ThickSliceGroupd",
]

#: padding modes along the slicing axis: "edge" repeats the end slices, "constant" adds zero slices, "reflect"
#: mirrors the volume at its end slices (``..., 2, 1, 0, 1, 2, ...``, as ``numpy.pad(mode="reflect")``; folded back
#: and forth where more slices are added than the volume has).
SLICE_PAD_MODES = ("edge", "constant", "reflect")


def slice_padding(depth: int, num_slices: int) -> tuple[int, int]:
    """Slices to add ``(before, after)`` so that ``depth`` slices hold at least one window of ``num_slices``."""
    missing = max(num_slices - depth, 0)
    return missing // 2, missing - missing // 2


def pad_slices(img: torch.Tensor, before: int, after: int, mode: str = "edge") -> torch.Tensor:
    """Pad the last axis of ``img`` (any leading shape, any dtype) by ``before``/``after`` slices.

    Args:
        img: tensor whose last axis is the slicing axis.
        before: slices added in front.
        after: slices added at the end.
        mode: ``"edge"`` (repeat the end slices), ``"constant"`` (zeros) or ``"reflect"`` (mirror at the end
            slices, which are not repeated; a one-slice volume is repeated as with ``"edge"``).

    Returns:
        a tensor with ``img.shape[-1] + before + after`` slices (``img`` itself when nothing is added).
    """
    mode = look_up_option(mode, SLICE_PAD_MODES)
    if before == 0 and after == 0:
        return img
    if mode == "constant":
        return torch.nn.functional.pad(img, (before, after))
    depth = img.shape[-1]
    index = torch.arange(-before, depth + after, device=img.device)
    if mode == "reflect" and depth > 1:  # a triangle wave of period 2 (depth - 1): 0 .. depth - 1 .. 1, 0 ..
        index = (depth - 1) - (index.remainder(2 * (depth - 1)) - (depth - 1)).abs()
    else:
        index = index.clamp_(0, depth - 1)
    return img.index_select(-1, index)


class ThickSlab(Transform):
    """The slab of slices ``start .. start + num_slices - 1`` of a ``(1, H, W, D)`` volume, as ``(num_slices, H, W)``.

    The slicing axis must be last (apply :class:`~t2d_monai.transforms.ViewPermute` first). A volume
    with ``D < num_slices`` is first padded to ``num_slices`` slices (``pad_mode``, split over both
    ends, see :func:`slice_padding`) and ``start`` indexes the padded volume (so it must be 0 then).
    A ``MetaTensor`` keeps its metadata and its 4x4 affine, whose origin moves to the slab's first
    slice, so channel ``s`` of the slab lies at world position ``affine @ (i, j, s, 1)``.

    Args:
        num_slices: slices per slab ``k`` (the paper uses 15 at test time; 3 to 15 in its ablations).
        start: index of the slab's first slice; can be overridden per call.
        pad_mode: padding along the slicing axis for short volumes, ``"edge"`` (default), ``"constant"`` (zeros)
            or ``"reflect"``.

    Raises:
        ValueError: when ``num_slices < 1`` or ``start < 0``; at call time when the input is not
            ``(1, H, W, D)`` or the slab does not fit in the (padded) volume.

    Example::

        >>> ThickSlab(num_slices=5, start=2)(torch.zeros(1, 32, 24, 10)).shape
        torch.Size([5, 32, 24])
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_slices: int, start: int = 0, pad_mode: str = "edge") -> None:
        if int(num_slices) != num_slices or num_slices < 1:
            raise ValueError(f"num_slices must be a positive integer, got {num_slices!r}.")
        if int(start) != start or start < 0:
            raise ValueError(f"start must be a non-negative integer, got {start!r}.")
        self.num_slices = int(num_slices)
        self.start = int(start)
        self.pad_mode = look_up_option(pad_mode, SLICE_PAD_MODES)

    def __call__(self, img: Any, start: int | None = None) -> torch.Tensor:
        """Cut the slab of ``img`` ``(1, H, W, D)`` starting at ``start`` (default: ``self.start``)."""
        start = self.start if start is None else int(start)
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.ndim != 4 or img.shape[0] != 1:
            raise ValueError(
                f"{type(self).__name__} expects a one-channel volume (1, H, W, D) with the slicing axis last, "
                f"got shape {tuple(img.shape)}; apply ViewPermuted and keep one channel per volume."
            )
        before, after = slice_padding(int(img.shape[-1]), self.num_slices)
        depth = int(img.shape[-1]) + before + after
        if start < 0 or start + self.num_slices > depth:
            raise ValueError(
                f"start={start} with num_slices={self.num_slices} does not fit a volume of {depth} slices "
                f"({int(img.shape[-1])} before padding); use 0 <= start <= {depth - self.num_slices}."
            )
        data = img.as_tensor() if isinstance(img, MetaTensor) else img
        data = pad_slices(data, before, after, self.pad_mode)
        slab = data[0, ..., start : start + self.num_slices].permute(2, 0, 1).contiguous()
        if not isinstance(img, MetaTensor):
            return slab
        out = MetaTensor(slab)
        out.copy_meta_from(img, copy_attr=False)
        shift = torch.eye(4, dtype=torch.float64)
        shift[2, 3] = start - before
        out.affine = img.affine.to(torch.float64) @ shift
        return out


class ThickSlabd(MapTransform):
    """Dictionary version of :class:`ThickSlab`: the same slab of every item of ``keys``.

    Args:
        keys: keys of the ``(1, H, W, D)`` items (typically image and label).
        num_slices: slices per slab.
        start: index of the slab's first slice.
        pad_mode: padding along the slicing axis for short volumes, ``"edge"``, ``"constant"`` or ``"reflect"``.
        allow_missing_keys: don't raise when a key is missing.
    """

    backend = ThickSlab.backend

    def __init__(
        self,
        keys: KeysCollection,
        num_slices: int,
        start: int = 0,
        pad_mode: str = "edge",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slab = ThickSlab(num_slices, start=start, pad_mode=pad_mode)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.slab(d[key])
        return d


class RandThickSlabd(Randomizable, MapTransform, MultiSampleTrait):
    """``num_samples`` random slabs of ``num_slices`` slices per volume, a share centred on foreground slices.

    The slab counterpart of ``monai.transforms.RandCropByPosNegLabeld``: each sample is centred
    (slice ``num_slices // 2`` of the slab, shifted inwards at the volume's ends) on a foreground
    slice (any voxel of ``label_key`` > 0) with probability ``pos / (pos + neg)``, otherwise on a
    background slice (no foreground voxel), so that thin structures such as vessels are seen often
    enough. When there is no background slice a negative sample may be centred anywhere. A label
    without any foreground falls back to uniform sampling over all slices with a ``UserWarning``
    (when ``pos > 0``). Volumes with fewer than ``num_slices`` slices are padded (``pad_mode``) to
    exactly one slab, so every sample is that slab. All items of ``keys`` get the same slabs.

    Args:
        keys: keys of the ``(1, H, W, D)`` items to cut (typically ``["image", "label"]``).
        label_key: key of the ``(1, H, W, D)`` label that defines foreground slices (need not be in ``keys``).
        num_slices: slices per slab ``k``.
        num_samples: slabs per volume; the call returns a list of that many dictionaries.
        pos: weight of foreground-centred slabs (default 1).
        neg: weight of background-centred slabs (default 1).
        pad_mode: padding along the slicing axis for short volumes, ``"edge"`` (default), ``"constant"`` or
            ``"reflect"``.
        allow_missing_keys: don't raise when a key of ``keys`` is missing.

    Raises:
        ValueError: when ``num_samples < 1``, ``pos`` or ``neg`` is negative, or both are 0.
        KeyError: at call time when ``label_key`` is missing.

    Example::

        >>> t = RandThickSlabd(["image", "label"], "label", num_slices=3, num_samples=4)
        >>> t.set_random_state(0)
        >>> out = t({"image": torch.rand(1, 8, 8, 20), "label": (torch.rand(1, 8, 8, 20) > 0.9).float()})
        >>> len(out), out[0]["image"].shape
        (4, torch.Size([3, 8, 8]))
    """

    backend = ThickSlab.backend

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str,
        num_slices: int,
        num_samples: int = 1,
        pos: float = 1.0,
        neg: float = 1.0,
        pad_mode: str = "edge",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.slab = ThickSlab(num_slices, pad_mode=pad_mode)
        if int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
        if pos < 0 or neg < 0 or pos + neg == 0:
            raise ValueError(f"pos and neg must be non-negative and not both zero, got pos={pos!r}, neg={neg!r}.")
        self.label_key = label_key
        self.num_slices = self.slab.num_slices
        self.num_samples = int(num_samples)
        self.pos_ratio = float(pos) / float(pos + neg)
        self._starts: list[int] = []

    def randomize(self, label: torch.Tensor) -> None:
        """Draw the ``num_samples`` slab starts for ``label`` ``(1, H, W, D)`` (stored in ``self._starts``)."""
        depth = int(label.shape[-1])
        if depth <= self.num_slices:  # one slab (after padding) holds the whole volume
            self._starts = [0] * self.num_samples
            return
        fg = convert_to_tensor(label, track_meta=False).reshape(-1, depth).gt(0).any(0).cpu().numpy()
        fg_slices, bg_slices, all_slices = np.flatnonzero(fg), np.flatnonzero(~fg), np.arange(depth)
        if fg_slices.size == 0 and self.pos_ratio > 0:
            warnings.warn(
                f"{type(self).__name__}: label '{self.label_key}' has no foreground; sampling slabs uniformly.",
                stacklevel=2,
            )
        starts = []
        for _ in range(self.num_samples):
            candidates = fg_slices if self.R.rand() < self.pos_ratio else bg_slices
            centre = int(self.R.choice(candidates if candidates.size else all_slices))
            starts.append(min(max(centre - self.num_slices // 2, 0), depth - self.num_slices))
        self._starts = starts

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        d = dict(data)
        if self.label_key not in d:
            raise KeyError(f"label_key '{self.label_key}' is not in the data (keys: {list(d)}).")
        self.randomize(d[self.label_key])
        ret: list[dict[Hashable, Any]] = [dict(d) for _ in range(self.num_samples)]
        for i in range(self.num_samples):
            for key in set(d).difference(self.keys):
                ret[i][key] = deepcopy(d[key])
        for key in self.key_iterator(d):
            for i, start in enumerate(self._starts):
                ret[i][key] = self.slab(d[key], start=start)
        return ret


_RENAMED = {"since": "0.1.0", "removed": "0.2.0", "version_val": __version__}


@deprecated(**_RENAMED, msg_suffix="use ThickSlab (the transforms are named for the slabs they cut).")
class ThickSliceGroup(ThickSlab):
    """Deprecated name of :class:`ThickSlab`."""


@deprecated(**_RENAMED, msg_suffix="use ThickSlabd.")
class ThickSliceGroupd(ThickSlabd):
    """Deprecated name of :class:`ThickSlabd`."""


@deprecated(**_RENAMED, msg_suffix="use RandThickSlabd.")
class RandThickSliceGroupd(RandThickSlabd):
    """Deprecated name of :class:`RandThickSlabd`."""
