from __future__ import annotations

import math

import pytest

from t2d_monai.benchmarks.machine import cpu_name, cpu_yardstick_s


def test_cpu_name_is_a_non_empty_description():
    name = cpu_name()
    assert isinstance(name, str) and name.strip()
    assert name == name.strip() and "\n" not in name


def test_cpu_yardstick_is_a_positive_time_and_checks_repeats():
    seconds = cpu_yardstick_s(repeats=1)
    assert math.isfinite(seconds) and 0 < seconds < 60
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        cpu_yardstick_s(repeats=0)
