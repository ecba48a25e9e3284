"""An in-memory `Transport` for tests: a hub that delivers at once, deterministically."""

from __future__ import annotations

import random

import trio

from raft.core import Message
from raft.runtime._codec import decode_message, encode_message
from raft.runtime._transport import TransportCounters


class MemoryHub:
    """Connects in-memory transports of one process, for tests and MockClock runs.

    `send` delivers synchronously into the recipient's bounded `incoming` channel: no tasks, no
    time passes, so a run is as deterministic as the code that drives it. A message is lost
    with probability `loss` (drawn from `rng`), or when its link is cut or the recipient's
    channel is full. With `round_trip`, every message is encoded and decoded on the way, so a
    test also proves it would cross a real wire.
    """

    def __init__(
        self,
        *,
        loss: float = 0.0,
        rng: random.Random | None = None,
        queue_size: int = 1024,
        round_trip: bool = False,
    ) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"MemoryHub.loss must be in [0, 1], got {loss!r}")
        if loss and rng is None:
            raise ValueError("MemoryHub needs an rng to draw losses from")
        if queue_size < 1:
            raise ValueError(f"MemoryHub.queue_size must be >= 1, got {queue_size}")
        self._loss = loss
        self._rng = rng
        self._queue_size = queue_size
        self._round_trip = round_trip
        self._transports: dict[int, MemoryTransport] = {}
        self._cut: set[tuple[int, int]] = set()

    def connect(self, node_id: int) -> MemoryTransport:
        """A new transport for `node_id`, replacing (and closing) any earlier one."""
        old = self._transports.get(node_id)
        if old is not None:
            old.close()
        transport = MemoryTransport(self, node_id, self._queue_size)
        self._transports[node_id] = transport
        return transport

    def set_link(self, sender: int, recipient: int, *, up: bool) -> None:
        """Cut (`up=False`) or restore the one-way link from `sender` to `recipient`."""
        if up:
            self._cut.discard((sender, recipient))
        else:
            self._cut.add((sender, recipient))

    def _deliver(self, source: MemoryTransport, message: Message) -> None:
        target = self._transports.get(message.recipient)
        lost = self._rng is not None and self._loss > 0 and self._rng.random() < self._loss
        if (
            lost
            or target is None
            or target.closed
            or (source.node_id, message.recipient) in self._cut
        ):
            source.counters.dropped += 1
            return
        if self._round_trip:
            message = decode_message(encode_message(message))
        if target.offer(message):
            source.counters.sent += 1
        else:
            source.counters.dropped += 1


class MemoryTransport:
    """One node's end of a `MemoryHub`; see `Transport` for the contract."""

    def __init__(self, hub: MemoryHub, node_id: int, queue_size: int) -> None:
        self._hub = hub
        self._node_id = node_id
        self._counters = TransportCounters()
        self._send_channel, self._incoming = trio.open_memory_channel[Message](queue_size)
        self.closed = False

    @property
    def node_id(self) -> int:
        """The id of the node this transport speaks for."""
        return self._node_id

    @property
    def counters(self) -> TransportCounters:
        """This transport's running totals."""
        return self._counters

    @property
    def incoming(self) -> trio.MemoryReceiveChannel[Message]:
        """Messages from peers addressed to this node."""
        return self._incoming

    def send(self, message: Message) -> None:
        """Deliver `message` to its recipient now, or drop and count it."""
        if self.closed:
            self._counters.dropped += 1
            return
        self._hub._deliver(self, message)

    def offer(self, message: Message) -> bool:
        """Put a message from a peer into `incoming`; False when it is full or closed."""
        try:
            self._send_channel.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        self._counters.received += 1
        return True

    def close(self) -> None:
        """Synchronous `aclose`: the hub drops what is sent to or from this transport."""
        self.closed = True
        self._send_channel.close()

    async def aclose(self) -> None:
        """Stop sending and receiving; later sends are dropped and counted."""
        self.close()
