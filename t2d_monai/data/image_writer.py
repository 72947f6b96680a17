"""A NIfTI writer that gives back exactly the input's shape, singleton axes included."""

from __future__ import annotations

from monai.config import NdarrayOrTensor
from monai.data import NibabelWriter

__all__ = ["ShapeKeepingNibabelWriter"]


class ShapeKeepingNibabelWriter(NibabelWriter):
    """
    :class:`monai.data.NibabelWriter` that removes only the channel axis, never a spatial one.

    MONAI's writers drop *every* trailing singleton axis after moving the channel last
    (``squeeze_end_dims``), so a one-slice prediction ``(1, X, Y, 1)`` is written as a 2D image ``(X, Y)`` and
    no longer matches its ``(X, Y, 1)`` input. This writer keeps the spatial axes: ``(1, X, Y, 1) -> (X, Y, 1)``,
    ``(1, X, Y, Z) -> (X, Y, Z)``; a multi-channel ``(C, X, Y, Z)`` is written as ``(X, Y, Z, C)`` as before.

    Use it as ``SaveImaged(..., writer=t2d_monai.data.ShapeKeepingNibabelWriter)`` (bundle configs:
    ``"writer": "$t2d_monai.data.ShapeKeepingNibabelWriter"``).
    """

    def set_data_array(
        self, data_array: NdarrayOrTensor, channel_dim: int | None = 0, squeeze_end_dims: bool = True, **kwargs
    ) -> None:
        """``data_array`` with its channel at ``channel_dim`` (None: no channel) -> channel-last array; with
        ``squeeze_end_dims`` only a single channel is removed, spatial singleton axes stay."""
        super().set_data_array(data_array, channel_dim=channel_dim, squeeze_end_dims=False, **kwargs)
        if squeeze_end_dims and self.data_obj.shape[-1] == 1:
            self.data_obj = self.data_obj[..., 0]
