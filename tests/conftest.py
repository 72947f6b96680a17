from __future__ import annotations

import pytest

from t2d_monai.data.synthetic import write_dataset

SMALL = dict(num_cases=3, num_test=1, seed=0, shape=(64, 64, 32), spacing=(0.8, 0.8, 2.5))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A tiny synthetic data set shared by the data and benchmark tests (read only)."""
    out = tmp_path_factory.mktemp("synth") / "ds"
    write_dataset(str(out), **SMALL)
    return out
