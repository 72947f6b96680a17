from __future__ import annotations

from t2d_monai.benchmarks.machine import cpu_name


def test_cpu_name_is_a_non_empty_description():
    name = cpu_name()
    assert isinstance(name, str) and name.strip()
    assert name == name.strip() and "\n" not in name
