"""A seeded, discrete-event network: latency, loss, duplication, reordering and partitions.

Links are directed: a partition blocks (sender, recipient) pairs, which also expresses one-way
partitions. All randomness comes from the `random.Random` given, so a seed fixes every fate.
"""

from __future__ import annotations

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
    """Decides the fate of each message: lost, delivered once or twice, and after what delay.

    The cluster's event loop does the delivering; a partition is checked at delivery time, so
    messages already in flight when a partition starts are lost too.
    """

    def __init__(self, rng: random.Random, faults: LinkFaults | None = None) -> None:
        self._rng = rng
        self.faults = faults or LinkFaults()
        self._blocked: set[tuple[int, int]] = set()
        self.sent = 0
        self.dropped = 0

    def send(self, message: Message) -> list[int]:
        """Put a message on the wire: the latencies (ns) of its copies, none if it was lost."""
        self.sent += 1
        faults = self.faults
        rng = self._rng
        if faults.loss and rng.random() < faults.loss:
            self.dropped += 1
            return []
        low = faults.min_latency_ns
        spread = faults.max_latency_ns - low + 1
        random = rng.random
        if faults.duplicate and random() < faults.duplicate:
            return [low + int(random() * spread), low + int(random() * spread)]
        return [low + int(random() * spread)]

    def partition(self, *groups: Iterable[int]) -> None:
        """Split the nodes into groups that cannot reach each other (both ways); links within
        a group, and to nodes in no group, stay up."""
        members = [sorted(group) for group in groups]
        self._blocked = {
            (a, b)
            for i, group in enumerate(members)
            for j, other in enumerate(members)
            if i != j
            for a in group
            for b in other
        }

    def cut(self, links: Iterable[tuple[int, int]]) -> None:
        """Cut exactly these one-way (sender, recipient) links; every other link is up."""
        self._blocked = set(links)

    def blocked_links(self) -> list[tuple[int, int]]:
        """The cut one-way links, sorted."""
        return sorted(self._blocked)

    def block(self, sender: int, recipient: int) -> None:
        """Cut the one-way link from `sender` to `recipient`."""
        self._blocked.add((sender, recipient))

    def heal(self) -> None:
        """Reconnect every link."""
        self._blocked = set()

    def is_blocked(self, sender: int, recipient: int) -> bool:
        """Whether the link from `sender` to `recipient` is cut."""
        return (sender, recipient) in self._blocked
