"""The leader's queue of ReadIndex requests waiting for a heartbeat round (thesis §6.4), and
the `ReadState` a confirmed read becomes."""

from __future__ import annotations

from collections import deque

import attrs


@attrs.frozen
class ReadState:
    """A read identified by `context` may be served once the state machine applied `index`."""

    index: int
    context: bytes


class _PendingRead:
    __slots__ = ("acks", "context", "index", "requester")

    def __init__(self, index: int, context: bytes, requester: int, leader: int) -> None:
        self.index = index
        self.context = context
        self.requester = requester
        # The leader counts itself, not the requester: a follower's request says nothing about
        # whom it follows after the index was taken, and counting it instead left a read
        # forwarded by one of a bare majority waiting forever for a second follower.
        self.acks = {leader}


class ReadOnly:
    """The leader's ReadIndex requests awaiting a heartbeat round, oldest first."""

    __slots__ = ("_order", "_pending")

    def __init__(self) -> None:
        self._pending: dict[bytes, _PendingRead] = {}
        self._order: deque[bytes] = deque()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, index: int, context: bytes, requester: int, leader: int) -> bool:
        """Queue `requester`'s read at `leader`; False if one with this context is waiting."""
        if context in self._pending:
            return False
        self._pending[context] = _PendingRead(index, context, requester, leader)
        self._order.append(context)
        return True

    def acknowledge(self, context: bytes, sender: int) -> set[int]:
        """Record that `sender` answered the heartbeat carrying `context`; who has so far."""
        pending = self._pending.get(context)
        if pending is None:
            return set()
        pending.acks.add(sender)
        return pending.acks

    def confirm(self, context: bytes) -> list[_PendingRead]:
        """The round for `context` reached a majority: it, and every read queued before it
        (whose round that majority also answered, or will have implied), are confirmed."""
        if context not in self._pending:
            return []
        confirmed = []
        while self._order:
            queued = self._order.popleft()
            confirmed.append(self._pending.pop(queued))
            if queued == context:
                break
        return confirmed

    def newest_context(self) -> bytes:
        """The context of the latest waiting read (b"" if none): heartbeats repeat it, so a lost
        round is retried."""
        return self._order[-1] if self._order else b""

    def clear(self) -> None:
        """Forget every waiting read (leadership was lost; their clients will retry)."""
        self._pending.clear()
        self._order.clear()
