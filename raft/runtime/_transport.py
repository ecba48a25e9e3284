"""What a Raft server needs from a network: `Transport`, and the `TransportCounters` it keeps."""

from __future__ import annotations

from typing import Protocol

import attrs
import trio

from raft.core import Message


@attrs.define
class TransportCounters:
    """Running totals a transport keeps, for status pages and tests. Only ever increase."""

    sent: int = 0
    """Messages handed to a peer (written to its connection, or delivered in memory)."""
    received: int = 0
    """Messages from peers handed to this node's `incoming` channel."""
    dropped: int = 0
    """Messages discarded: a full queue, an unknown or unreachable peer, a lost write, a closed
    transport, a message too large for a frame. Raft's retries cover every one of them."""
    bad_frames: int = 0
    """Connections closed because a peer sent a malformed, oversized or mismatched frame."""
    auth_failures: int = 0
    """Connections closed because the handshake failed (wrong secret, cluster or node id)."""
    connections: int = 0
    """Authenticated connections opened, incoming and outgoing."""

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (a copy)."""
        return attrs.asdict(self)


class Transport(Protocol):
    """Moves Raft messages between nodes. Delivery is best effort: a message may be lost,
    duplicated or reordered across reconnects, as Raft allows; it is never altered.

    `send` never blocks: each peer has a bounded queue, and when a peer is slow or gone its
    queue fills and further messages are dropped and counted (Raft resends what matters).
    """

    @property
    def node_id(self) -> int:
        """The id of the node this transport speaks for."""
        ...

    @property
    def counters(self) -> TransportCounters:
        """This transport's running totals."""
        ...

    @property
    def incoming(self) -> trio.MemoryReceiveChannel[Message]:
        """Messages from peers addressed to this node, in arrival order per connection."""
        ...

    def send(self, message: Message) -> None:
        """Queue `message` for `message.recipient` and return at once."""
        ...

    async def aclose(self) -> None:
        """Stop sending and receiving; later sends are dropped and counted."""
        ...
