"""Ignite/MONAI handlers for the bundles: atomic checkpoints, resuming, checkpoint signatures."""

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

__all__ = [
    "AtomicCheckpointSaver",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "ModelSignature",
    "ResumeCheckpointLoader",
    "ViewCheckpointsLoader",
    "read_checkpoint",
    "save_atomically",
]
