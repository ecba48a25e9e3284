"""Disk faults at offsets hypothesis picks: every torn tail, zeroed tail or flipped byte in a
log segment, the state file or a snapshot file is either cut away as a torn write (only at
the end of the last segment, never below the commit index) or reported as `CorruptedStorage`.
What opens is compared with what was written: it is never silently wrong."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from raft import Entry, HardState
from raft.core._membership import Membership
from raft.storage import CorruptedStorage, FileStorage, SnapshotMetadata
from raft.storage._records import entries_record

SEGMENT_BYTES = 96


@attrs.frozen
class Append:
    term: int
    first: int
    count: int

    def entries(self) -> list[Entry]:
        return [
            Entry(self.term, index, b"%d@%d" % (index, self.term))
            for index in range(self.first, self.first + self.count)
        ]


@attrs.frozen
class Written:
    """What a workload left: the log after each append, and where each append's record lies."""

    logs: tuple[tuple[Entry, ...], ...]
    """`logs[k]`: the log after the first k appends."""
    records: tuple[tuple[Path, int, int], ...]
    """(segment, start, end) of each append's record."""
    commit: int


@st.composite
def workloads(draw: st.DrawFn) -> tuple[int, list[Append]]:
    """A first append, a commit index inside it, then appends that may replace anything
    above the commit index (as Raft's truncation does)."""
    base = draw(st.integers(1, 8))
    commit = draw(st.integers(0, base))
    appends = [Append(1, 1, base)]
    term, last = 1, base
    for _ in range(draw(st.integers(1, 6))):
        first = draw(st.integers(commit + 1, last + 1))
        term += draw(st.integers(0, 1))
        appends.append(Append(term, first, draw(st.integers(1, 5))))
        last = appends[-1].first + appends[-1].count - 1
    return commit, appends


def write(directory: Path, commit: int, appends: Sequence[Append]) -> Written:
    logs: list[tuple[Entry, ...]] = [()]
    records = []
    with FileStorage(directory, segment_bytes=SEGMENT_BYTES) as storage:
        for number, append in enumerate(appends):
            entries = append.entries()
            storage.append(entries)
            if number == 0:
                storage.set_hard_state(HardState(1, 1, commit))
            segment = max(directory.glob("log-*.seg"))
            end = segment.stat().st_size
            records.append((segment, end - len(entries_record(entries)), end))
            logs.append(tuple(storage.entries(1, storage.last_index() + 1)))
    return Written(tuple(logs), tuple(records), commit)


def read_back(directory: Path) -> tuple[Entry, ...] | None:
    """The log as opened, or None for `CorruptedStorage`."""
    try:
        with FileStorage(directory, segment_bytes=SEGMENT_BYTES) as storage:
            return tuple(storage.entries(1, storage.last_index() + 1))
    except CorruptedStorage:
        return None


def damage(path: Path, fault: str, offset: int, mask: int) -> bool:
    """Apply `fault` at `offset`; whether the file changed."""
    data = path.read_bytes()
    if fault == "truncate":
        damaged = data[:offset]
    elif fault == "zero":
        damaged = data[:offset] + bytes(len(data) - offset)
    else:
        damaged = data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]
    path.write_bytes(damaged)
    return damaged != data


def intact_through(written: Written, segment: Path, offset: int) -> int:
    """How many appends lie wholly before `offset` of `segment` (the last segment)."""
    return sum(1 for path, _, end in written.records if path != segment or end <= offset)


FAULTS = st.sampled_from(["truncate", "zero", "flip"])


@settings(max_examples=120)
@given(workloads(), FAULTS, st.data())
def test_a_damaged_segment_is_a_torn_tail_or_corruption(
    workload: tuple[int, list[Append]], fault: str, data: st.DataObject
) -> None:
    commit, appends = workload
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        written = write(directory, commit, appends)
        segments = sorted(directory.glob("log-*.seg"))
        segment = data.draw(st.sampled_from(segments), label="segment")
        offset = data.draw(st.integers(0, segment.stat().st_size - 1), label="offset")
        mask = data.draw(st.integers(1, 255), label="mask")
        changed = damage(segment, fault, offset, mask)

        found = read_back(directory)

    final = written.logs[-1]
    if not changed:
        assert found == final
        return
    if segment != segments[-1]:
        assert found is None, "damage before the last segment must be reported"
        return
    torn = written.logs[intact_through(written, segment, offset)]
    commit_survives = len(torn) >= commit
    last_record_start = written.records[-1][1]
    if fault == "truncate" or (fault == "zero" and offset >= last_record_start):
        assert found == (torn if commit_survives else None)
    elif fault == "zero":
        assert found in (None, torn if commit_survives else None)
    elif offset >= last_record_start:
        assert found in (None, written.logs[-2] if len(written.logs[-2]) >= commit else None)
    else:
        assert found is None, "a flipped byte before the last record must be reported"


@settings(max_examples=60)
@given(
    st.sampled_from(["state", "snapshot"]),
    st.sampled_from(["truncate", "flip"]),
    st.data(),
)
def test_a_damaged_state_or_snapshot_file_is_corruption(
    name: str, fault: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with FileStorage(directory) as storage:
            storage.append(Append(2, 1, 6).entries())
            storage.set_hard_state(HardState(2, 3, 5))
            membership = Membership((1, 2, 3), (1, 2), (4,))
            storage.create_snapshot(SnapshotMetadata(4, 2, membership), b"image" * 5)
        path = next(directory.glob(f"{name}*"))
        offset = data.draw(st.integers(0, path.stat().st_size - 1), label="offset")
        damage(path, fault, offset, data.draw(st.integers(1, 255), label="mask"))

        try:
            FileStorage(directory).close()
        except CorruptedStorage as error:
            assert error.path == path
        else:
            raise AssertionError(f"{fault} of {name} at {offset} went unnoticed")
