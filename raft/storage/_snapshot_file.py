"""Snapshot files: `snapshot-<index>-<term>.snap`, metadata and data checksummed together,
each written once with `write_atomically` and never changed."""

from __future__ import annotations

from pathlib import Path

from raft.core import Snapshot, SnapshotMetadata
from raft.core._membership import Membership
from raft.storage._errors import CorruptedStorage
from raft.storage._files import read_file, write_atomically
from raft.storage._records import pack, seal, unpack, unseal

MAGIC = b"RAFT-SN1"
PATTERN = "snapshot-*.snap"


def snapshot_path(directory: Path, index: int, term: int) -> Path:
    """Where the snapshot at (`index`, `term`) lives."""
    return directory / f"snapshot-{index:020d}-{term:020d}.snap"


def write_snapshot(directory: Path, snapshot: Snapshot) -> Path:
    """Write `snapshot` to its file, durably; returns the path."""
    meta = snapshot.metadata
    body = {
        "index": meta.index,
        "term": meta.term,
        "voters": meta.membership.voters,
        "outgoing": meta.membership.outgoing,
        "learners": meta.membership.learners,
        "data": snapshot.data,
    }
    path = snapshot_path(directory, meta.index, meta.term)
    write_atomically(path, seal(MAGIC, pack(body)))
    return path


def read_snapshot(directory: Path, index: int, term: int) -> Snapshot:
    """The snapshot at (`index`, `term`); missing, damaged or not the one named is
    `CorruptedStorage`."""
    path = snapshot_path(directory, index, term)
    if not path.exists():
        raise CorruptedStorage(path, 0, "the state file names this snapshot but it is missing")
    body = unpack(unseal(read_file(path), MAGIC, path), path, 0)
    try:
        membership = Membership(
            tuple(body["voters"]), tuple(body["outgoing"]), tuple(body["learners"])
        )
        snapshot = Snapshot(SnapshotMetadata(body["index"], body["term"], membership), body["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptedStorage(path, 0, f"malformed snapshot file: {error!r}") from error
    if (snapshot.metadata.index, snapshot.metadata.term) != (index, term) or not isinstance(
        snapshot.data, bytes
    ):
        raise CorruptedStorage(path, 0, "snapshot file does not hold the snapshot it is named for")
    return snapshot
