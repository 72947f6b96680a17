"""Unwrapping of data-parallel wrappers."""

from __future__ import annotations

from typing import Any

__all__ = ["unwrap_parallel"]


def unwrap_parallel(obj: Any) -> Any:
    """The module inside a ``DataParallel``/``DistributedDataParallel`` wrapper, else ``obj`` itself."""
    import torch  # here, so that t2d_monai.utils (and ``python -m t2d_monai synth``) does not import torch

    if isinstance(obj, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        return obj.module
    return obj
