"""Readable errors for images and labels that the pipeline cannot use (2D, 4D, mismatched shapes)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["CheckImageLabeld"]


def _name(data: Any, key: Hashable) -> str:
    meta = getattr(data, "meta", None) or {}
    return str(meta.get("filename_or_obj", key))


class CheckImageLabeld(MapTransform):
    """Check, right after ``LoadImaged``, that each item is one 3D volume and that all items share a shape.

    A 2D image, a 4D image (several phases or time points), or a label whose shape differs from its image
    would otherwise fail much later with a shape error deep inside torch. Place it directly after
    ``LoadImaged(..., image_only=True)`` (before ``EnsureChannelFirstd``), where a 3D NIfTI volume is
    ``(X, Y, Z)``. A trailing singleton axis ``(X, Y, Z, 1)`` is accepted as 3D.

    Args:
        keys: the items to check; the first is the reference for the shape (usually ``["image", "label"]``).
        allow_missing_keys: skip keys absent from the data.

    Raises:
        ValueError: naming the file, its shape and what to do about it.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        reference: tuple[Hashable, tuple[int, ...]] | None = None
        for key in self.key_iterator(d):
            shape = tuple(int(s) for s in d[key].shape)
            spatial = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
            if len(spatial) != 3:
                kind = {2: "a 2D image", 4: "a 4D image (several volumes, e.g. phases or time points)"}.get(
                    len(spatial), f"a {len(spatial)}D array"
                )
                raise ValueError(
                    f"{key} {_name(d[key], key)!r} is {kind} of shape {shape}; this model segments single 3D CT "
                    "volumes (X, Y, Z). Give one 3D volume per case (for a 4D file, save the phase you want as 3D)."
                )
            if reference is None:
                reference = (key, spatial)
            elif spatial != reference[1]:
                raise ValueError(
                    f"{key} {_name(d[key], key)!r} has shape {spatial} but {reference[0]} "
                    f"{_name(d[reference[0]], reference[0])!r} has shape {reference[1]}; a label must cover its "
                    "image voxel for voxel. Check that the files belong to the same case and were not resampled."
                )
        return d
