"""Ignite/MONAI handlers for the bundles: atomic checkpoints, resuming, checkpoint signatures."""

from __future__ import annotations

from .checkpoint import AtomicCheckpointSaver, ResumeCheckpointLoader, ViewCheckpointsLoader, save_atomically
from .model_signature import CheckpointMismatchError, ModelSignature

__all__ = [
    "AtomicCheckpointSaver",
    "CheckpointMismatchError",
    "ModelSignature",
    "ResumeCheckpointLoader",
    "ViewCheckpointsLoader",
    "save_atomically",
]
