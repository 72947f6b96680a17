"""Small helpers shared by several subpackages."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["unwrap_parallel"]


def unwrap_parallel(obj: Any) -> Any:
    """The module inside a ``DataParallel``/``DistributedDataParallel`` wrapper, else ``obj`` itself."""
    if isinstance(obj, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        return obj.module
    return obj
