"""The window of unacknowledged AppendEntries to one follower (pipelining, as etcd's inflights)."""

from __future__ import annotations

from collections import deque


class Inflights:
    """Last indexes of the AppendEntries in flight to one follower, oldest first.

    The leader stops sending to a follower whose window is full, so a slow follower costs
    bounded memory, and frees slots as acknowledgements arrive.
    """

    __slots__ = ("_capacity", "_last_indexes")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._last_indexes: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._last_indexes)

    def full(self) -> bool:
        """Whether no more messages may be sent until one is acknowledged."""
        return len(self._last_indexes) >= self._capacity

    def add(self, last_index: int) -> None:
        """Record a message whose last entry is `last_index` (indexes only grow)."""
        self._last_indexes.append(last_index)

    def free_up_to(self, index: int) -> None:
        """Forget every message whose entries are all at or below `index` (acknowledged)."""
        last_indexes = self._last_indexes
        while last_indexes and last_indexes[0] <= index:
            last_indexes.popleft()

    def free_first(self) -> None:
        """Forget the oldest message, presumed lost, so a stalled window probes again."""
        if self._last_indexes:
            self._last_indexes.popleft()

    def clear(self) -> None:
        """Forget everything in flight."""
        self._last_indexes.clear()
