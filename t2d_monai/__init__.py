"""Thickened 2D networks (Yu et al., 2019) for efficient 3D CT segmentation, as MONAI components."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
