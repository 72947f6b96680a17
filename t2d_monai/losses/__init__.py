"""Losses for thick-slice training."""

from __future__ import annotations

from .slab_loss import SlabDiceLoss, SlabLoss, capped_margin, to_slab

__all__ = ["SlabDiceLoss", "SlabLoss", "capped_margin", "to_slab"]
