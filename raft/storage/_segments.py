"""The log on disk: numbered segment files of framed records, appended to and never edited.

Segment `seq` lives in `log-<seq, 12 digits>.seg`. Its first record, written with its first
append, names `seq` and the final size of segment `seq - 1`, so a segment cut short at a
record boundary, a missing segment or a misplaced file is caught, not read as a shorter log.
Entries are replayed in segment order: a batch that starts at or before the last index
replaces the suffix from there on, which is how Raft's truncation of an uncommitted suffix is
recorded without rewriting anything.
A COMMIT record carries a commit index that moved without the term or vote.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from raft.core import Entry
from raft.storage._errors import CorruptedStorage
from raft.storage._files import append_durably, fsync_directory, read_file, translated
from raft.storage._records import (
    RecordType,
    commit_record,
    entries_record,
    scan,
    segment_header_record,
)

_NAME = re.compile(r"log-(\d{12})\.seg")


def segment_path(directory: Path, seq: int) -> Path:
    """Where segment `seq` lives."""
    return directory / f"log-{seq:012d}.seg"


@attrs.define
class _Segment:
    seq: int
    path: Path
    size: int
    last_index: int = 0
    """The highest index any record in this segment wrote (0: none)."""


class SegmentLog:
    """The segment files of one storage directory: recovery, appends, rollover, deletion.

    Open it with `SegmentLog.open`; appends go to the last ("active") segment with one fsync
    each, and roll over to a new segment once it holds `segment_bytes` or more. Only the
    active segment may be empty (a new one, or one whose only write was torn).
    """

    def __init__(self, directory: Path, segments: list[_Segment], segment_bytes: int) -> None:
        self._directory = directory
        self._segments = segments
        self._segment_bytes = segment_bytes
        path = segments[-1].path
        with translated(path, "open"):
            self._fd = os.open(path, os.O_WRONLY)

    @classmethod
    def open(
        cls,
        directory: Path,
        first_seq: int,
        start: Entry,
        committed: int,
        segment_bytes: int,
        *,
        create: bool,
    ) -> tuple[SegmentLog, list[Entry], int]:
        """Recover the log from segment `first_seq` on: the log object, the entries after
        `start` (the entry just before the log: a snapshot's index and term, or zeros), and
        the commit index: `committed` (the state file's) or a later one the log recorded.

        Segments numbered below `first_seq` are leftovers of an interrupted compaction and are
        deleted. A torn tail of the last segment is cut away, unless the log would then end
        before `committed` (entries known durable: that is damage, not a torn write); any
        other damage raises `CorruptedStorage`. With `create`, an empty directory gets its
        first segment.
        """
        found = sorted(
            int(match.group(1))
            for name in os.listdir(directory)
            if (match := _NAME.fullmatch(name)) is not None
        )
        leftovers = [seq for seq in found if seq < first_seq]
        for seq in leftovers:
            segment_path(directory, seq).unlink()
        if leftovers:
            fsync_directory(directory)
        seqs = [seq for seq in found if seq >= first_seq]
        if not seqs:
            if not create:
                path = segment_path(directory, first_seq)
                raise CorruptedStorage(path, 0, "log segment is missing")
            os.close(_create_empty(directory, first_seq))
            seqs = [first_seq]
        if seqs != list(range(first_seq, first_seq + len(seqs))):
            missing = sorted(set(range(first_seq, seqs[-1])) - set(seqs))[0]
            raise CorruptedStorage(segment_path(directory, missing), 0, "log segment is missing")
        segments = [_Segment(seq, segment_path(directory, seq), 0) for seq in seqs]
        log, torn, logged_commit = _replay(segments, start)
        committed = max(committed, logged_commit)
        active = segments[-1]
        if start.index + len(log) < committed:
            raise CorruptedStorage(
                active.path,
                active.size,
                f"the log ends at {start.index + len(log)} but entries up to the commit index "
                f"{committed} were made durable: a torn write cannot explain it",
            )
        if torn is not None:
            _cut(active.path, torn)
        return cls(directory, segments, segment_bytes), log, committed

    def close(self) -> None:
        """Close the active segment's file."""
        os.close(self._fd)

    def append(self, entries: Sequence[Entry], commit: int | None = None) -> None:
        """Write `entries` (consecutive; maybe none) and a new `commit` index (if given) in
        one write, and fsync it once."""
        if self._segments[-1].size >= self._segment_bytes:
            self.roll()
        active = self._segments[-1]
        records = b""
        if active.size == 0:
            previous = self._segments[-2].size if len(self._segments) > 1 else 0
            records = segment_header_record(active.seq, previous)
        if entries:
            records += entries_record(entries)
        if commit is not None:
            records += commit_record(commit)
        append_durably(self._fd, records, active.size, active.path)
        active.size += len(records)
        if entries:
            active.last_index = max(active.last_index, entries[-1].index)

    def roll(self) -> int:
        """Make the active segment a new, empty one (durably) and return its number; an
        active segment that is still empty is kept as it is."""
        active = self._segments[-1]
        if active.size == 0:
            return active.seq
        seq = active.seq + 1
        fd = _create_empty(self._directory, seq)
        os.close(self._fd)
        self._fd = fd
        self._segments.append(_Segment(seq, segment_path(self._directory, seq), 0))
        return seq

    def first_seq_after_dropping(self, index: int) -> int:
        """The oldest segment to keep once entries up to `index` are no longer needed:
        segments before it (never the active one) wrote nothing above `index`."""
        kept = 0
        while kept < len(self._segments) - 1 and self._segments[kept].last_index <= index:
            kept += 1
        return self._segments[kept].seq

    def remove_before(self, seq: int) -> None:
        """Delete the segments numbered below `seq` (the caller recorded `seq` durably)."""
        doomed = [segment for segment in self._segments if segment.seq < seq]
        if not doomed:
            return
        self._segments = [segment for segment in self._segments if segment.seq >= seq]
        for segment in doomed:
            with translated(segment.path, "remove"):
                segment.path.unlink()
        fsync_directory(self._directory)


def _create_empty(directory: Path, seq: int) -> int:
    """Create segment `seq`, empty, and make its name durable; returns a descriptor open for
    writing. On failure no file is left behind."""
    path = segment_path(directory, seq)
    with translated(path, "create"):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fsync_directory(directory)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def _replay(segments: list[_Segment], start: Entry) -> tuple[list[Entry], int | None, int]:
    """The entries after `start` that the segments' records leave, in order; the offset
    where the last segment's torn tail begins (None: no tear); the highest commit index
    recorded (0: none). Fills in each segment's size (up to any tear) and last index."""
    log: list[Entry] = []
    torn = None
    commit = 0
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        found = scan(read_file(segment.path), segment.path, last=last)
        segment.size = found.end
        if found.end < found.size:
            torn = found.end
        if not found.records:
            if not last:
                raise CorruptedStorage(segment.path, 0, "segment holds no records")
            continue
        _check_header(found.records[0], segment, segments[position - 1] if position else None)
        for offset, record in found.records[1:]:
            if _is_commit(record):
                commit = max(commit, record[1])
                continue
            segment.last_index = max(
                segment.last_index, _apply(log, start, record, segment.path, offset)
            )
    return log, torn, commit


def _is_commit(record: Any) -> bool:
    return (
        isinstance(record, tuple)
        and len(record) == 2
        and record[0] == RecordType.COMMIT.value
        and isinstance(record[1], int)
        and not isinstance(record[1], bool)
        and record[1] >= 0
    )


def _check_header(record: tuple[int, Any], segment: _Segment, previous: _Segment | None) -> None:
    offset, payload = record
    expected = (RecordType.SEGMENT_HEADER.value, segment.seq)
    if not isinstance(payload, tuple) or len(payload) != 3 or payload[:2] != expected:
        raise CorruptedStorage(segment.path, offset, f"not the header of segment {segment.seq}")
    if previous is not None and payload[2] != previous.size:
        raise CorruptedStorage(
            previous.path,
            previous.size,
            f"segment ends at byte {previous.size} but the next one says it ended at {payload[2]}",
        )


def _apply(log: list[Entry], start: Entry, record: Any, path: Path, offset: int) -> int:
    """Apply one ENTRIES record to `log` (the entries after `start`); returns the record's
    last index."""
    try:
        kind, first, batch = record
        if kind != RecordType.ENTRIES.value or _int(first) < 1 or not batch:
            raise ValueError("not an entries record")
        entries = [
            Entry(_int(term), index, _bytes(data), _int(entry_kind))
            for index, (term, entry_kind, data) in enumerate(batch, first)
        ]
    except (TypeError, ValueError) as error:
        raise CorruptedStorage(path, offset, f"malformed record: {error}") from error
    last = start.index + len(log)
    if first > last + 1:
        raise CorruptedStorage(path, offset, f"entries start at {first}, after last index {last}")
    del log[max(first - start.index - 1, 0) :]
    log.extend(entries[max(start.index + 1 - first, 0) :])
    return entries[-1].index


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError(f"expected bytes, got {type(value).__name__}")
    return value


def _cut(path: Path, size: int) -> None:
    """Cut a torn tail off `path` at `size`, durably."""
    with translated(path, "truncate the torn tail of"):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
