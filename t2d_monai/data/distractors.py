"""Unlabelled bright structures that look like vessel cross-sections in one slice.

Calcifications, small enhancing nodules and short contrast-filled bowel loops: each is as bright as
an enhanced vessel (or brighter) and about as wide in-plane, but spans only one to three slices,
whereas a vessel continues from slice to slice. A single-slice intensity rule cannot tell them apart;
the neighbouring slices can.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["DISTRACTOR_KINDS", "add_distractors"]

#: kind -> relative frequency
DISTRACTOR_KINDS: dict[str, float] = {"calcification": 0.3, "nodule": 0.4, "bowel": 0.3}


def _box(center_mm: np.ndarray, half_mm: np.ndarray, spacing: np.ndarray, shape: Sequence[int]):
    lo = np.maximum(np.floor((center_mm - half_mm) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((center_mm + half_mm) / spacing).astype(int) + 1, np.asarray(shape))
    if np.any(hi <= lo):
        return None, None
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    grids = np.meshgrid(*[(np.arange(a, b) * s) for a, b, s in zip(lo, hi, spacing)], indexing="ij")
    return sl, np.stack(grids, axis=-1) - center_mm  # (..., 3) offsets in mm


def _ellipsoid(center, semi, angle, spacing, shape, h):
    sl, off = _box(center, np.full(3, semi.max() + h), spacing, shape)
    if sl is None:
        return None, None
    c, s = np.cos(angle), np.sin(angle)
    u = off[..., 0] * c + off[..., 1] * s
    v = -off[..., 0] * s + off[..., 1] * c
    q = np.sqrt((u / semi[0]) ** 2 + (v / semi[1]) ** 2 + (off[..., 2] / semi[2]) ** 2)
    return sl, np.clip(0.5 + (1.0 - q) * semi.min() / h, 0.0, 1.0)


def _bowel(center, radius, length, spacing, shape, h, rng):
    n = max(4, int(length / 0.5))
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, n))
    xy = np.cumsum(0.5 * np.stack([np.cos(heading), np.sin(heading)], 1), axis=0)
    pts = np.concatenate([xy - xy.mean(0), rng.normal(0, 0.1, (n, 1))], axis=1)  # in-plane loop
    sl, off = _box(center, np.abs(pts).max(0) + radius + h, spacing, shape)
    if sl is None:
        return None, None
    d = np.sqrt(((off[..., None, :] - pts) ** 2).sum(-1)).min(-1)
    return sl, np.clip(0.5 + (radius - d) / h, 0.0, 1.0)


def add_distractors(
    shape: Sequence[int],
    spacing: Sequence[float],
    target_voxels: int,
    body: np.ndarray,
    liver: np.ndarray,
    forbidden: np.ndarray,
    rng: np.random.Generator,
    max_tries: int = 2000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place distractors until they cover about ``target_voxels`` voxels.

    Args:
        shape: voxel grid ``(X, Y, Z)``.
        spacing: voxel size in mm.
        target_voxels: voxel count to reach (e.g. the vessel label's size, so both are comparable).
        body: bool mask where distractors may lie.
        liver: bool mask; nodules and calcifications prefer it, bowel avoids it.
        forbidden: bool mask they must not touch (the vessels, dilated by the caller if wanted);
            they do not touch each other either.
        rng: source of randomness.
        max_tries: cap on placement attempts.

    Returns:
        ``(mask, occupancy, value)``: bool voxels with occupancy >= 0.5, float32 soft occupancy and
        float32 HU of the distractor at each voxel.
    """
    spacing = np.asarray(spacing, float)
    h = float(spacing[:2].min())
    occ = np.zeros(shape, np.float32)
    value = np.zeros(shape, np.float32)
    inside_liver, outside_liver = np.flatnonzero(liver & body), np.flatnonzero(body & ~liver)
    kinds, probs = list(DISTRACTOR_KINDS), np.array(list(DISTRACTOR_KINDS.values()))
    covered = 0
    for _ in range(max_tries):
        if covered >= target_voxels:
            break
        kind = kinds[rng.choice(len(kinds), p=probs / probs.sum())]
        in_liver = kind != "bowel" and rng.uniform() < 0.7
        pool = inside_liver if in_liver and inside_liver.size else outside_liver
        if pool.size == 0:
            break
        center = np.array(np.unravel_index(pool[rng.integers(pool.size)], shape), float) * spacing
        center += rng.uniform(-0.5, 0.5, 3) * spacing
        if kind == "calcification":
            semi = np.full(3, rng.uniform(0.8, 2.0))
            hu = rng.uniform(250, 700)
            sl, f = _ellipsoid(center, semi, 0.0, spacing, shape, h)
        elif kind == "nodule":
            semi = np.array([rng.uniform(1.2, 3.5), rng.uniform(1.2, 3.5), rng.uniform(0.8, 2.5)])
            hu = rng.uniform(120, 240)
            sl, f = _ellipsoid(center, semi, rng.uniform(0, np.pi), spacing, shape, h)
        else:
            hu = rng.uniform(150, 350)
            sl, f = _bowel(center, rng.uniform(1.5, 3.0), rng.uniform(6, 16), spacing, shape, h, rng)
        if sl is None:
            continue
        new = f >= 0.5
        touched = f > 0
        if not new.any() or (forbidden[sl] & touched).any() or (occ[sl] > 0).any():
            continue  # apart from vessels and from each other, so each stays short in z
        occ[sl] = np.where(touched, f, occ[sl])
        value[sl] = np.where(touched, hu, value[sl])
        covered += int(new.sum())
    return occ >= 0.5, occ, value
