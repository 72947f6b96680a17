"""The comparison page's computed calls: learning curves still rising, and the target check."""

from __future__ import annotations

import pytest

from t2d_monai.benchmarks.report import RISING_MARGIN, _target_check, rising_window, still_rising


@pytest.mark.parametrize(
    "values, rising",
    [
        ([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], True),  # best at the end, far above the start
        ([0.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6], False),  # flat since the middle
        ([0.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6 + RISING_MARGIN / 2], False),  # within the margin
        ([0.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0], False),  # falling
        ([0.0, 0.1, 0.2], False),  # too short to tell
    ],
)
def test_still_rising(values, rising):
    assert still_rising([[100 * (i + 1), v] for i, v in enumerate(values)]) is rising


def test_rising_window_is_the_best_before_and_in_the_last_30_percent():
    """10 validations: the first 7 before the window, the last 3 in it; each side's best point, the first of equals."""
    curve = [[100 * (i + 1), v] for i, v in enumerate([0.1, 0.6, 0.5, 0.6, 0.2, 0.3, 0.4, 0.5, 0.7, 0.7])]
    assert rising_window(curve) == ([200, 0.6], [900, 0.7])
    assert rising_window(curve[:3]) is None


def _row(method, dice, spread=0.01, seeds=3, rising=0, latency=1.0):
    return {"method": method, "dice_mean": dice, "dice_seed_range": spread, "seeds": seeds, "still_rising": rising,
            "latency_s": latency}


def test_target_check_names_every_target_with_its_distance():
    rows = [_row("deeplab_k1", 0.40, rising=2), _row("early_k6", 0.30), _row("t2d_k6", 0.45),
            _row("unet3d", 0.50, latency=4.0)]
    text = "\n".join(_target_check(rows, threshold_dice=0.42))
    assert "best global HU threshold (0.4200): met (distance +0.0300)" in text
    assert "above single slice (`deeplab_k1`, 0.4000) by more than the seed spread: met (margin beyond the spread +0.0400)" in text
    assert "above best early fusion (`early_k6`, 0.3000)" in text and ": met" in text
    assert "stopped rising: missed (2 of 3 seed(s) still rising at the end)" in text
    assert "at least the 3D U-Net's Dice (0.5000): missed (distance -0.0500)" in text
    assert "a third of the 3D U-Net's latency here: met (x0.25" in text


def test_target_check_with_one_seed_calls_nothing():
    rows = [_row("deeplab_k1", 0.40, spread=0.0, seeds=1, rising=0), _row("t2d_k6", 0.45, spread=0.0, seeds=1)]
    text = "\n".join(_target_check(rows, threshold_dice=0.5))
    assert "not checkable with one seed" in text and "HU threshold (0.5000): missed (distance -0.0500)" in text
    assert "stopped rising: met (0 of 1 seed(s)" in text
