"""Errors a durable storage backend raises: corruption found on disk, a full disk, a dead disk.

All are `RaftError`s. `CorruptedStorage` means the node must not start from this directory as
it is (an operator restores it, or the node rejoins empty and catches up by snapshot);
`StorageFull` means a write was refused and rolled back, so the same call may be retried once
space returns; any other `StorageError` from a write means the backend can no longer vouch
for what reached the disk and must be reopened.
"""

from __future__ import annotations

from pathlib import Path

from raft.core import RaftError


class StorageError(RaftError):
    """A storage backend could not read or persist state."""


class CorruptedStorage(StorageError):
    """A checksum or structure check failed somewhere a crash cannot explain.

    `path` is the file and `offset` the byte offset of the bad record in it (0 for a file
    that is checked as a whole). Nothing after the bad record was read: storage never
    replays, nor silently drops, data it cannot vouch for.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"corrupted storage: {path} at byte {offset}: {reason}")


class StorageFull(StorageError):
    """The disk is full (ENOSPC or EDQUOT). The write was rolled back, nothing stored changed,
    and the same call may be retried once space is freed; the `OSError` is the `__cause__`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"no space left to write {path}; nothing was changed, retry when freed")
