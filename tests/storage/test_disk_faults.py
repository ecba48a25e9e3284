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

from raft import Entry, HardState, SnapshotMetadata
from raft.core._membership import Membership
from raft.storage import CorruptedStorage, FileStorage
from raft.storage._records import commit_record, entries_record

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
    """What a workload left: the log and commit index after each write, and where each
    write's record lies."""

    logs: tuple[tuple[Entry, ...], ...]
    """`logs[k]`: the log after the first k writes."""
    commits: tuple[int, ...]
    """`commits[k]`: the commit index after the first k writes."""
    records: tuple[tuple[Path, int, int], ...]
    """(segment, start, end) of each write's record."""


@st.composite
def workloads(draw: st.DrawFn) -> tuple[int, list[Append], int | None]:
    """A first append, a commit index inside it, then appends that may replace anything
    above the commit index (as Raft's truncation does), and maybe a final commit index
    that moved alone (a COMMIT record)."""
    base = draw(st.integers(1, 8))
    commit = draw(st.integers(0, base))
    appends = [Append(1, 1, base)]
    term, last = 1, base
    for _ in range(draw(st.integers(1, 6))):
        first = draw(st.integers(commit + 1, last + 1))
        term += draw(st.integers(0, 1))
        appends.append(Append(term, first, draw(st.integers(1, 5))))
        last = appends[-1].first + appends[-1].count - 1
    final_commit = draw(st.none() | st.integers(commit + 1, last + 1))
    return commit, appends, None if final_commit is None or final_commit > last else final_commit


def write(
    directory: Path, commit: int, appends: Sequence[Append], final_commit: int | None
) -> Written:
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
        if final_commit is not None:
            storage.set_hard_state(HardState(1, 1, final_commit))
            segment = max(directory.glob("log-*.seg"))
            end = segment.stat().st_size
            records.append((segment, end - len(commit_record(final_commit)), end))
            logs.append(logs[-1])
    commits = [commit] * len(logs)
    if final_commit is not None:
        commits[-1] = final_commit
    return Written(tuple(logs), tuple(commits), tuple(records))


def read_back(directory: Path) -> tuple[tuple[Entry, ...], int] | None:
    """The log and commit index as opened, or None for `CorruptedStorage`."""
    try:
        with FileStorage(directory, segment_bytes=SEGMENT_BYTES) as storage:
            log = tuple(storage.entries(1, storage.last_index() + 1))
            return log, storage.initial_state().commit
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
    workload: tuple[int, list[Append], int | None], fault: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        written = write(directory, *workload)
        segments = sorted(directory.glob("log-*.seg"))
        segment = data.draw(st.sampled_from(segments), label="segment")
        offset = data.draw(st.integers(0, segment.stat().st_size - 1), label="offset")
        mask = data.draw(st.integers(1, 255), label="mask")
        changed = damage(segment, fault, offset, mask)

        found = read_back(directory)

    def after(writes: int) -> tuple[tuple[Entry, ...], int] | None:
        """What opening must give when exactly the first `writes` writes survive: that
        state, or corruption if it lost entries the commit index had made durable."""
        log, commit = written.logs[writes], written.commits[writes]
        return (log, commit) if len(log) >= written.commits[0] else None

    every = len(written.records)
    if not changed:
        assert found == after(every)
    elif segment != segments[-1]:
        assert found is None, "damage before the last segment must be reported"
    elif fault == "truncate" or (fault == "zero" and offset >= written.records[-1][1]):
        assert found == after(intact_through(written, segment, offset))
    elif fault == "zero":
        assert found in (None, after(intact_through(written, segment, offset)))
    elif offset >= written.records[-1][1]:
        assert found in (None, after(every - 1))
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
