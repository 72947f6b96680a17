"""Losses for thick-slice training."""

from __future__ import annotations

from .slab_dice import SlabDiceLoss

__all__ = ["SlabDiceLoss"]
