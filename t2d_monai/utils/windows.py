"""Start positions of fixed-size windows along one axis: the slab windows of the thick-slice inferer and
the mini-groups of a T2DNet window are the same algorithm."""

from __future__ import annotations

__all__ = ["window_starts"]


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """First index of every window of ``size`` items over ``length`` items.

    Windows start at ``0, stride, 2 * stride, ...`` while they fit; when the last one does not end on the
    last item, one more window ending there (start ``length - size``) is added, overlapping the one
    before, so every item is covered at least once.

    Args:
        length: items along the axis (slices of a volume, slices of a window), ``>= size``.
        size: items per window, ``>= 1``.
        stride: items between consecutive window starts, ``>= 1``.

    Raises:
        ValueError: when ``size`` or ``stride`` is below 1 or ``size > length``.

    Example::

        >>> window_starts(15, 3, 3), window_starts(14, 3, 3), window_starts(20, 15, 2)
        ([0, 3, 6, 9, 12], [0, 3, 6, 9, 11], [0, 2, 4, 5])
    """
    if size < 1 or stride < 1 or size > length:
        raise ValueError(f"need 1 <= size <= length and stride >= 1, got length={length}, size={size}, stride={stride}.")
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts
