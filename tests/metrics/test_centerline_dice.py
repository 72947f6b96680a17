from __future__ import annotations

import math

import pytest
import torch
from monai.metrics import DiceMetric

from t2d_monai.metrics import CenterlineDice, compute_centerline_dice


def _line(length: int = 10) -> torch.Tensor:
    label = torch.zeros(1, 1, 12, 12, 12)
    label[0, 0, 1 : 1 + length, 5, 5] = 1
    return label


def test_hand_computed_half_a_line():
    label = _line(10)
    pred = label.clone()
    pred[0, 0, 6:] = 0  # 5 of 10 centreline voxels: Tprec 1, Tsens 0.5
    assert compute_centerline_dice(pred, label).item() == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_identical_empty_and_missing():
    label = _line()
    assert compute_centerline_dice(label, label).item() == 1.0
    assert compute_centerline_dice(torch.zeros_like(label), label).item() == 0.0
    assert math.isnan(compute_centerline_dice(label, torch.zeros_like(label)).item())


def test_thin_branch_weighs_by_length_not_volume():
    """A thick trunk found and a long thin branch missed: Dice stays high, clDice drops."""
    label = torch.zeros(1, 1, 24, 24, 24)
    label[0, 0, 2:22, 8:15, 8:15] = 1  # trunk 7x7 across, 20 long
    label[0, 0, 11, 15:23, 11] = 1  # branch one voxel thick
    label[0, 0, 2:22, 2, 2] = 1  # a second thin vessel, 20 long
    pred = label.clone()
    pred[0, 0, 11, 15:23, 11] = 0
    pred[0, 0, 2:22, 2, 2] = 0
    dice = DiceMetric()(pred, label).item()
    cl = compute_centerline_dice(pred, label).item()
    assert dice > 0.97
    assert cl < dice - 0.1


def test_metric_aggregates_without_nan_and_checks_shapes():
    metric = CenterlineDice()
    label = _line()
    metric(y_pred=[label[0], label[0]], y=[label[0], torch.zeros_like(label[0])])
    assert metric.aggregate().item() == 1.0  # the empty label's nan is left out of the mean
    with pytest.raises(ValueError, match="same shape"):
        compute_centerline_dice(label, label[..., :5])
    with pytest.raises(ValueError, match="expected"):
        compute_centerline_dice(label[0, 0], label[0, 0])
