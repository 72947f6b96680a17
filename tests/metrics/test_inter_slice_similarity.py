from __future__ import annotations

import math

import pytest
import torch

from t2d_monai.metrics import InterSliceSimilarity, compute_inter_slice_similarity, neighbour_slice_dice


def _case():
    # 2x2 slices along Z; ground truth: {a}, {a, d}, {a}, {}; prediction: {}, {a}, {a}, {a}
    y = torch.zeros(1, 1, 2, 2, 4)
    y[0, 0, 0, 0, :3] = 1
    y[0, 0, 1, 1, 1] = 1
    p = torch.zeros(1, 1, 2, 2, 4)
    p[0, 0, 0, 0, 1:] = 1
    return p, y


def test_hand_computed():
    p, y = _case()
    torch.testing.assert_close(neighbour_slice_dice(y)[0, 0], torch.tensor([2 / 3, 2 / 3, 0.0]))
    torch.testing.assert_close(neighbour_slice_dice(p)[0, 0], torch.tensor([0.0, 1.0, 1.0]))
    expected = math.sqrt((2 / 3) ** 2 + (1 / 3) ** 2 + 1.0)
    assert compute_inter_slice_similarity(p, y).item() == pytest.approx(expected, rel=1e-6)


def test_empty_slices_pairs_count_as_dice_one():
    empty = torch.zeros(1, 1, 3, 3, 5)
    torch.testing.assert_close(neighbour_slice_dice(empty), torch.ones(1, 1, 4))
    assert compute_inter_slice_similarity(empty, empty).item() == 0.0
    one = empty.clone()
    one[0, 0, 1, 1, 2] = 1  # pairs (1,2), (2,3) drop from 1 to 0
    assert compute_inter_slice_similarity(one, empty).item() == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize("axis,dim", [("sagittal", 2), ("coronal", 3), (0, 2), (1, 3)])
def test_axis(axis, dim):
    p, y = _case()
    p, y = p.transpose(dim, 4), y.transpose(dim, 4)  # move the Z slices to another axis
    expected = compute_inter_slice_similarity(*_case()).item()
    assert compute_inter_slice_similarity(p, y, axis=axis).item() == pytest.approx(expected)


def test_background_channel():
    p, y = _case()
    p2, y2 = torch.cat([1 - p, p], 1), torch.cat([1 - y, y], 1)
    with_bg = compute_inter_slice_similarity(p2, y2)
    without_bg = compute_inter_slice_similarity(p2, y2, include_background=False)
    assert with_bg.shape == (1, 2) and without_bg.shape == (1, 1)
    torch.testing.assert_close(without_bg, compute_inter_slice_similarity(p, y))


def test_cumulative_metric():
    p, y = _case()
    metric = InterSliceSimilarity()
    metric(y_pred=p, y=y)
    metric(y_pred=y, y=y)
    assert metric.aggregate().item() == pytest.approx(math.sqrt((2 / 3) ** 2 + (1 / 3) ** 2 + 1.0) / 2, rel=1e-6)
    per_case = InterSliceSimilarity(reduction="none")
    per_case(y_pred=torch.cat([p, y]), y=torch.cat([y, y]))
    assert per_case.aggregate().shape == (2, 1)
    metric.reset()
    metric(y_pred=y, y=y)
    assert metric.aggregate().item() == 0.0
    with_count = InterSliceSimilarity(get_not_nans=True)
    with_count(y_pred=torch.cat([p, y]), y=torch.cat([y, y]))
    value, not_nans = with_count.aggregate()
    assert value.item() == pytest.approx(math.sqrt((2 / 3) ** 2 + (1 / 3) ** 2 + 1.0) / 2, rel=1e-6)
    assert not_nans.item() == 2


def test_ill_arg():
    p, y = _case()
    with pytest.raises(ValueError, match="same shape"):
        compute_inter_slice_similarity(p, y[..., :3])
    with pytest.raises(ValueError, match="B, C, X, Y, Z"):
        neighbour_slice_dice(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError):
        InterSliceSimilarity(axis=3)
    with pytest.raises(ValueError):
        InterSliceSimilarity(axis="axail")


def test_monai_handler_and_bundle_config():
    from ignite.engine import Engine
    from monai.bundle import ConfigParser
    from monai.handlers import IgniteMetricHandler, from_engine

    p, y = _case()
    config = {"m": {"_target_": "t2d_monai.metrics.InterSliceSimilarity", "axis": "axial"}}
    metric = ConfigParser(config).get_parsed_content("m")
    engine = Engine(lambda engine, batch: {"pred": [p[0], y[0]], "label": [y[0], y[0]]})
    IgniteMetricHandler(metric_fn=metric, output_transform=from_engine(["pred", "label"])).attach(engine, "iss")
    engine.run([0], max_epochs=1)
    assert engine.state.metrics["iss"] == pytest.approx(math.sqrt((2 / 3) ** 2 + (1 / 3) ** 2 + 1.0) / 2, rel=1e-6)
