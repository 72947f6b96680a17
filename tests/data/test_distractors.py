from __future__ import annotations

import numpy as np
from scipy import ndimage

from t2d_monai.data.distractors import add_distractors


def test_distractors():
    shape, spacing = (64, 64, 24), (0.8, 0.8, 2.5)
    body = np.ones(shape, bool)
    liver = np.zeros(shape, bool)
    liver[:32] = True
    forbidden = np.zeros(shape, bool)
    forbidden[30:34, 30:34, :] = True
    mask, occ, value = add_distractors(shape, spacing, 800, body, liver, forbidden, np.random.default_rng(0))
    assert 800 <= mask.sum() < 1600
    assert not (mask & forbidden).any()
    assert value[mask].min() >= 120 and occ.max() <= 1.0
    comp, n = ndimage.label(mask, np.ones((3, 3, 3)))
    assert n > 3 and max(b[2].stop - b[2].start for b in ndimage.find_objects(comp)) <= 4
