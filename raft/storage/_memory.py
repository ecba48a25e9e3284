"""`MemoryStorage`: a `Storage` kept in memory, for tests and the simulator.

Nothing here survives a process crash; the simulator models a crash by keeping the
`MemoryStorage` object (what was "persisted") and discarding the node.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from raft.core import Entry, HardState, Snapshot, SnapshotMetadata


class MemoryStorage:
    """A node's durable state held in a list. The caller writes a `Ready`'s snapshot, hard state
    and entries here (`apply_snapshot`, `set_hard_state`, `append`) before calling `advance`,
    and compacts the log with `create_snapshot` when `RaftNode.snapshot_due()` says so.

    Invariant: `_entries[0]` is a placeholder for index `_offset`, the last index the latest
    snapshot covers (0 and term 0 without one), so `term(first_index() - 1)` always has an
    answer.
    """

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._offset = 0
        self._entries: list[Entry] = [Entry(0, 0, b"")]
        self._snapshot: Snapshot | None = None

    def __repr__(self) -> str:
        return (
            f"MemoryStorage(hard_state={self._hard_state}, first_index={self.first_index()}, "
            f"last_index={self.last_index()})"
        )

    def initial_state(self) -> HardState:
        """The hard state last persisted."""
        return self._hard_state

    def set_hard_state(self, hard_state: HardState) -> None:
        """Persist the hard state."""
        self._hard_state = hard_state

    def entries(self, low: int, high: int) -> Sequence[Entry]:
        """Entries with `low <= index < high`."""
        if low <= self._offset or high > self.last_index() + 1 or low > high:
            raise IndexError(
                f"entries [{low}, {high}) outside the log "
                f"({self.first_index()}..{self.last_index()})"
            )
        return self._entries[low - self._offset : high - self._offset]

    def term(self, index: int) -> int:
        """The term of the entry at `index`."""
        position = index - self._offset
        if position < 0 or position >= len(self._entries):
            raise IndexError(
                f"term of {index} outside the log ({self.first_index() - 1}..{self.last_index()})"
            )
        return self._entries[position].term

    def first_index(self) -> int:
        """The index of the first entry held."""
        return self._offset + 1

    def last_index(self) -> int:
        """The index of the last entry held."""
        return self._offset + len(self._entries) - 1

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot, None if none was taken or installed."""
        return self._snapshot

    def append(self, entries: Sequence[Entry]) -> None:
        """Persist `entries`, replacing any held from the first one's index on (a new leader
        overwrote an uncommitted suffix)."""
        if not entries:
            return
        first = entries[0].index
        if first > self.last_index() + 1:
            raise ValueError(f"gap: appending at {first} after last index {self.last_index()}")
        if first <= self._offset:
            raise ValueError(f"appending at {first}, at or before the log's start {self._offset}")
        del self._entries[first - self._offset :]
        self._entries.extend(entries)

    def create_snapshot(self, metadata: SnapshotMetadata, data: bytes) -> None:
        """Store a snapshot this node took (paper §7) and compact the log: drop the entries up
        to `metadata.index`, keeping the later ones.

        `metadata` comes from `RaftNode.snapshot_metadata()` and `data` from the state machine's
        `snapshot()` at that same applied index. ValueError if the index is not above the
        current snapshot's, not a committed entry held here, or its term differs.
        """
        index = metadata.index
        if not isinstance(data, bytes):
            raise TypeError(f"snapshot data must be bytes, got {type(data).__name__}")
        if index <= self._offset:
            raise ValueError(
                f"snapshot at {index} is not newer than the current one at {self._offset}"
            )
        if index > self.last_index() or index > self._hard_state.commit:
            raise ValueError(
                f"snapshot at {index} beyond the last committed entry held "
                f"(last {self.last_index()}, commit {self._hard_state.commit})"
            )
        if self.term(index) != metadata.term:
            raise ValueError(
                f"snapshot at {index} has term {metadata.term}, the entry there {self.term(index)}"
            )
        del self._entries[: index - self._offset]
        self._entries[0] = Entry(metadata.term, index, b"")
        self._offset = index
        self._snapshot = Snapshot(metadata, data)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Persist a snapshot installed from the leader (`Ready.snapshot`): it replaces the
        whole log, and the commit index rises to its index if it was below (paper §7)."""
        index = snapshot.metadata.index
        if index <= self._offset:
            raise ValueError(
                f"installed snapshot at {index} is not newer than the current one at {self._offset}"
            )
        self._entries = [Entry(snapshot.metadata.term, index, b"")]
        self._offset = index
        self._snapshot = snapshot
        if self._hard_state.commit < index:
            self._hard_state = attrs.evolve(self._hard_state, commit=index)
