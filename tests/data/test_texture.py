from __future__ import annotations

import numpy as np
import pytest

from t2d_monai.data.texture import smooth_field


@pytest.mark.parametrize("shape, spacing, corr", [((32, 32, 8), (0.8, 0.8, 2.5), 10.0), ((9, 17, 5), (1, 1, 1), 3.0)])
def test_smooth_field(shape, spacing, corr):
    f = smooth_field(shape, spacing, corr, np.random.default_rng(0))
    assert f.shape == shape and f.dtype == np.float32
    assert abs(f.mean()) < 1e-4 and f.std() == pytest.approx(1.0, rel=1e-4)
    assert np.array_equal(f, smooth_field(shape, spacing, corr, np.random.default_rng(0)))


def test_smoothness_follows_correlation():
    rng = np.random.default_rng(1)
    rough = smooth_field((64, 64, 4), (1, 1, 1), 2.0, rng)
    smooth = smooth_field((64, 64, 4), (1, 1, 1), 16.0, rng)
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.5 * np.abs(np.diff(rough, axis=0)).mean()


def test_ill_arg():
    with pytest.raises(ValueError, match="correlation_mm"):
        smooth_field((8, 8, 8), (1, 1, 1), 0.0, np.random.default_rng(0))
