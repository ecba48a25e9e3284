"""The few system calls durable storage needs, each with its failure made explicit.

A failed write is rolled back (the file is cut back to where the write began), so nothing
half-written stays behind and a retry starts clean; ENOSPC and EDQUOT become `StorageFull`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from raft.storage._errors import StorageError, StorageFull

_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def translated(path: Path, action: str) -> Iterator[None]:
    """Turn an `OSError` from `action` on `path` into `StorageFull` or `StorageError`."""
    try:
        yield
    except OSError as error:
        if error.errno in _FULL:
            raise StorageFull(path) from error
        raise StorageError(f"could not {action} {path}: {error}") from error


def write_at(fd: int, data: bytes, offset: int, path: Path) -> None:
    """Write all of `data` at `offset`; on failure cut the file back to `offset` and raise."""
    try:
        view = memoryview(data)
        position = offset
        while view:
            written = os.pwrite(fd, view, position)
            view = view[written:]
            position += written
    except OSError:
        with translated(path, "roll back a failed write to"):
            os.ftruncate(fd, offset)
        with translated(path, "write"):
            raise


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (created, renamed, removed files) durable."""
    with translated(directory, "fsync the directory"):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves either the old file or the new one.

    Write a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
    On failure the temporary file is removed and `path` is untouched.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        with translated(temporary, "write"):
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                write_at(fd, data, 0, temporary)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def read_file(path: Path) -> bytes:
    """The bytes of `path`, with an I/O failure reported as a `StorageError`."""
    with translated(path, "read"):
        return path.read_bytes()


def append_durably(fd: int, data: bytes, offset: int, path: Path) -> None:
    """Write `data` at `offset` (the end of the file) and fsync, or leave the file as it was.

    If the fsync fails the write is cut away and the cut fsynced, so the file holds exactly
    what an earlier fsync made durable; only if that fails too is the outcome unknown.
    """
    write_at(fd, data, offset, path)
    try:
        os.fsync(fd)
    except OSError:
        with translated(path, "roll back after a failed fsync of"):
            os.ftruncate(fd, offset)
            os.fsync(fd)
        with translated(path, "fsync"):
            raise
