"""A seeded, discrete-event network: latency, loss, duplication, reordering and partitions.

Messages are delivered in order of their delivery time, ties broken by the order they were sent,
so a run depends on nothing but the seed. Links are directed: a partition blocks (sender,
recipient) pairs, which also expresses one-way partitions.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable

import attrs

from raft import Message


@attrs.frozen
class LinkFaults:
    """Per-message fault rates and the latency range (nanoseconds, uniform)."""

    min_latency_ns: int = 1_000_000
    max_latency_ns: int = 5_000_000
    loss: float = 0.0
    duplicate: float = 0.0


class Network:
    """Messages in flight between simulated nodes."""

    def __init__(self, rng: random.Random, faults: LinkFaults | None = None) -> None:
        self._rng = rng
        self.faults = faults or LinkFaults()
        self._in_flight: list[tuple[int, int, Message]] = []
        self._sequence = 0
        self._blocked: set[tuple[int, int]] = set()
        self.sent = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._in_flight)

    def send(self, message: Message, now: int) -> None:
        """Put a message on the wire at time `now`; it may be lost, duplicated or delayed."""
        self.sent += 1
        faults = self.faults
        rng = self._rng
        if faults.loss and rng.random() < faults.loss:
            self.dropped += 1
            return
        copies = 2 if faults.duplicate and rng.random() < faults.duplicate else 1
        for _ in range(copies):
            latency = rng.randint(faults.min_latency_ns, faults.max_latency_ns)
            self._sequence += 1
            heapq.heappush(self._in_flight, (now + latency, self._sequence, message))

    def next_delivery_time(self) -> int | None:
        """When the next message arrives, or None with nothing in flight."""
        return self._in_flight[0][0] if self._in_flight else None

    def pop(self) -> tuple[int, Message | None]:
        """Take the next message off the wire: its delivery time, and the message or None if
        a partition swallowed it on the way."""
        time, _, message = heapq.heappop(self._in_flight)
        if (message.sender, message.recipient) in self._blocked:
            self.dropped += 1
            return time, None
        return time, message

    def partition(self, *groups: Iterable[int]) -> None:
        """Split the nodes into groups that cannot reach each other (both ways)."""
        members = [sorted(group) for group in groups]
        self._blocked = {
            (a, b)
            for i, group in enumerate(members)
            for j, other in enumerate(members)
            if i != j
            for a in group
            for b in other
        }

    def block(self, sender: int, recipient: int) -> None:
        """Cut the one-way link from `sender` to `recipient`."""
        self._blocked.add((sender, recipient))

    def heal(self) -> None:
        """Reconnect every link."""
        self._blocked = set()

    def is_blocked(self, sender: int, recipient: int) -> bool:
        """Whether the link from `sender` to `recipient` is cut."""
        return (sender, recipient) in self._blocked
