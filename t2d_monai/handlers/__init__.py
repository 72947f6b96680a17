"""Ignite/MONAI handlers for the bundles: atomic checkpoints, resuming, checkpoint signatures, a validation case in
TensorBoard, validation statistics for MONAI Label."""

from __future__ import annotations

from .checkpoint import (
    AtomicCheckpointSaver,
    CheckpointReadError,
    ResumeCheckpointLoader,
    ViewCheckpointsLoader,
    read_checkpoint,
    save_atomically,
)
from .model_signature import CheckpointMismatchError, ModelSignature
from .tensorboard import TensorBoardCaseHandler, most_labelled_slice
from .train_stats import TrainStatsWriter, read_train_stats

__all__ = [
    "AtomicCheckpointSaver",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "ModelSignature",
    "ResumeCheckpointLoader",
    "TensorBoardCaseHandler",
    "TrainStatsWriter",
    "ViewCheckpointsLoader",
    "read_checkpoint",
    "read_train_stats",
    "most_labelled_slice",
    "save_atomically",
]
