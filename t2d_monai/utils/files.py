"""Atomic file writing: a reader never sees a half-written file, and an interrupted write leaves the old one."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

__all__ = ["atomic_output", "write_atomic", "write_csv_atomic"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through: a temporary file in the same folder, renamed onto ``path``
    (``os.replace``) only when the block ends without an exception; otherwise it is removed and ``path`` is
    untouched.

    The data is flushed and ``fsync``-ed before the rename, and the file gets the permissions a plain
    ``open()`` would give (``0o666`` minus the umask) rather than ``tempfile``'s private ``0o600``.
    The folder is created when missing.

    Example::

        with atomic_output("models/model.pt") as f:
            torch.save(state, f)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> str:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through :func:`atomic_output`; returns ``path``."""
    with atomic_output(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return os.fspath(path)


def write_csv_atomic(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Write ``rows`` as CSV with a header of ``columns`` (other keys ignored), atomically (:func:`write_atomic`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buf.getvalue())
