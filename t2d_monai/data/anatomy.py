"""Abdomen-like background of a synthetic CT case: body, fat, soft tissue, liver and tumours (HU).

Shapes are set relative to the field of view (so any grid gives a full body cross-section), while
textures and tumour sizes are set in millimetres. Intensities are those of a portal-venous phase
abdominal CT: air -1000, fat about -100, soft tissue 20-50, enhanced liver 95-125, hypodense
tumours 25-70.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from t2d_monai.data.texture import smooth_field

__all__ = ["Anatomy", "make_anatomy"]


@dataclass
class Anatomy:
    """Background of one case.

    Attributes:
        image: float32 HU, ``(X, Y, Z)``.
        body: bool, inside the skin.
        inner: bool, inside the abdominal wall (where organs and vessels lie).
        liver: bool, the liver-like organ.
        tumour: bool, tumours (label 2).
        liver_hu: mean liver intensity of this case.
    """

    image: np.ndarray
    body: np.ndarray
    inner: np.ndarray
    liver: np.ndarray
    tumour: np.ndarray
    liver_hu: float


def _normalised_grid(shape: Sequence[int]) -> list[np.ndarray]:
    """Open grids in [-1, 1] across the field of view, one per axis."""
    axes = [np.linspace(-1.0, 1.0, int(n), dtype=np.float32) for n in shape]
    return np.meshgrid(*axes, indexing="ij", sparse=True)


def make_anatomy(
    shape: Sequence[int], spacing: Sequence[float], rng: np.random.Generator, max_tumours: int = 3
) -> Anatomy:
    """Draw the background of one case.

    Args:
        shape: voxel grid ``(X, Y, Z)``.
        spacing: voxel size in mm.
        rng: source of randomness.
        max_tumours: tumours per case are drawn from ``0..max_tumours``. Default 3.

    Returns:
        :class:`Anatomy`.
    """
    shape = tuple(int(s) for s in shape)
    spacing = np.asarray(spacing, float)
    u, v, w = _normalised_grid(shape)
    coarse = smooth_field(shape, spacing, 25.0, rng)
    # body: an elliptic cylinder with a wobbly outline; the abdominal wall is a thinner ellipse inside
    ax, ay = rng.uniform(0.86, 0.96), rng.uniform(0.74, 0.9)
    ellipse = (u / ax) ** 2 + (v / ay) ** 2 + 0.04 * coarse
    body = ellipse < 1.0
    wall = rng.uniform(0.12, 0.2)
    inner = ellipse < (1.0 - wall) ** 2
    image = np.full(shape, -1000.0, np.float32)
    fat_hu = rng.uniform(-115, -85)
    image[body] = fat_hu
    muscle = body & ~inner & (ellipse > (1.0 - 0.45 * wall) ** 2)
    image[muscle] = (rng.uniform(35, 55) + 8.0 * coarse)[muscle]
    # abdominal soft tissue: a mixture of fat and soft tissue with mm-scale texture
    soft = rng.uniform(25, 45) + 12.0 * smooth_field(shape, spacing, 6.0, rng)
    fatty = smooth_field(shape, spacing, 12.0, rng) > rng.uniform(0.6, 1.0)
    soft = np.where(fatty, fat_hu + 10.0, soft)
    image = np.where(inner, soft, image)
    # liver: a deformed ellipsoid on the patient's right (+x), through most of the slices
    cx, cy, cz = rng.uniform(0.1, 0.3), rng.uniform(-0.15, 0.1), rng.uniform(-0.2, 0.2)
    sx, sy, sz = rng.uniform(0.45, 0.6), rng.uniform(0.45, 0.6), rng.uniform(0.9, 1.3)
    q = ((u - cx) / sx) ** 2 + ((v - cy) / sy) ** 2 + ((w - cz) / sz) ** 2
    liver = inner & (q + 0.25 * smooth_field(shape, spacing, 20.0, rng) < 1.0)
    liver_hu = float(rng.uniform(95, 125))
    image = np.where(liver, liver_hu + 6.0 * smooth_field(shape, spacing, 4.0, rng), image)
    # tumours: irregular hypodense blobs inside the liver
    tumour = np.zeros(shape, bool)
    candidates = np.flatnonzero(liver)
    fov = float(np.min(np.asarray(shape) * spacing))
    for _ in range(int(rng.integers(0, max_tumours + 1)) if candidates.size else 0):
        c = np.array(np.unravel_index(candidates[rng.integers(candidates.size)], shape)) * spacing
        radius = min(rng.uniform(4.0, 14.0), 0.12 * fov)
        half = radius * 1.4
        lo = np.maximum(np.floor((c - half) / spacing).astype(int), 0)
        hi = np.minimum(np.ceil((c + half) / spacing).astype(int) + 1, np.asarray(shape))
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        g = np.meshgrid(*[np.arange(a, b) * s - cc for a, b, s, cc in zip(lo, hi, spacing, c)], indexing="ij")
        r = np.sqrt(sum(x**2 for x in g)) / radius
        bump = smooth_field(r.shape, spacing, max(radius / 2, 2.0), rng)
        blob = (r + 0.15 * bump < 1.0) & liver[sl]
        tumour[sl] |= blob
        t_hu = rng.uniform(25, 70)
        image[sl] = np.where(blob, t_hu + 8.0 * bump, image[sl])
    return Anatomy(image.astype(np.float32), body, inner, liver, tumour, liver_hu)
