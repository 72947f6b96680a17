from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from t2d_monai.metrics import HausdorffDistance95, NormalizedSurfaceDice, spacing_of

# anisotropic voxels: 0.5 mm along X, 0.8 along Y, 2 mm along Z (an axis flip must not change the spacing)
AFFINE = torch.tensor(np.diag([-0.5, 0.8, 2.0, 1.0]))


def _meta(x: torch.Tensor) -> MetaTensor:
    return MetaTensor(x, affine=AFFINE)


def _planes(axis: int, label_at: int, pred_at: int, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """One-voxel-thick planes across the whole volume, perpendicular to ``axis``: every boundary voxel of one
    is exactly one voxel (``spacing[axis]`` mm) from the other."""
    label, pred = torch.zeros(1, 1, size, size, size), torch.zeros(1, 1, size, size, size)
    label.select(2 + axis, label_at).fill_(1)
    pred.select(2 + axis, pred_at).fill_(1)
    return pred, label


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_spacing_of_reads_each_items_affine():
    assert spacing_of(_meta(torch.zeros(1, 1, 4, 4, 4))) == [[0.5, 0.8, 2.0]]
    rotated = torch.tensor([[0.0, -3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0, 0, 0, 1.0]])
    assert spacing_of(MetaTensor(torch.zeros(1, 1, 4, 4, 4), affine=rotated)) == [[1.0, 3.0, 1.5]]


@pytest.mark.parametrize("axis,mm", [(0, 0.5), (1, 0.8), (2, 2.0)])
def test_hd95_is_in_millimetres(axis, mm):
    pred, label = _planes(axis, 5, 6)
    assert HausdorffDistance95()(_meta(pred), _meta(label)).item() == pytest.approx(mm)
    # the same call in voxels would say 1 for every axis
    assert HausdorffDistance95()(pred, label, spacing=[1.0, 1.0, 1.0]).item() == pytest.approx(1.0)


def test_hd95_hand_computed_on_a_truncated_line():
    label = torch.zeros(1, 1, 12, 12, 12)
    label[0, 0, 1:11, 5, 5] = 1  # 10 voxels along X (0.5 mm each)
    pred = label.clone()
    pred[0, 0, 6:] = 0  # the last 5 missed: they lie 0.5, 1.0, ..., 2.5 mm from the prediction's end
    # MONAI's symmetric HD95: the larger of the two directed 95th percentiles; prediction -> label: all 0;
    # label -> prediction: 0 (5 times), 0.5, 1.0, 1.5, 2.0, 2.5
    label_to_pred = np.array([0.0] * 5 + [0.5, 1.0, 1.5, 2.0, 2.5])
    got = HausdorffDistance95()(_meta(pred), _meta(label)).item()
    assert got == pytest.approx(np.percentile(label_to_pred, 95))  # 2.275 mm (4.55 voxels of 0.5 mm)


@pytest.mark.parametrize("axis,within_1mm", [(0, True), (1, True), (2, False)])
def test_surface_dice_tolerance_in_millimetres(axis, within_1mm):
    pred, label = _planes(axis, 5, 6)
    assert NormalizedSurfaceDice(1.0)(_meta(pred), _meta(label)).item() == (1.0 if within_1mm else 0.0)
    assert NormalizedSurfaceDice(2.5)(_meta(pred), _meta(label)).item() == 1.0


def test_empty_cases():
    label = torch.zeros(1, 1, 8, 8, 8)
    label[0, 0, 2:5, 2:5, 2:5] = 1
    empty = torch.zeros_like(label)
    assert math.isnan(HausdorffDistance95()(_meta(empty), _meta(label)).item())
    assert NormalizedSurfaceDice()(_meta(empty), _meta(label)).item() == 0.0
    assert NormalizedSurfaceDice()(_meta(label), _meta(empty)).item() == 0.0
    assert math.isnan(NormalizedSurfaceDice()(_meta(empty), _meta(empty)).item())


def test_plain_tensors_are_refused_with_the_fix():
    pred, label = _planes(2, 5, 6)
    with pytest.raises(ValueError, match="spacing=.*MetaTensors|MetaTensors.*spacing="):
        HausdorffDistance95()(pred, label)
    with pytest.raises(ValueError, match="tolerance_mm"):
        NormalizedSurfaceDice(0)


def test_decollated_items_as_evaluate_json_gives_them():
    """MONAI's IgniteMetricHandler calls the metric with lists of (C, X, Y, Z) MetaTensors, one per case."""
    near, label = _planes(0, 5, 6)  # 0.5 mm apart
    far, label_z = _planes(2, 6, 5)  # 2 mm apart
    metric = HausdorffDistance95()
    metric([_meta(near[0]), _meta(far[0])], [_meta(label[0]), _meta(label_z[0])])
    torch.testing.assert_close(metric.get_buffer(), torch.tensor([[0.5], [2.0]]))
    assert metric.aggregate().item() == pytest.approx(1.25)
