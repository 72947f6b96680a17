"""A synthetic soft-tissue organ (the stand-in for pancreas and duodenum): a smoothly deformed, elongated
ellipsoid of enhancing tissue placed into a synthetic CT case.

It is enough to train and test the organ bundles end to end on CPU (issue 13): the organ has its own
intensity and a shape that a slab of slices sees growing and shrinking. It is not an anatomical model: real
portal-venous pancreas enhances to about 100-130 HU, like the synthetic liver (95-125 HU,
:mod:`t2d_monai.data.anatomy`); the stand-in is brighter (150-190 HU) so that it stands out from the liver it
may overlap and a short CPU training finds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from t2d_monai.data.texture import smooth_field

__all__ = ["add_organ"]


def add_organ(
    image: np.ndarray,
    spacing: Sequence[float],
    rng: np.random.Generator,
    length_mm: tuple[float, float] = (50.0, 80.0),
    width_mm: tuple[float, float] = (14.0, 24.0),
    hu: tuple[float, float] = (150.0, 190.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Put one organ into ``image`` (``(X, Y, Z)`` HU, int16 or float); returns ``(new image, organ mask)``.

    The organ is an ellipsoid ``length x width x width`` mm (long axis in the axial plane at a random angle; at
    most half, resp. a quarter, of the in-plane field of view; at least two slices through-plane), centred in the middle third of the field of view,
    its surface moved by a smooth random field (correlation 15 mm, up to a third of the width), kept inside the
    body (voxels above -300 HU), filled with ``hu`` plus a fine texture; the input is not modified.

    Raises:
        ValueError: ``image`` not 3D, or the field of view too small to hold a voxel of organ.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an (X, Y, Z) image, got shape {image.shape}.")
    spacing = np.asarray(spacing, float)
    shape = np.asarray(image.shape)
    centre = (shape * rng.uniform(0.4, 0.6, 3)) * spacing
    fov = float(min(shape[:2] * spacing[:2]))
    length, width = min(rng.uniform(*length_mm), fov / 2), min(rng.uniform(*width_mm), fov / 4)
    angle = rng.uniform(0, np.pi)
    grid = np.meshgrid(*[np.arange(n) * s - c for n, s, c in zip(shape, spacing, centre)], indexing="ij",
                       sparse=True)
    along = grid[0] * np.cos(angle) + grid[1] * np.sin(angle)
    across = -grid[0] * np.sin(angle) + grid[1] * np.cos(angle)
    radius = np.sqrt((along / (length / 2)) ** 2 + (across / (width / 2)) ** 2 + (grid[2] / max(width / 2, 2 * spacing[2])) ** 2)
    wobble = smooth_field(tuple(shape), tuple(spacing), 15.0, rng) * (1.0 / 3.0)
    body = ndimage.binary_erosion(ndimage.binary_fill_holes(image > -300), iterations=2)
    mask = ndimage.binary_opening((radius + wobble < 1.0) & body)
    if not mask.any():
        raise ValueError(f"the field of view {tuple(shape * spacing)} mm is too small for an organ of "
                         f"{length:.0f} x {width:.0f} mm; use a larger shape or spacing.")
    organ_hu = rng.uniform(*hu)
    texture = ndimage.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), sigma=1.0) * 8.0
    # soft edge: a one-voxel blend, like the partial volume of the rest of the case
    weight = ndimage.gaussian_filter(mask.astype(np.float32), sigma=0.7)
    out = image.astype(np.float32) * (1 - weight) + (organ_hu + texture) * weight
    return np.clip(np.rint(out), -1024, 3071).astype(image.dtype), mask
