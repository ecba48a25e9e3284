"""The node's view of its log: stable entries in `Storage` plus an unstable tail (§5.3).

New entries (a leader's proposals, a follower's appends) go to the unstable tail first; a
`Ready` hands them to the caller to persist, and `advance` marks them stable. Reads look in the
tail first, then in storage, so the core never needs to know how storage keeps its entries.

A snapshot installed from the leader (paper §7) replaces the whole log at once: it is held as
`pending_snapshot` and stands in for storage's log until `advance` reports it persisted. Storage
may compact its log (move `first_index()` up to at most `applied + 1`) between any two inputs.

Invariants: `committed <= last_index()`; `applied <= committed`; nothing at or below `committed`
is ever truncated (a follower that would have to is told so loudly: that would break
§5.4's leader completeness), except by installing a snapshot of a later index.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from raft.core._messages import Entry
from raft.core._snapshot import Snapshot
from raft.core._storage import Storage

_data_of = attrgetter("data")


class LogCorrupted(AssertionError):
    """An internal invariant of the log broke; the node must stop (a bug, never input)."""


class RaftLog:
    """Storage's entries, the unstable tail, and the commit and apply positions."""

    __slots__ = (
        "_storage",
        "applied",
        "applying",
        "committed",
        "pending_snapshot",
        "persisting",
        "snapshot_to_persist",
        "unstable",
        "unstable_offset",
    )

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.unstable: list[Entry] = []
        self.unstable_offset = storage.last_index() + 1
        """Index of `unstable[0]`; always `storage.last_index() + 1` once persisted up to it."""
        self.persisting = self.unstable_offset - 1
        """Last unstable index already handed to the caller in a `Ready` to persist."""
        self.committed = storage.initial_state().commit
        self.applied = storage.first_index() - 1
        self.applying = self.applied
        """Last index handed to the caller to apply; `applied` catches up on `advance`."""
        self.pending_snapshot: Snapshot | None = None
        """A snapshot installed from the leader that storage does not hold yet."""
        self.snapshot_to_persist: Snapshot | None = None
        """`pending_snapshot`, until handed to the caller in a `Ready`."""

    def last_index(self) -> int:
        """Index of the last entry, stable or not (with an empty tail, `unstable_offset` is just
        past storage's last entry, so storage need not be asked: this runs on every input)."""
        return self.unstable_offset + len(self.unstable) - 1

    def first_index(self) -> int:
        """Index of the first entry held."""
        pending = self.pending_snapshot
        if pending is not None:
            return pending.metadata.index + 1
        return self._storage.first_index()

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot, installed or stored (what a leader sends a follower)."""
        if self.pending_snapshot is not None:
            return self.pending_snapshot
        return self._storage.snapshot()

    def term(self, index: int) -> int:
        """Term of the entry at `index`; 0 beyond the end or before the log."""
        offset = self.unstable_offset
        if index >= offset:
            position = index - offset
            if position < len(self.unstable):
                return self.unstable[position].term
            return 0
        pending = self.pending_snapshot
        if pending is not None:
            return pending.metadata.term if index == pending.metadata.index else 0
        if index < self._storage.first_index() - 1:
            return 0
        return self._storage.term(index)

    def last_term(self) -> int:
        """Term of the last entry (0 for an empty log)."""
        return self.term(self.last_index())

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (`last_index`, `last_term`) is at least as up-to-date as this
        one: a later last term wins, equal terms compare length (§5.4.1)."""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    def matches(self, index: int, term: int) -> bool:
        """Whether this log holds an entry at `index` with `term` (index 0 always matches)."""
        return index <= self.last_index() and self.term(index) == term

    def slice(self, low: int, high: int) -> list[Entry]:
        """Entries with `low <= index < high`."""
        offset = self.unstable_offset
        if low >= offset:
            return self.unstable[low - offset : high - offset]
        if high <= offset:
            return list(self._storage.entries(low, high))
        return list(self._storage.entries(low, offset)) + self.unstable[: high - offset]

    def entries_for_message(self, low: int, max_count: int, max_bytes: int) -> list[Entry]:
        """Entries from `low` on, at most `max_count` of them and `max_bytes` of data, but
        always at least one if any exist (a single command never exceeds `max_bytes`)."""
        high = min(self.last_index() + 1, low + max_count)
        if high <= low:
            return []
        entries = self.slice(low, high)
        if sum(map(len, map(_data_of, entries))) <= max_bytes:
            return entries
        size = 0
        for position, entry in enumerate(entries):
            size += len(entry.data)
            if size > max_bytes and position > 0:
                return entries[:position]
        return entries

    def append(self, entries: Sequence[Entry]) -> None:
        """Append `entries` to the tail, replacing whatever the log held from their first
        index on. Callers guarantee the first index is above `committed`."""
        first = entries[0].index
        if first <= self.committed:
            raise LogCorrupted(
                f"refusing to overwrite committed entry {first} (commit index {self.committed})"
            )
        if first > self.last_index() + 1:
            raise LogCorrupted(f"gap: appending at {first} after last index {self.last_index()}")
        offset = self.unstable_offset
        if first == offset + len(self.unstable):
            self.unstable.extend(entries)
        elif first >= offset:
            del self.unstable[first - offset :]
            self.unstable.extend(entries)
            self.persisting = min(self.persisting, first - 1)
        else:
            # The conflict lies in storage: the new tail starts there, and the caller's
            # storage drops its own entries from `first` on when it persists this tail.
            self.unstable = list(entries)
            self.unstable_offset = first
            self.persisting = first - 1

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Position in `entries` of the first one this log lacks or holds with another term
        (len(entries) when all are already here)."""
        last = self.last_index()
        for position, entry in enumerate(entries):
            if entry.index > last or self.term(entry.index) != entry.term:
                return position
        return len(entries)

    def first_index_of_term_at(self, index: int) -> int:
        """The first index of the run of entries sharing the term at `index`, going no lower
        than `committed + 1` (entries up to the commit are known to agree with any leader)."""
        term = self.term(index)
        floor = max(self.committed + 1, self.first_index())
        while index > floor and self.term(index - 1) == term:
            index -= 1
        return index

    def commit_to(self, index: int) -> bool:
        """Raise the commit index to `index` (never lowers it); True if it moved."""
        if index <= self.committed:
            return False
        if index > self.last_index():
            raise LogCorrupted(f"commit index {index} beyond the last entry {self.last_index()}")
        self.committed = index
        return True

    def unpersisted(self) -> list[Entry]:
        """Entries not yet handed out to persist; marks them as handed out."""
        start = self.persisting + 1 - self.unstable_offset
        if start >= len(self.unstable):
            return []
        entries = self.unstable[start:] if start else list(self.unstable)
        self.persisting = entries[-1].index
        return entries

    def persisted(self, index: int, term: int) -> None:
        """The caller made entries up to (`index`, `term`) durable; drop them from the tail.

        Ignored when the tail has since been rewritten at that index (a newer leader's
        entries replaced what was being persisted).
        """
        position = index - self.unstable_offset
        if 0 <= position < len(self.unstable) and self.unstable[position].term == term:
            del self.unstable[: position + 1]
            self.unstable_offset = index + 1

    def unapplied(self) -> list[Entry]:
        """Committed entries not yet handed out to apply; marks them as handed out."""
        if self.committed <= self.applying:
            return []
        entries = self.slice(self.applying + 1, self.committed + 1)
        self.applying = self.committed
        return entries

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log with `snapshot` (paper §7: discard the entire log), committed
        and handed out to apply with the next `Ready`. Callers guarantee its index is above
        `committed`: an older snapshot would roll back committed state."""
        index = snapshot.metadata.index
        self.pending_snapshot = self.snapshot_to_persist = snapshot
        self.unstable = []
        self.unstable_offset = index + 1
        self.persisting = index
        self.committed = index
        self.applying = index

    def take_snapshot_to_persist(self) -> Snapshot | None:
        """The installed snapshot not yet handed out, if any; marks it handed out."""
        snapshot = self.snapshot_to_persist
        self.snapshot_to_persist = None
        return snapshot

    def snapshot_persisted(self, snapshot: Snapshot) -> None:
        """The caller persisted `snapshot` and restored the state machine from it."""
        if self.pending_snapshot is snapshot:
            self.pending_snapshot = None
        self.applied = snapshot.metadata.index

    def applied_to(self, index: int) -> None:
        """The caller applied everything up to `index`."""
        self.applied = max(self.applied, index)
