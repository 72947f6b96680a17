from __future__ import annotations

import json

import numpy as np
import pytest

from t2d_monai.benchmarks.threshold_baseline import (
    best_global_threshold,
    continuity_filter,
    threshold_baseline,
    threshold_dice_curve,
)


def test_curve_matches_brute_force():
    rng = np.random.default_rng(0)
    image = rng.integers(-200, 400, (12, 10, 6)).astype(np.int16)
    target = rng.uniform(size=image.shape) < 0.2
    curve = threshold_dice_curve(image, target)
    for t in (-1024, -150, 0, 37, 250, 399, 4000):
        pred = image >= t
        expected = 2 * (pred & target).sum() / (pred.sum() + target.sum())
        assert curve[t + 1024] == pytest.approx(expected)


def test_continuity_filter_keeps_columns_drops_dots():
    image = np.zeros((20, 20, 10), np.int16)
    image[5, 5, 1:9] = 200  # a vessel through 8 slices
    image[12:15, 12:15, 4] = 300  # a dot in one slice
    image[2, 15, 3:5] = 250  # two slices
    kept = continuity_filter(image, 150, min_slices=4)
    assert kept[5, 5, 1:9].all() and kept.sum() == 8


def test_report(small_dataset, tmp_path):
    table = threshold_baseline(
        str(small_dataset), out_md=str(tmp_path / "t.md"), out_json=str(tmp_path / "t.json"),
        preview=str(tmp_path / "p.png"), continuity_thresholds=(140, 160, 180),
    )
    result = json.loads((tmp_path / "t.json").read_text())
    assert (tmp_path / "t.md").read_text() == table and "best single global HU threshold" in table
    assert result["num_cases"] == 3 and len(result["threshold"]["per_case_dice"]) == 3
    assert 0.0 < result["threshold"]["mean_dice"] < 0.6  # intensity alone does not segment the vessels
    assert result["continuity"]["hu"] in (140, 160, 180)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ill_arg(tmp_path, small_dataset):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        threshold_baseline(str(tmp_path))
    with pytest.raises(ValueError, match="min_slices"):
        threshold_baseline(str(small_dataset), min_slices=0)
    with pytest.raises(ValueError, match="max_cases"):
        threshold_baseline(str(small_dataset), max_cases=0)


def test_best_global_threshold_matches_the_report(small_dataset, tmp_path):
    cases = json.loads((small_dataset / "dataset.json").read_text())["training"]
    cases = [{k: str(small_dataset / v) for k, v in c.items()} for c in cases]
    best = best_global_threshold(cases)
    threshold_baseline(str(small_dataset), out_json=str(tmp_path / "t.json"))
    report = json.loads((tmp_path / "t.json").read_text())["threshold"]
    assert best["hu"] == report["hu"] and best["mean_dice"] == pytest.approx(report["mean_dice"])
    assert list(best["per_case_dice"]) == [c["image"].rsplit("/", 1)[-1] for c in cases]
    with pytest.raises(ValueError, match="at least one"):
        best_global_threshold([])
