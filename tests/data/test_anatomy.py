from __future__ import annotations

import numpy as np
import pytest

from t2d_monai.data.anatomy import make_anatomy


@pytest.mark.parametrize("seed", [0, 1])
def test_anatomy(seed):
    a = make_anatomy((48, 48, 16), (0.8, 0.8, 2.5), np.random.default_rng(seed))
    assert a.image.shape == (48, 48, 16) and a.image.dtype == np.float32
    assert not (a.inner & ~a.body).any() and not (a.liver & ~a.inner).any() and not (a.tumour & ~a.liver).any()
    assert a.liver.sum() > 0.05 * a.image.size
    assert (a.image[~a.body] == -1000).all()
    assert abs(np.median(a.image[a.liver & ~a.tumour]) - a.liver_hu) < 15
