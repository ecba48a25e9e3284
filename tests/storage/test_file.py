"""FileStorage: segments, compaction, snapshots on disk, locking, and disk-full/dead-disk paths."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from raft import Config, Entry, EntryKind, HardState, RaftNode, Snapshot, SnapshotMetadata
from raft.core._membership import Membership
from raft.storage import (
    CorruptedStorage,
    FileStorage,
    StorageError,
    StorageFull,
)
from raft.storage._segments import SegmentLog

MEMBERS = Membership((1, 2, 3))


def batch(term: int, first: int, count: int) -> list[Entry]:
    return [Entry(term, index, b"%d@%d" % (index, term)) for index in range(first, first + count)]


def segments(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("log-*.seg"))


def test_a_new_directory_is_an_empty_log_with_a_zero_hard_state(tmp_path: Path) -> None:
    with FileStorage(tmp_path / "node") as storage:
        assert (storage.first_index(), storage.last_index(), storage.term(0)) == (1, 0, 0)
        assert storage.initial_state() == HardState()
        assert storage.snapshot() is None
    assert sorted(p.name for p in (tmp_path / "node").iterdir()) == [
        "LOCK",
        "log-000000000001.seg",
        "state",
    ]


def test_segments_roll_over_at_the_size_bound_and_replay_in_order(tmp_path: Path) -> None:
    with FileStorage(tmp_path, segment_bytes=100) as storage:
        for first in range(1, 41, 4):
            storage.append(batch(1, first, 4))
        storage.append(batch(2, 30, 3))  # truncates back into an earlier segment
        written = list(storage.entries(1, 33))

    assert len(segments(tmp_path)) > 3
    with FileStorage(tmp_path, segment_bytes=100) as storage:
        assert storage.last_index() == 32
        assert list(storage.entries(1, 33)) == written


def test_compaction_deletes_whole_segments_below_the_snapshot(tmp_path: Path) -> None:
    with FileStorage(tmp_path, segment_bytes=100) as storage:
        for first in range(1, 41, 4):
            storage.append(batch(1, first, 4))
        storage.set_hard_state(HardState(1, 1, 40))
        before = segments(tmp_path)
        storage.create_snapshot(SnapshotMetadata(30, 1, MEMBERS), b"image")
        after = segments(tmp_path)
        assert (storage.first_index(), storage.term(30)) == (31, 1)

    assert len(after) < len(before)
    assert after == before[-len(after) :], "only a prefix of segments goes"
    with FileStorage(tmp_path) as storage:
        assert (storage.first_index(), storage.last_index()) == (31, 40)
        assert list(storage.entries(31, 41)) == batch(1, 31, 10)
        assert storage.snapshot() == Snapshot(SnapshotMetadata(30, 1, MEMBERS), b"image")


def test_an_installed_snapshot_replaces_the_whole_log(tmp_path: Path) -> None:
    snapshot = Snapshot(SnapshotMetadata(50, 4, Membership((1, 2), (3,), (4,))), b"leader's")
    with FileStorage(tmp_path, segment_bytes=100) as storage:
        storage.append(batch(1, 1, 60))
        storage.save(HardState(4, None, 50), batch(4, 51, 2), snapshot)
        assert (storage.first_index(), storage.last_index(), storage.term(50)) == (51, 52, 4)

    assert segments(tmp_path) == ["log-000000000002.seg"]
    with FileStorage(tmp_path) as storage:
        assert storage.snapshot() == snapshot
        assert list(storage.entries(51, 53)) == batch(4, 51, 2)
        assert storage.initial_state() == HardState(4, None, 50)


def test_a_directory_is_held_by_one_storage_at_a_time(tmp_path: Path) -> None:
    with FileStorage(tmp_path), pytest.raises(StorageError, match="already open"):
        FileStorage(tmp_path)
    FileStorage(tmp_path).close()


def test_a_full_disk_changes_nothing_and_a_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileStorage(tmp_path)
    storage.append(batch(1, 1, 3))
    real_pwrite = os.pwrite
    calls = []

    def half_then_full(fd: int, data: bytes, offset: int) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_pwrite(fd, bytes(data)[: len(data) // 2], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", half_then_full)
    with pytest.raises(StorageFull, match="no space left"):
        storage.append(batch(1, 4, 3))
    assert storage.last_index() == 3
    calls.clear()
    with pytest.raises(StorageFull):
        storage.set_hard_state(HardState(1, 2, 3))
    assert storage.initial_state() == HardState()
    assert not list(tmp_path.glob("*.tmp"))

    monkeypatch.setattr(os, "pwrite", real_pwrite)
    storage.append(batch(1, 4, 3))
    storage.set_hard_state(HardState(1, 2, 3))
    storage.close()
    with FileStorage(tmp_path) as reopened:
        assert list(reopened.entries(1, 7)) == batch(1, 1, 6)
        assert reopened.initial_state() == HardState(1, 2, 3)


def test_a_failed_fsync_stops_writes_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileStorage(tmp_path)
    storage.append(batch(1, 1, 2))
    real_fsync = os.fsync
    failures = iter([OSError(errno.EIO, "Input/output error")])

    def fsync_once_failing(fd: int) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_once_failing)
    with pytest.raises(StorageError, match="could not fsync"):
        storage.append(batch(1, 3, 2))
    with pytest.raises(StorageError, match="reopen the storage"):
        storage.append(batch(1, 3, 2))
    storage.close()
    with FileStorage(tmp_path) as reopened:
        assert reopened.last_index() == 2, "the write whose fsync failed was rolled back"


def test_damage_before_the_tail_names_the_file_and_offset(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as storage:
        storage.append(batch(1, 1, 3))
        storage.append(batch(1, 4, 3))
    segment = tmp_path / "log-000000000001.seg"
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF
    segment.write_bytes(bytes(data))

    with pytest.raises(CorruptedStorage, match=r"log-000000000001\.seg at byte \d+") as caught:
        FileStorage(tmp_path)
    assert caught.value.path == segment
    assert caught.value.offset <= 40


@pytest.mark.parametrize("name", ["state", "snapshot"])
def test_damaged_state_and_snapshot_files_are_corruption(tmp_path: Path, name: str) -> None:
    with FileStorage(tmp_path) as storage:
        storage.save(HardState(1, 1, 1), batch(1, 1, 2))
        storage.create_snapshot(SnapshotMetadata(1, 1, MEMBERS), b"image")
    path = next(tmp_path.glob(f"{name}*"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(CorruptedStorage, match="checksum mismatch"):
        FileStorage(tmp_path)


def test_writes_outside_the_rules_are_refused(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as storage:
        storage.append(batch(1, 1, 3))
        with pytest.raises(ValueError, match="append the entries before the hard state"):
            storage.set_hard_state(HardState(1, 1, 4))
        with pytest.raises(ValueError, match="consecutive indexes"):
            storage.append([Entry(1, 4, b""), Entry(1, 6, b"")])
        with pytest.raises(ValueError, match="beyond the last committed entry"):
            storage.create_snapshot(SnapshotMetadata(2, 1, MEMBERS), b"")
        with pytest.raises(ValueError, match="segment_bytes must be >= 1"):
            FileStorage(tmp_path / "other", segment_bytes=0)
    with pytest.raises(StorageError, match="closed"):
        storage.append(batch(1, 4, 1))


def test_a_moved_commit_index_rides_in_the_same_fsync_as_the_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileStorage(tmp_path)
    storage.save(HardState(1, 1, 0), batch(1, 1, 3))
    state_file = (tmp_path / "state").read_bytes()
    real_fsync = os.fsync
    fsyncs = []

    def counting(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting)
    storage.save(HardState(1, 1, 2), batch(1, 4, 2))
    storage.save(HardState(1, 1, 5), [])

    assert len(fsyncs) == 2, "one fsync per save"
    assert (tmp_path / "state").read_bytes() == state_file
    storage.close()
    with FileStorage(tmp_path) as reopened:
        assert reopened.initial_state() == HardState(1, 1, 5)
        reopened.create_snapshot(SnapshotMetadata(4, 1, MEMBERS), b"")
    with FileStorage(tmp_path) as reopened:
        assert reopened.initial_state() == HardState(1, 1, 5)


def test_committed_entries_are_never_replaced_and_commit_never_goes_back(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as storage:
        storage.save(HardState(1, 1, 2), batch(1, 1, 3))
        with pytest.raises(ValueError, match="would replace committed entries"):
            storage.append(batch(2, 2, 1))
        with pytest.raises(ValueError, match="between the last one persisted"):
            storage.set_hard_state(HardState(1, 1, 1))
        storage.append(batch(2, 3, 1))
        assert storage.term(3) == 2


class Crash(BaseException):
    """The process dies here."""


def test_a_crash_after_the_state_file_names_a_snapshot_leaves_garbage_that_open_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileStorage(tmp_path, segment_bytes=64)
    for first in range(1, 31, 3):
        storage.append(batch(1, first, 3))
    storage.set_hard_state(HardState(1, 1, 30))
    storage.create_snapshot(SnapshotMetadata(10, 1, MEMBERS), b"first")
    (tmp_path / "state.tmp").write_bytes(b"half a state file")

    def crash(self: object, seq: int) -> None:
        raise Crash

    monkeypatch.setattr(SegmentLog, "remove_before", crash)
    with pytest.raises(Crash):
        storage.create_snapshot(SnapshotMetadata(25, 1, MEMBERS), b"second")
    storage.close()
    monkeypatch.undo()
    left_behind = segments(tmp_path)

    with FileStorage(tmp_path, segment_bytes=64) as reopened:
        assert reopened.snapshot() == Snapshot(SnapshotMetadata(25, 1, MEMBERS), b"second")
        assert (reopened.first_index(), reopened.last_index()) == (26, 30)
        assert list(reopened.entries(26, 31)) == batch(1, 26, 5)
    assert len(segments(tmp_path)) < len(left_behind)
    assert len(list(tmp_path.glob("snapshot-*"))) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_an_installed_snapshot_refused_for_space_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = Snapshot(SnapshotMetadata(9, 2, MEMBERS), b"leader's")
    storage = FileStorage(tmp_path)
    storage.append(batch(1, 1, 4))

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    for _ in range(2):
        with pytest.raises(StorageFull):
            storage.apply_snapshot(snapshot)
        assert (storage.snapshot(), storage.last_index()) == (None, 4)
    monkeypatch.undo()
    storage.save(HardState(2, None, 9), batch(2, 10, 1), snapshot)
    storage.close()

    with FileStorage(tmp_path) as reopened:
        assert reopened.snapshot() == snapshot
        assert list(reopened.entries(10, 11)) == batch(2, 10, 1)
        assert reopened.initial_state() == HardState(2, None, 9)


def test_a_node_restarted_from_its_directory_carries_on_where_it_stopped(tmp_path: Path) -> None:
    def run(storage: FileStorage, commands: list[bytes]) -> list[bytes]:
        node = RaftNode(Config(node_id=1, voters=(1,)), storage, random.Random(1))
        node.campaign()
        for command in commands:
            node.propose(command)
        applied = []
        while node.has_ready():
            ready = node.ready()
            storage.save(ready.hard_state, ready.entries)
            applied += [e.data for e in ready.committed_entries if e.kind == EntryKind.COMMAND]
            node.advance(ready)
        return applied

    with FileStorage(tmp_path) as storage:
        assert run(storage, [b"a", b"b"]) == [b"a", b"b"]
        before = storage.initial_state()
    with FileStorage(tmp_path) as storage:
        assert storage.initial_state() == before
        assert run(storage, [b"c"])[-1:] == [b"c"]
        assert storage.initial_state().term == before.term + 1
        commands = [e.data for e in storage.entries(1, storage.last_index() + 1) if e.data]
        assert commands == [b"a", b"b", b"c"]
