"""`MemoryStorage`: a `Storage` kept in memory, for tests and the simulator.

Nothing here survives a process crash; the simulator models a crash by keeping the
`MemoryStorage` object (what was "persisted") and discarding the node.
"""

from __future__ import annotations

from collections.abc import Sequence

from raft.core import Entry, HardState


class MemoryStorage:
    """A node's durable state held in a list. The caller writes a `Ready`'s hard state and
    entries here (`set_hard_state`, `append`) before calling `advance`.

    Invariant: `_entries[0]` is a placeholder for index `_offset` (0 until compaction), so
    `term(first_index() - 1)` always has an answer.
    """

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._offset = 0
        self._entries: list[Entry] = [Entry(0, 0, b"")]

    def __repr__(self) -> str:
        return f"MemoryStorage(hard_state={self._hard_state}, last_index={self.last_index()})"

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
