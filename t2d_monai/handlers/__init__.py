"""Ignite/MONAI handlers for the bundles: atomic checkpoints, resuming, checkpoint signatures, a validation case in
TensorBoard."""

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

__all__ = [
    "AtomicCheckpointSaver",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "ModelSignature",
    "ResumeCheckpointLoader",
    "TensorBoardCaseHandler",
    "ViewCheckpointsLoader",
    "read_checkpoint",
    "most_labelled_slice",
    "save_atomically",
]
