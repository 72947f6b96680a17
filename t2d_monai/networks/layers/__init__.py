"""Layers of the thickened 2D networks; importing this registers ``"switchable"`` in MONAI's ``Norm`` factory."""

from __future__ import annotations

from .switch_norm import SwitchNorm, SwitchNorm1d, SwitchNorm2d, SwitchNorm3d

__all__ = ["SwitchNorm", "SwitchNorm1d", "SwitchNorm2d", "SwitchNorm3d"]
