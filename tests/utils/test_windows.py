from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from t2d_monai.utils import window_starts


@pytest.mark.parametrize(
    "length,size,stride,expected",
    [(15, 3, 3, [0, 3, 6, 9, 12]), (14, 3, 3, [0, 3, 6, 9, 11]), (4, 3, 3, [0, 1]), (20, 15, 1, list(range(6))),
     (20, 15, 2, [0, 2, 4, 5]), (15, 15, 1, [0]), (5, 1, 1, [0, 1, 2, 3, 4])],
)
def test_window_starts(length, size, stride, expected):
    assert window_starts(length, size, stride) == expected


@given(st.integers(1, 60), st.integers(1, 20), st.integers(1, 20))
def test_every_item_covered_once_per_stride(length, size, stride):
    if size > length:
        with pytest.raises(ValueError, match="size <= length"):
            window_starts(length, size, stride)
        return
    starts = window_starts(length, size, stride)
    assert starts[0] == 0 and starts[-1] == length - size and starts == sorted(set(starts))
    covered = {i for s in starts for i in range(s, s + size)}
    assert covered == set(range(length)) or stride > size  # a stride above the size skips items by design
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("args", [(5, 0, 1), (5, 2, 0), (3, 4, 1)])
def test_ill_arg(args):
    with pytest.raises(ValueError):
        window_starts(*args)
