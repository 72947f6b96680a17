"""One validation case in TensorBoard: image, label and prediction of the same slice, in the same space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.handlers import TensorBoardImageHandler
from monai.transforms.utils import rescale_array

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["TensorBoardCaseHandler", "most_labelled_slice"]


def most_labelled_slice(label: np.ndarray, axis: int) -> int:
    """Index along ``axis`` of the slice with the most non-zero voxels of ``label``; the middle slice when the label
    is empty (ties: the first)."""
    others = tuple(a for a in range(label.ndim) if a != axis % label.ndim)
    counts = np.count_nonzero(label, axis=others)
    return int(np.argmax(counts)) if counts.any() else label.shape[axis] // 2


class TensorBoardCaseHandler(TensorBoardImageHandler):
    """MONAI's :class:`~monai.handlers.TensorBoardImageHandler` for one post-processed case of a validation run.

    MONAI's handler takes the image and the label from ``engine.state.batch`` and the prediction from
    ``engine.state.output``; after an ``Invertd`` postprocessing the prediction and the label are back in the input
    file's space but the batch is not, so the three would not line up. This handler reads every key from the
    same post-processed output dict (``engine.state.output[index]``) instead, and, rather than a 3D GIF of every
    frame, writes one 2D slice per key: the slice along ``slice_axis`` (of the channel-first arrays) with the most
    ``label_key`` voxels, the same slice for every key. Each key's first channel is rescaled to [0, 1]; the tags are
    ``<tag_prefix>/<key>``.

    Triggering and steps are the parent's (``interval``, ``epoch_level``, ``global_iter_transform``): at epoch level
    on a validator it shows the last case of each validation run.
    """

    def __init__(
        self,
        keys: Sequence[str] = ("image", "label", "pred"),
        label_key: str = "label",
        slice_axis: int = -1,
        tag_prefix: str = "val",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keys, self.label_key, self.slice_axis, self.tag_prefix = tuple(keys), label_key, slice_axis, tag_prefix

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        case = output[self.index] if isinstance(output, (list, tuple)) else output
        if not isinstance(case, dict):
            raise TypeError(f"expected the engine output to hold dicts of {self.keys}, got {type(case).__name__}")
        missing = [k for k in (*self.keys, self.label_key) if k not in case]
        if missing:
            raise KeyError(f"the engine output has no {missing} (it has {sorted(case)})")
        arrays = {k: _numpy(case[k]) for k in {*self.keys, self.label_key}}
        label = arrays[self.label_key]
        if label.ndim < 3 or self.slice_axis % label.ndim == 0:
            raise ValueError(f"slice_axis {self.slice_axis} must be a spatial axis of a channel-first volume, "
                             f"got {self.label_key} of shape {label.shape}")
        index = most_labelled_slice(label, self.slice_axis)
        step = self.global_iter_transform(engine.state.epoch if self.epoch_level else engine.state.iteration)
        for key in self.keys:
            data = arrays[key]
            if data.shape[1:] != label.shape[1:]:
                raise ValueError(f"{key} of shape {data.shape} and {self.label_key} of shape {label.shape} are not "
                                 "in the same space")
            image = rescale_array(np.take(data, index, axis=self.slice_axis)[0].astype(np.float32), 0.0, 1.0)
            self._writer.add_image(f"{self.tag_prefix}/{key}", image, step, dataformats="HW")
        self._writer.flush()


def _numpy(data: Any) -> np.ndarray:
    return data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
