"""Vessel trees grown as centerlines in millimetre space, and their rasterisation.

A tree starts from a root point with a direction and a radius. Each branch walks in steps of
``step_mm`` with a smoothly varying direction (the angular velocity itself is a damped random walk,
so the curvature is smooth), tapers slowly, and ends in a bifurcation whose child radii follow
Murray's law (``r**3 = r1**3 + r2**3``). Branches stop bifurcating near ``min_radius`` (about one
voxel) and stop when they leave the volume. Directions are kept within ``max_tilt_deg`` of the slice
axis, so most vessels run through-plane or obliquely, as the portal and hepatic veins do in axial CT,
and a single axial slice sees them as dots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["Centerlines", "grow_tree", "rasterize_tubes"]


@dataclass
class Centerlines:
    """Densely sampled centerline points of one or more trees.

    Attributes:
        points: ``(N, 3)`` positions in mm (voxel ``i`` has its centre at ``i * spacing``).
        radii: ``(N,)`` tube radius in mm at each point.
        values: ``(N,)`` intensity (HU) of the contrast-filled lumen at each point.
    """

    points: np.ndarray
    radii: np.ndarray
    values: np.ndarray

    @staticmethod
    def concatenate(parts: Sequence[Centerlines]) -> Centerlines:
        if not parts:
            return Centerlines(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
        return Centerlines(
            np.concatenate([p.points for p in parts]),
            np.concatenate([p.radii for p in parts]),
            np.concatenate([p.values for p in parts]),
        )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _clamp_tilt(d: np.ndarray, max_tilt: float) -> np.ndarray:
    """Pull direction ``d`` back to within ``max_tilt`` radians of the z axis (keeping its z sign)."""
    cos_min = np.cos(max_tilt)
    if abs(d[2]) >= cos_min:
        return d
    horizontal = d.copy()
    horizontal[2] = 0.0
    horizontal = _unit(horizontal)
    sign = 1.0 if d[2] >= 0 else -1.0
    return _unit(horizontal * np.sin(max_tilt) + np.array([0.0, 0.0, sign * cos_min]))


def _rotate_away(d: np.ndarray, angle: float, axis: np.ndarray) -> np.ndarray:
    """Rotate unit vector ``d`` by ``angle`` towards unit ``axis`` (``axis`` perpendicular to ``d``)."""
    return _unit(np.cos(angle) * d + np.sin(angle) * axis)


def grow_tree(
    root: Sequence[float],
    direction: Sequence[float],
    radius: float,
    value: float,
    extent_mm: Sequence[float],
    rng: np.random.Generator,
    min_radius: float = 0.8,
    max_tilt_deg: float = 55.0,
    step_mm: float = 1.0,
    sample_mm: float = 0.25,
    curvature: float = 0.06,
    max_branches: int = 400,
) -> Centerlines:
    """Grow one vessel tree and return its densely sampled centerline.

    Args:
        root: start point in mm.
        direction: initial direction (normalised here).
        radius: root radius in mm.
        value: mean lumen intensity (HU) of the tree; each branch varies around it.
        extent_mm: size of the volume in mm; branches stop one ``radius`` beyond it.
        rng: source of randomness.
        min_radius: radius (mm) at which branches stop bifurcating; about one in-plane voxel. Default 0.8.
        max_tilt_deg: largest angle between a branch and the slice (z) axis. Default 55.
        step_mm: growth step. Default 1.0.
        sample_mm: spacing of the returned points (smaller than a voxel). Default 0.25.
        curvature: strength of the direction noise per step, in radians. Default 0.06.
        max_branches: safety cap on the number of branches. Default 400.

    Returns:
        :class:`Centerlines` of the tree.
    """
    max_tilt = np.deg2rad(max_tilt_deg)
    extent = np.asarray(extent_mm, dtype=float)
    pts, rads, vals = [], [], []
    stack = [(np.asarray(root, float), _clamp_tilt(_unit(np.asarray(direction, float)), max_tilt), float(radius), 0)]
    branches = 0
    while stack and branches < max_branches:
        p, d, r, depth = stack.pop()
        branches += 1
        terminal = r < 1.4 * min_radius
        length = (rng.uniform(4.0, 10.0) * r + rng.uniform(3.0, 8.0)) * (2.0 if terminal else 1.0)
        n = max(2, int(np.ceil(length / step_mm)))
        r_end = max(min_radius, r * (rng.uniform(0.55, 0.75) if terminal else rng.uniform(0.85, 0.97)))
        branch_value = value * rng.uniform(0.85, 1.15)
        omega = np.zeros(3)
        path = [p.copy()]
        left = False
        for _ in range(n):
            omega = 0.7 * omega + curvature * rng.standard_normal(3)
            omega -= omega.dot(d) * d  # turn, do not stretch
            d = _clamp_tilt(_unit(d + omega), max_tilt)
            p = p + step_mm * d
            path.append(p.copy())
            if np.any(p < -r) or np.any(p > extent + r):
                left = True
                break
        path = np.asarray(path)
        # resample densely along the polyline
        seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        t = np.arange(0.0, s[-1] + 1e-9, sample_mm)
        dense = np.stack([np.interp(t, s, path[:, k]) for k in range(3)], axis=1)
        frac = t / max(s[-1], 1e-9)
        pts.append(dense)
        rads.append(r + (r_end - r) * frac)
        wobble = 1.0 + 0.08 * np.sin(2 * np.pi * (frac * rng.uniform(0.5, 2.0) + rng.uniform()))
        vals.append(branch_value * wobble)
        if left or terminal:
            continue
        # bifurcation: Murray's law with random asymmetry, children on opposite sides
        alpha = rng.uniform(0.45, 1.0)
        r1 = r_end / (1.0 + alpha**3) ** (1.0 / 3.0)
        r1, r2 = max(r1, min_radius), max(alpha * r1, min_radius)  # leaves stay about a voxel wide
        axis = _unit(np.cross(d, rng.standard_normal(3)))
        a1 = np.deg2rad(rng.uniform(15, 35)) * alpha
        a2 = np.deg2rad(rng.uniform(30, 60))
        stack.append((p.copy(), _clamp_tilt(_rotate_away(d, a1, axis), max_tilt), r1, depth + 1))
        stack.append((p.copy(), _clamp_tilt(_rotate_away(d, a2, -axis), max_tilt), r2, depth + 1))
    return Centerlines(np.concatenate(pts), np.concatenate(rads), np.concatenate(vals))


def rasterize_tubes(
    lines: Centerlines, shape: Sequence[int], spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Voxelise tubes around centerlines.

    Each voxel finds its nearest centerline voxel (one Euclidean distance transform in mm), then the
    centerline point near that voxel (within one voxel along the line) whose tube wall is closest; its
    distance to that point, against that point's radius, decides membership.

    Args:
        lines: centerline points, radii and lumen values.
        shape: voxel grid ``(X, Y, Z)``.
        spacing: voxel size in mm.

    Returns:
        ``(label, occupancy, value, centerline)``: bool mask of voxels within the radius (plus every
        centerline voxel, so thin vessels stay connected); float32 soft occupancy in [0, 1] for
        partial-volume rendering; float32 lumen HU of the owning point; bool mask of centerline voxels.
    """
    shape = tuple(int(s) for s in shape)
    spacing = np.asarray(spacing, dtype=float)
    label = np.zeros(shape, bool)
    occ = np.zeros(shape, np.float32)
    value = np.zeros(shape, np.float32)
    centre = np.zeros(shape, bool)
    if len(lines.points) == 0:
        return label, occ, value, centre
    idx = np.rint(lines.points / spacing).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
    if not inside.any():
        return label, occ, value, centre
    owner = np.full(shape, -1, np.int64)
    pid = np.nonzero(inside)[0]
    # a voxel holding several points is owned by the one nearest its centre (written last)
    off_centre = np.linalg.norm(lines.points[pid] - idx[pid] * spacing, axis=1)
    order = pid[np.argsort(-off_centre, kind="stable")]
    owner[tuple(idx[order].T)] = order
    centre = owner >= 0
    dist, nearest = ndimage.distance_transform_edt(~centre, sampling=spacing, return_indices=True)
    h = float(spacing[:2].min())
    near = dist <= lines.radii.max() + h
    vox = np.nonzero(near)
    p = owner[tuple(n[vox] for n in nearest)]
    xyz = np.stack(vox, axis=1) * spacing
    # refine: the nearest point on the line lies within about a voxel of the owner along the line
    steps = np.linalg.norm(np.diff(lines.points, axis=0), axis=1)
    reach = int(np.ceil(float(spacing.max()) / max(float(np.median(steps)) if steps.size else 1.0, 1e-3)))
    d = np.full(len(p), np.inf)
    best = p.copy()
    for k in range(-reach, reach + 1):
        q = np.clip(p + k, 0, len(lines.points) - 1)
        dq = np.linalg.norm(xyz - lines.points[q], axis=1) - lines.radii[q]  # distance to the tube wall
        better = dq < d
        d[better], best[better] = dq[better], q[better]
    p = best
    r = lines.radii[p]
    d = d + r
    label[vox] = d <= r
    label |= centre
    occ[vox] = np.clip(0.5 + (r - d) / h, 0.0, 1.0)
    occ[centre] = np.maximum(occ[centre], 0.5)
    value[vox] = lines.values[p]
    return label, occ, value, centre
