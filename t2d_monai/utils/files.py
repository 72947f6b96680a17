"""Atomic file writing: a reader never sees a half-written file, and an interrupted write leaves the old one."""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

__all__ = ["atomic_output", "atomic_path", "remove_partial_writes", "write_atomic", "write_csv_atomic"]


#: the marker in the name of a temporary file that :func:`atomic_path` renames onto its target when complete
_PARTIAL = ".partial"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """A temporary path to write ``path`` through (for writers that take a file name, e.g. nibabel): a hidden
    file in the same folder, ``.<name>.<random>.partial<suffix>`` (give the extension the writer needs as
    ``suffix``, e.g. ``".nii.gz"``), renamed onto ``path`` (``os.replace``) only when the block ends without an
    exception; otherwise it is removed and ``path`` is untouched.

    The data is ``fsync``-ed before the rename, and the file gets the permissions a plain ``open()`` would give
    (``0o666`` minus the umask) rather than ``tempfile``'s private ``0o600``. The folder is created when missing.
    A process killed inside the block leaves the temporary file behind: :func:`remove_partial_writes` deletes it.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f"{_PARTIAL}{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through (:func:`atomic_path`): readers see the old or the new file, never
    half of one.

    Example::

        with atomic_output("models/model.pt") as f:
            torch.save(state, f)
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def remove_partial_writes(path: str | os.PathLike) -> list[str]:
    """Delete the temporary files that processes killed while writing ``path`` through :func:`atomic_path` left
    in its folder; returns their paths. ``path`` itself is never touched (it is complete, old or new)."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        return []
    stale = glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*{_PARTIAL}*"))
    for p in stale:
        os.remove(p)
    return stale


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
