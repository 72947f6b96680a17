"""How the bundles write predictions: NIfTI of exactly the input's shape, written atomically."""

from __future__ import annotations

import os

from monai.config import NdarrayOrTensor, PathLike
from monai.data import NibabelWriter

from t2d_monai.utils.files import atomic_path, remove_partial_writes

__all__ = ["AtomicNibabelWriter"]


class AtomicNibabelWriter(NibabelWriter):
    """
    :class:`monai.data.NibabelWriter` that keeps singleton spatial axes and never leaves a partial file.

    - Shape: MONAI's writers drop *every* trailing singleton axis after moving the channel last
      (``squeeze_end_dims``), so a one-slice prediction ``(1, X, Y, 1)`` would be written as a 2D image ``(X, Y)``
      that no longer matches its ``(X, Y, 1)`` input. Here only a single channel is removed:
      ``(1, X, Y, 1) -> (X, Y, 1)``, ``(1, X, Y, Z) -> (X, Y, Z)``; a multi-channel ``(C, X, Y, Z)`` is written as
      ``(X, Y, Z, C)`` as before.
    - Atomic: the file is written under a hidden temporary name in the output folder
      (``.<name>.<random>.partial.nii.gz``, :func:`~t2d_monai.utils.atomic_path`) and renamed onto ``filename`` when complete, so a run killed while
      writing leaves the previous file (or none) under the final name, never half of one; the partial file such a
      run leaves is removed by the next write of the same name.

    Use it as ``SaveImaged(..., writer=t2d_monai.data.AtomicNibabelWriter)`` (bundle configs:
    ``"writer": "$t2d_monai.data.AtomicNibabelWriter"``).
    """

    def set_data_array(
        self, data_array: NdarrayOrTensor, channel_dim: int | None = 0, squeeze_end_dims: bool = True, **kwargs
    ) -> None:
        """``data_array`` with its channel at ``channel_dim`` (None: no channel) -> channel-last array; with
        ``squeeze_end_dims`` only a single channel is removed, spatial singleton axes stay."""
        super().set_data_array(data_array, channel_dim=channel_dim, squeeze_end_dims=False, **kwargs)
        if squeeze_end_dims and self.data_obj.shape[-1] == 1:
            self.data_obj = self.data_obj[..., 0]

    def write(self, filename: PathLike, verbose: bool = False, **obj_kwargs) -> None:
        """Write through a temporary file next to ``filename`` (same extension, so the same format), renamed onto
        it when complete (:func:`~t2d_monai.utils.atomic_path`), after removing what an earlier, killed write of
        the same file left behind."""
        name = os.path.basename(os.fspath(filename))
        ext = ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]
        remove_partial_writes(filename)
        with atomic_path(filename, suffix=ext) as tmp:
            super().write(tmp, verbose=verbose, **obj_kwargs)
