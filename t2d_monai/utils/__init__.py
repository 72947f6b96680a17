"""Small helpers shared by several subpackages: atomic file writing, window positions, module unwrapping.

Nothing here imports another subpackage of t2d_monai, so every subpackage may import it.
"""

from __future__ import annotations

from .args import comma_list
from .files import atomic_output, atomic_path, remove_partial_writes, write_atomic, write_csv_atomic
from .modules import unwrap_parallel
from .windows import window_starts

__all__ = [
    "atomic_output",
    "comma_list",
    "atomic_path",
    "remove_partial_writes",
    "unwrap_parallel",
    "window_starts",
    "write_atomic",
    "write_csv_atomic",
]
