"""A conformance suite for storage backends: subclass `StorageConformance` and run pytest.

Every backend the runtime writes to must give the same answers: the `Storage` protocol the
core reads, Raft's truncation of an uncommitted suffix, a hard state that round-trips, and
after a reopen exactly what was acknowledged. Backends that can simulate a crash mid-write
also show that a torn append is all-or-prefix and that damage to an acknowledged record is
reported as `CorruptedStorage`, never replayed. Snapshot support is checked when declared.

    from raft.testing.storage import StorageConformance

    class TestMyStorage(StorageConformance):
        snapshots = True

        def make_storage(self, path):
            return MyStorage(path)

        def reopen(self, storage, path):
            storage.close()
            return MyStorage(path)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar, Protocol, cast

import pytest

from raft.core import Entry, HardState, Snapshot, SnapshotMetadata
from raft.core._membership import Membership
from raft.core._storage import Storage
from raft.storage._errors import CorruptedStorage


class WritableStorage(Storage, Protocol):
    """What the runtime writes through: the `Storage` protocol plus its two write calls, each
    durable when it returns."""

    def set_hard_state(self, hard_state: HardState) -> None:
        """Persist the hard state."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Persist `entries`, replacing any held from the first one's index on."""
        ...


class SnapshotStorage(WritableStorage, Protocol):
    """A `WritableStorage` that also keeps snapshots and compacts its log."""

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot persisted, or None."""
        ...

    def create_snapshot(self, metadata: SnapshotMetadata, data: bytes) -> None:
        """Store a snapshot taken here and drop the entries up to `metadata.index`."""
        ...

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Install a leader's snapshot: it replaces the whole log, and the commit index rises
        to its index if it was below."""
        ...


def batch(term: int, first: int, count: int) -> list[Entry]:
    """`count` entries of `term` from index `first`, each with data naming its index and term."""
    return [Entry(term, index, b"%d@%d" % (index, term)) for index in range(first, first + count)]


