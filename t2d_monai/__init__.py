"""Thickened 2D networks (Yu et al., 2019) for efficient 3D CT segmentation, as MONAI components.

Subpackages are imported on first use (``t2d_monai.networks``, ``t2d_monai.transforms``, ...), so that
bundle config expressions such as ``$t2d_monai.bundle.checkpoint_filename(@view)`` work after a plain
``$import t2d_monai``, while ``python -m t2d_monai synth`` does not pay for importing the networks.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

SUBPACKAGES = (
    "benchmarks",
    "bundle",
    "data",
    "handlers",
    "inferers",
    "losses",
    "metrics",
    "networks",
    "transforms",
    "utils",
    "visualize",
)

__all__ = ["__version__", *SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 't2d_monai' has no attribute {name!r}")
