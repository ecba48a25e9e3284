"""MemoryStorage compaction and installed snapshots (paper §7): what stays readable, and the
errors that guard against compacting what is not committed or installing an older snapshot."""

from __future__ import annotations

import pytest

from raft import Entry, HardState, Membership, Snapshot, SnapshotMetadata
from tests.builders import make_storage

MEMBERS = Membership((1, 2, 3))


def meta(index: int, term: int) -> SnapshotMetadata:
    return SnapshotMetadata(index, term, MEMBERS)


def test_create_snapshot_drops_entries_up_to_its_index_and_keeps_the_rest() -> None:
    storage = make_storage([1, 1, 2, 2, 3], HardState(3, None, 4))

    storage.create_snapshot(meta(3, 2), b"state@3")

    assert storage.first_index() == 4
    assert storage.last_index() == 5
    assert storage.term(3) == 2  # the snapshot's last entry still answers term()
    assert [e.index for e in storage.entries(4, 6)] == [4, 5]
    assert storage.snapshot() == Snapshot(meta(3, 2), b"state@3")
    with pytest.raises(IndexError):
        storage.term(2)
    with pytest.raises(IndexError):
        storage.entries(3, 4)


def test_appending_after_compaction_extends_and_replaces_above_the_snapshot() -> None:
    storage = make_storage([1, 1, 2], HardState(2, None, 2))
    storage.create_snapshot(meta(2, 1), b"s")

    storage.append([Entry(3, 3, b"x"), Entry(3, 4, b"y")])

    assert storage.last_index() == 4
    assert storage.term(3) == 3
    with pytest.raises(ValueError, match="at or before the log's start"):
        storage.append([Entry(3, 2, b"z")])


@pytest.mark.parametrize(
    ("index", "term", "message"),
    [
        (0, 0, "not newer"),
        (3, 2, "beyond the last committed"),  # held, but not committed
        (9, 2, "beyond the last committed"),
        (2, 5, "has term 5"),
    ],
)
def test_create_snapshot_rejects_bad_metadata(index: int, term: int, message: str) -> None:
    storage = make_storage([1, 1, 2], HardState(2, None, 2))

    with pytest.raises(ValueError, match=message):
        storage.create_snapshot(meta(index, term), b"s")
    assert storage.first_index() == 1


def test_create_snapshot_rejects_an_index_not_above_the_current_snapshot() -> None:
    storage = make_storage([1, 1, 2], HardState(2, None, 3))
    storage.create_snapshot(meta(2, 1), b"s")

    with pytest.raises(ValueError, match="not newer"):
        storage.create_snapshot(meta(2, 1), b"s")
    with pytest.raises(TypeError, match="bytes"):
        storage.create_snapshot(meta(3, 2), "text")  # type: ignore[arg-type]


def test_apply_snapshot_replaces_the_whole_log_and_raises_the_commit() -> None:
    storage = make_storage([1, 1, 2], HardState(2, 1, 1))

    storage.apply_snapshot(Snapshot(meta(7, 3), b"leader state"))

    assert storage.first_index() == 8
    assert storage.last_index() == 7
    assert storage.term(7) == 3
    assert storage.initial_state() == HardState(2, 1, 7)
    assert storage.snapshot() == Snapshot(meta(7, 3), b"leader state")
    storage.append([Entry(3, 8, b"next")])
    assert storage.last_index() == 8


def test_apply_snapshot_refuses_one_no_newer_than_the_current() -> None:
    storage = make_storage([1, 1, 2], HardState(2, None, 3))
    storage.create_snapshot(meta(3, 2), b"s")

    with pytest.raises(ValueError, match="not newer"):
        storage.apply_snapshot(Snapshot(meta(3, 2), b"s"))


def test_snapshot_metadata_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="index must be an integer >= 0"):
        SnapshotMetadata(-1, 1, MEMBERS)
    with pytest.raises(ValueError, match="membership must be a Membership"):
        SnapshotMetadata(1, 1, (1, 2, 3))  # type: ignore[arg-type]