class StorageConformance:
    """The suite. Subclass it in a module pytest collects (as `TestSomething`), implement
    `make_storage` and `reopen`, and declare what the backend can do:

    - `snapshots`: it implements `SnapshotStorage`;
    - `crash_points`: `crash_mid_append` and `damage_durable_record` are implemented.
    """

    snapshots: ClassVar[bool] = False
    crash_points: ClassVar[bool] = False

    def make_storage(self, path: Path) -> WritableStorage:
        """A new, empty storage kept under `path` (a fresh directory)."""
        raise NotImplementedError

    def reopen(self, storage: WritableStorage, path: Path) -> WritableStorage:
        """Close `storage` and open what it left under `path`, as a restarted process would.
        A backend without files returns `storage` itself (what a crash would leave it)."""
        raise NotImplementedError

    def crash_mid_append(
        self, storage: WritableStorage, path: Path, entries: Sequence[Entry], keep: float
    ) -> None:
        """Leave `path` as a crash in the middle of `storage.append(entries)` would: only the
        first `keep` (0 <= keep < 1) of the bytes that append writes reach the disk. Close
        `storage`; the suite reopens `path`."""
        raise NotImplementedError

    def damage_durable_record(self, path: Path) -> None:
        """Flip a byte inside the first entry's record under `path` (the storage is closed
        and more records follow it)."""
        raise NotImplementedError

    # The Storage protocol.

    def test_new_storage_is_empty_with_a_zero_hard_state(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)

        assert (storage.first_index(), storage.last_index(), storage.term(0)) == (1, 0, 0)
        assert storage.initial_state() == HardState(0, None, 0)
        assert list(storage.entries(1, 1)) == []

    def test_appended_entries_are_read_back_by_range_and_term(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        written = batch(1, 1, 2) + batch(2, 3, 1)

        storage.append(written)

        assert storage.last_index() == 3
        assert list(storage.entries(1, 4)) == written
        assert list(storage.entries(2, 3)) == written[1:2]
        assert list(storage.entries(4, 4)) == []
        assert [storage.term(index) for index in range(4)] == [0, 1, 1, 2]

    @pytest.mark.parametrize(("low", "high"), [(0, 2), (1, 5), (3, 2), (-1, 1)])
    def test_entries_outside_the_log_are_an_index_error(
        self, tmp_path: Path, low: int, high: int
    ) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 3))

        with pytest.raises(IndexError):
            storage.entries(low, high)

    @pytest.mark.parametrize("index", [-1, 4])
    def test_term_outside_the_log_is_an_index_error(self, tmp_path: Path, index: int) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 3))

        with pytest.raises(IndexError):
            storage.term(index)

    # Truncation of an uncommitted suffix.

    def test_append_inside_the_log_replaces_the_suffix(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 5))

        storage.append(batch(3, 3, 2))

        assert storage.last_index() == 4
        assert list(storage.entries(1, 5)) == batch(1, 1, 2) + batch(3, 3, 2)

    def test_a_shorter_replacement_shortens_the_log(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 5))

        storage.append(batch(4, 2, 1))

        assert storage.last_index() == 2
        assert storage.term(2) == 4

    def test_append_of_nothing_changes_nothing(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 2))

        storage.append([])

        assert list(storage.entries(1, 3)) == batch(1, 1, 2)

    def test_an_append_leaving_a_gap_is_refused_and_changes_nothing(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 2))

        with pytest.raises(ValueError, match="gap"):
            storage.append(batch(1, 4, 1))
        with pytest.raises(ValueError):
            storage.append(batch(1, 0, 1))

        assert list(storage.entries(1, 3)) == batch(1, 1, 2)

    def test_entries_read_before_a_replacement_keep_what_they_held(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 3))
        before = list(storage.entries(1, 4))

        storage.append(batch(2, 2, 1))

        assert before == batch(1, 1, 3)

    # Hard state and reopening.

    def test_the_hard_state_round_trips_through_a_reopen(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(5, 1, 3))
        storage.set_hard_state(HardState(term=5, vote=2, commit=3))
        storage.set_hard_state(HardState(term=6, vote=None, commit=3))

        storage = self._reopen(storage, tmp_path)

        assert storage.initial_state() == HardState(term=6, vote=None, commit=3)

    def test_reopen_returns_exactly_what_was_made_durable(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(batch(1, 1, 10))
        storage.append(batch(2, 6, 3))
        storage.append(batch(3, 9, 4))
        storage.append(batch(3, 13, 1))
        storage.set_hard_state(HardState(3, 1, 7))
        expected = list(storage.entries(1, storage.last_index() + 1))

        storage = self._reopen(storage, tmp_path)

        assert (storage.first_index(), storage.last_index()) == (1, 13)
        assert list(storage.entries(1, 14)) == expected
        assert [storage.term(index) for index in range(14)] == [0] + [e.term for e in expected]
        assert storage.initial_state() == HardState(3, 1, 7)

    def test_every_acknowledged_append_survives_each_reopen(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        expected: list[Entry] = []
        for term, first in [(1, 1), (1, 4), (2, 3), (2, 5), (4, 7)]:
            entries = batch(term, first, 3)
            storage.append(entries)
            expected[first - 1 :] = entries
            storage = self._reopen(storage, tmp_path)
            assert list(storage.entries(1, storage.last_index() + 1)) == expected
            storage.append(batch(term, first + 3, 1))
            expected.append(batch(term, first + 3, 1)[0])

    # Crash points.

    @pytest.mark.parametrize("keep", [0.0, 0.01, 0.3, 0.6, 0.99])
    def test_a_torn_append_is_lost_or_kept_whole_and_earlier_ones_survive(
        self, tmp_path: Path, keep: float
    ) -> None:
        self._require("crash_points")
        storage = self._open(tmp_path)
        acknowledged = batch(1, 1, 6) + batch(2, 5, 4)
        storage.append(acknowledged[:6])
        storage.append(acknowledged[6:])
        storage.set_hard_state(HardState(2, 1, 4))
        del acknowledged[4:6]
        torn = batch(2, 9, 5)

        self.crash_mid_append(storage, tmp_path, torn, keep)
        self._forget(storage)
        storage = self._open_after_crash(tmp_path)

        found = list(storage.entries(1, storage.last_index() + 1))
        assert found[: len(acknowledged)] == acknowledged
        assert found[len(acknowledged) :] == torn[: len(found) - len(acknowledged)]
        assert storage.initial_state() == HardState(2, 1, 4)
        storage.append(batch(3, 9, 2))
        storage = self._reopen(storage, tmp_path)
        assert list(storage.entries(1, 11)) == acknowledged + batch(3, 9, 2)

    def test_damage_to_an_acknowledged_record_is_reported(self, tmp_path: Path) -> None:
        self._require("crash_points")
        storage = self._open(tmp_path)
        for first in range(1, 10, 3):
            storage.append(batch(1, first, 3))
        storage = self._reopen(storage, tmp_path)
        self.close(storage)
        self._forget(storage)

        self.damage_durable_record(tmp_path)

        with pytest.raises(CorruptedStorage):
            self._open_after_crash(tmp_path)

    # Snapshots and compaction.

    def test_a_snapshot_compacts_the_log_and_survives_a_reopen(self, tmp_path: Path) -> None:
        storage = self._snapshot_storage(tmp_path)
        storage.append(batch(1, 1, 5) + batch(2, 6, 5))
        storage.set_hard_state(HardState(2, 1, 8))
        snapshot = Snapshot(
            SnapshotMetadata(7, 2, Membership((1, 2, 3), learners=(4,))), b"state at 7"
        )

        storage.create_snapshot(snapshot.metadata, snapshot.data)

        for found in self._now_and_after_reopen(storage, tmp_path):
            assert found.snapshot() == snapshot
            assert (found.first_index(), found.last_index(), found.term(7)) == (8, 10, 2)
            assert list(found.entries(8, 11)) == batch(2, 8, 3)
            with pytest.raises(IndexError):
                found.term(6)
            with pytest.raises(IndexError):
                found.entries(7, 8)

    @pytest.mark.parametrize(("index", "term"), [(0, 0), (3, 2), (9, 2), (2, 5)])
    def test_a_snapshot_of_what_is_not_committed_here_is_refused(
        self, tmp_path: Path, index: int, term: int
    ) -> None:
        storage = self._snapshot_storage(tmp_path)
        storage.append(batch(1, 1, 2) + batch(2, 3, 1))
        storage.set_hard_state(HardState(2, None, 2))

        with pytest.raises(ValueError):
            storage.create_snapshot(SnapshotMetadata(index, term, Membership((1,))), b"s")

        assert (storage.first_index(), storage.snapshot()) == (1, None)

    def test_appends_after_compaction_land_above_the_snapshot(self, tmp_path: Path) -> None:
        storage = self._snapshot_storage(tmp_path)
        storage.append(batch(1, 1, 3))
        storage.set_hard_state(HardState(1, None, 2))
        storage.create_snapshot(SnapshotMetadata(2, 1, Membership((1,))), b"s")

        storage.append(batch(3, 3, 2))
        with pytest.raises(ValueError):
            storage.append(batch(3, 2, 1))

        storage = self._snapshots(self._reopen(storage, tmp_path))
        assert (storage.first_index(), storage.term(2)) == (3, 1)
        assert list(storage.entries(3, 5)) == batch(3, 3, 2)

    def test_an_installed_snapshot_replaces_the_log_and_raises_the_commit(
        self, tmp_path: Path
    ) -> None:
        storage = self._snapshot_storage(tmp_path)
        storage.append(batch(1, 1, 10))
        storage.set_hard_state(HardState(1, None, 3))
        snapshot = Snapshot(SnapshotMetadata(20, 3, Membership((1, 2), (1, 3))), b"leader")

        storage.apply_snapshot(snapshot)
        storage.append(batch(3, 21, 2))

        for found in self._now_and_after_reopen(storage, tmp_path):
            assert found.snapshot() == snapshot
            assert (found.first_index(), found.last_index(), found.term(20)) == (21, 22, 3)
            assert list(found.entries(21, 23)) == batch(3, 21, 2)
            assert found.initial_state() == HardState(1, None, 20)

    def test_an_installed_snapshot_older_than_the_log_start_is_refused(
        self, tmp_path: Path
    ) -> None:
        storage = self._snapshot_storage(tmp_path)
        storage.apply_snapshot(Snapshot(SnapshotMetadata(5, 2, Membership((1,))), b"new"))

        with pytest.raises(ValueError):
            storage.apply_snapshot(Snapshot(SnapshotMetadata(5, 2, Membership((1,))), b"old"))

        assert storage.snapshot() == Snapshot(SnapshotMetadata(5, 2, Membership((1,))), b"new")

    # Helpers.

    def reopen_after_crash(self, path: Path) -> WritableStorage:
        """Open what a crashed process left under `path` (by default: `make_storage`, which
        for a file backend opens the existing directory)."""
        return self.make_storage(path)

    def close(self, storage: WritableStorage) -> None:
        """Release `storage` without reopening it."""
        close = getattr(storage, "close", None)
        if close is not None:
            close()

    @pytest.fixture(autouse=True)
    def _close_what_tests_opened(self) -> Iterator[None]:
        self._opened: list[WritableStorage] = []
        yield
        for storage in self._opened:
            self.close(storage)

    def _open(self, path: Path) -> WritableStorage:
        storage = self.make_storage(path)
        self._opened.append(storage)
        return storage

    def _open_after_crash(self, path: Path) -> WritableStorage:
        storage = self.reopen_after_crash(path)
        self._opened.append(storage)
        return storage

    def _reopen(self, storage: WritableStorage, path: Path) -> WritableStorage:
        self._forget(storage)
        storage = self.reopen(storage, path)
        self._opened.append(storage)
        return storage

    def _forget(self, storage: WritableStorage) -> None:
        self._opened = [opened for opened in self._opened if opened is not storage]

    def _require(self, capability: str) -> None:
        if not getattr(self, capability):
            pytest.skip(f"{type(self).__name__} does not declare {capability}")

    def _snapshot_storage(self, path: Path) -> SnapshotStorage:
        self._require("snapshots")
        return self._snapshots(self._open(path))

    def _now_and_after_reopen(
        self, storage: SnapshotStorage, path: Path
    ) -> Iterator[SnapshotStorage]:
        """`storage`, then (once the caller has checked it) what a reopen gives."""
        yield storage
        yield self._snapshots(self._reopen(storage, path))

    def _snapshots(self, storage: WritableStorage) -> SnapshotStorage:
        return cast(SnapshotStorage, storage)
