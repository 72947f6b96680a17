from __future__ import annotations

import numpy as np
import pytest

from t2d_monai.data.vessel_tree import Centerlines, grow_tree, rasterize_tubes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grow_tree(seed):
    extent = (60.0, 60.0, 80.0)
    lines = grow_tree((30, 30, 0), (0, 0, 1), 3.0, 200.0, extent, np.random.default_rng(seed), min_radius=0.8)
    assert lines.points.shape[1] == 3 and len(lines.points) == len(lines.radii) == len(lines.values)
    assert lines.radii.max() <= 3.0 + 1e-9 and lines.radii.min() >= 0.8 - 1e-9
    step = np.linalg.norm(np.diff(lines.points, axis=0), axis=1)
    assert np.median(step) <= 0.26  # densely sampled (sub-voxel)
    # directions within the tilt limit of the slice axis
    d = np.diff(lines.points, axis=0)
    d = d[(step > 0.2) & (step < 0.3)] / step[(step > 0.2) & (step < 0.3), None]
    assert (np.abs(d[:, 2]) >= np.cos(np.deg2rad(55.0)) - 1e-3).all()
    # it bifurcates: the radius drops below the root's at some points
    assert (lines.radii < 2.0).any()


def test_rasterize_straight_tube():
    spacing = np.array([0.5, 0.5, 2.0])
    z = np.arange(0.0, 40.0, 0.25)
    pts = np.stack([np.full_like(z, 10.0), np.full_like(z, 10.0), z], 1)
    lines = Centerlines(pts, np.full(len(z), 2.0), np.full(len(z), 180.0))
    label, occ, value, centre = rasterize_tubes(lines, (40, 40, 20), spacing)
    area = label[:, :, 10].sum() * 0.25
    assert area == pytest.approx(np.pi * 4.0, rel=0.15)
    assert centre[20, 20, :].all() and centre.sum() == 20
    assert occ.max() == 1.0 and occ.min() == 0.0 and np.all(value[label] == 180.0)


def test_rasterize_empty():
    label, occ, value, centre = rasterize_tubes(Centerlines.concatenate([]), (8, 8, 8), (1, 1, 1))
    assert not label.any() and not centre.any()
