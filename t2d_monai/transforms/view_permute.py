"""Move the slicing axis of a view (axial, coronal or sagittal) last, invertibly.

The thickened 2D networks of Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image
Segmentation" (https://arxiv.org/abs/1904.01150), see a CT volume as a stack of slices along one
view and train one model per view. :class:`ViewPermute` turns a channel-first RAS volume
``(C, X, Y, Z)`` into ``(C, H, W, D)`` with the slices of the chosen view along the last axis,
which is the layout that :class:`~t2d_monai.transforms.ThickSlab` and
:class:`~t2d_monai.inferers.ThickSliceInferer` expect.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform
from monai.transforms.inverse import TraceableTransform
from monai.utils import TraceKeys, TransformBackends, convert_to_tensor, look_up_option

__all__ = ["VIEWS", "VIEW_AXES", "ViewPermute", "ViewPermuted", "permute_spatial"]

#: view name -> order of the spatial axes (0 = X, 1 = Y, 2 = Z of a RAS volume) after the permutation.
#: The slicing axis goes last; the two in-plane axes keep their RAS order, so a slice is indexed
#: (X, Y) for axial, (X, Z) for coronal and (Y, Z) for sagittal. No axis is flipped.
VIEW_AXES: dict[str, tuple[int, int, int]] = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}
#: the three views, in the order used everywhere (configs, three-view fusion, checkpoints, figures).
VIEWS: tuple[str, ...] = tuple(VIEW_AXES)


def permute_spatial(img: torch.Tensor, order: Sequence[int], transform_info: dict | None = None) -> torch.Tensor:
    """Permute the three spatial axes of a channel-first ``(C, S0, S1, S2)`` tensor, updating its affine.

    Output spatial axis ``a`` is input spatial axis ``order[a]``. For a
    :class:`~monai.data.MetaTensor` the affine becomes ``affine @ P`` with ``P[order[a], a] = 1``,
    so every voxel keeps its world coordinate, and (when ``transform_info`` asks for tracing)
    ``{"order": order}`` is pushed to ``applied_operations``.

    Args:
        img: channel-first 4D tensor (a ``MetaTensor`` keeps its metadata).
        order: a permutation of ``(0, 1, 2)``.
        transform_info: ``transform.get_transform_info()`` of the calling transform, or None
            to update the affine without recording the operation.

    Returns:
        the permuted tensor, contiguous, same type as ``img``.
    """
    order = [int(o) for o in order]
    sp_size = [int(s) for s in img.shape[1:]]
    xform = torch.zeros(4, 4, dtype=torch.float64)
    xform[3, 3] = 1.0
    for new_axis, old_axis in enumerate(order):
        xform[old_axis, new_axis] = 1.0
    meta_info = TraceableTransform.track_transform_meta(
        img,
        sp_size=[sp_size[o] for o in order],
        affine=xform,
        extra_info={"order": order},
        orig_size=sp_size,
        transform_info=transform_info,
        lazy=False,
    )
    out = img.permute(0, *(o + 1 for o in order)).contiguous()
    return out.copy_meta_from(meta_info) if isinstance(out, MetaTensor) else out


class ViewPermute(InvertibleTransform):
    """Move the slicing axis of ``view`` last in a channel-first RAS volume.

    ``(C, X, Y, Z)`` becomes (``VIEW_AXES``):

    - ``"axial"``: ``(C, X, Y, Z)``, slices along Z (the identity);
    - ``"coronal"``: ``(C, X, Z, Y)``, slices along Y;
    - ``"sagittal"``: ``(C, Y, Z, X)``, slices along X.

    The in-plane axes keep their RAS order and no axis is flipped (a pure permutation, so the
    round trip is exact). The volume should be in RAS orientation first (e.g. ``Orientationd(axcodes="RAS")``),
    otherwise the view names do not match the anatomy. A ``MetaTensor`` keeps its world
    coordinates: the affine is right-multiplied by the permutation matrix. The transform is
    invertible: :meth:`inverse` (and ``monai.transforms.Invertd`` over a pipeline that contains
    :class:`ViewPermuted`) returns a prediction to the original axis order and affine, whatever
    its channel count.

    Args:
        view: one of ``"axial"``, ``"coronal"``, ``"sagittal"``.

    Raises:
        ValueError: when ``view`` is unknown, or the input is not 4D channel-first ``(C, X, Y, Z)``.

    Example::

        >>> img = torch.zeros(1, 64, 48, 32)
        >>> ViewPermute("sagittal")(img).shape
        torch.Size([1, 48, 32, 64])
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, view: str = "axial") -> None:
        self.view: str = look_up_option(view, VIEWS)
        self.order: tuple[int, int, int] = VIEW_AXES[self.view]

    def __call__(self, img: Any) -> torch.Tensor:
        """Permute ``img`` of shape ``(C, X, Y, Z)``; returns ``(C, H, W, D)`` with D the slicing axis."""
        img = convert_to_tensor(img, track_meta=get_track_meta())
        _check_4d(img, type(self).__name__)
        return permute_spatial(img, self.order, transform_info=self.get_transform_info())

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Undo the most recent :class:`ViewPermute` recorded in ``data.applied_operations``."""
        _check_4d(data, f"{type(self).__name__}.inverse")
        transform = self.pop_transform(data)
        order = transform[TraceKeys.EXTRA_INFO]["order"]
        return permute_spatial(data, np.argsort(order).tolist(), transform_info=None)


class ViewPermuted(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`ViewPermute`: permute every item of ``keys`` to ``view``.

    Args:
        keys: keys of the channel-first ``(C, X, Y, Z)`` items to permute.
        view: one of ``"axial"``, ``"coronal"``, ``"sagittal"`` (see :class:`ViewPermute`).
        allow_missing_keys: don't raise when a key is missing.

    Example (predictions back to the original space)::

        pre = Compose([LoadImaged(keys), EnsureChannelFirstd(keys), Orientationd(keys, "RAS"),
                       ViewPermuted(keys, view="coronal")])
        post = Invertd(keys="pred", transform=pre, orig_keys="image")
    """

    backend = ViewPermute.backend

    def __init__(self, keys: KeysCollection, view: str = "axial", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.permuter = ViewPermute(view)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.permuter(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.permuter.inverse(d[key])
        return d


def _check_4d(img: Any, name: str) -> None:
    if getattr(img, "ndim", None) != 4:
        raise ValueError(
            f"{name} expects a channel-first volume (C, X, Y, Z), got shape {tuple(getattr(img, 'shape', ()))}; "
            "add a channel dimension first (e.g. EnsureChannelFirstd) and remove any batch dimension."
        )
