"""Atomic file writing: a reader never sees a half-written file."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["write_atomic", "write_csv_atomic"]


def write_atomic(path: str, data: bytes | str) -> str:
    """Write ``data`` to a temporary file next to ``path``, then rename it onto ``path``.

    Args:
        path: destination; its folder is created.
        data: bytes, or text (written as UTF-8).

    Returns:
        ``path``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_csv_atomic(path: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Write ``rows`` as CSV with a header of ``columns`` (other keys ignored), atomically (:func:`write_atomic`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buf.getvalue())
