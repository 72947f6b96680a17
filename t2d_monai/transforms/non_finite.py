"""The non-finite voxel policy: NaN and infinite voxels are replaced before the network, with a warning."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_tensor

__all__ = ["ReplaceNonFinited"]

logger = logging.getLogger(__name__)


def _name(data: Any, key: Hashable) -> str:
    meta = getattr(data, "meta", None) or {}
    return str(meta.get("filename_or_obj", key))


class ReplaceNonFinited(MapTransform):
    """Replace NaN, +inf and -inf voxels by ``value`` and log a warning that names the file and the count.

    Why: one NaN voxel turns every window of a thickened 2D network that contains it into NaN, and the
    threshold turns NaN into background, so whole slices of the prediction would vanish without a word. CT
    reconstructions can hold NaN outside the field of view. The bundles' policy is to replace such voxels with
    the lower bound of the HU window (they then look like fat or air, i.e. background) and to warn, rather than
    to refuse the whole case; a volume in which every voxel is non-finite is refused (nothing left to segment).

    Place it after ``LoadImaged`` and before the intensity scaling. Inputs are not modified: a volume with
    non-finite voxels is copied, a finite one passes through untouched (the same object).

    Args:
        keys: the images to clean (not labels).
        value: the replacement, in the image's units (the bundles: ``@hu_window[0]``).
        allow_missing_keys: skip keys absent from the data.

    Raises:
        ValueError: an image with no finite voxel at all, naming the file.

    Example::

        >>> d = ReplaceNonFinited("image", value=-100.0)({"image": torch.tensor([[1.0, float("nan")]])})
        >>> d["image"]
        tensor([[   1., -100.]])
    """

    def __init__(self, keys: KeysCollection, value: float, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
            raise ValueError(f"value must be a finite number, got {value!r}.")
        self.value = float(value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            tensor = convert_to_tensor(img, track_meta=False)
            if not torch.is_floating_point(tensor):
                continue  # integer images cannot hold NaN or inf
            bad = ~torch.isfinite(tensor)
            count = int(bad.sum())
            if count == 0:
                continue
            if count == bad.numel():
                raise ValueError(
                    f"{key} {_name(img, key)!r}: every voxel ({count}) is NaN or infinite; there is nothing to "
                    "segment. Check the file (its conversion or reconstruction) and give a volume in HU."
                )
            logger.warning(
                f"{key} {_name(img, key)!r}: {count} non-finite voxel(s) (NaN or inf) of {bad.numel()} replaced by "
                f"{self.value:g} (the HU window's lower bound, i.e. background) before the network."
            )
            cleaned = img.clone() if isinstance(img, torch.Tensor) else img.copy()
            cleaned[bad if isinstance(img, torch.Tensor) else bad.numpy()] = self.value
            d[key] = cleaned
        return d
