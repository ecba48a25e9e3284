"""The TCP transport on trio: authenticated connections, bounded queues, reconnects.

Each node dials every peer and uses that connection only to send; it reads only from the
connections its peers dialed. Each ordered pair of nodes thus has exactly one stream, and no two
nodes ever race to decide which of two crossing connections survives.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Mapping
from contextlib import AsyncExitStack, suppress
from types import TracebackType
from typing import Final

import attrs
import trio

from raft.core import Message
from raft.runtime._auth import (
    AuthenticationError,
    check_secret,
    client_handshake,
    server_handshake,
)
from raft.runtime._codec import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameError,
    check_cluster_id,
    decode_message,
    encode_message,
)
from raft.runtime._codec import frame as frame_body
from raft.runtime._framed import FramedStream
from raft.runtime._send_queue import SendQueue
from raft.runtime._transport import TransportCounters

MAX_BATCH: Final = 256
"""The most queued messages written to a peer in one `send_all`."""
MAX_BATCH_BYTES: Final = 1 << 20
"""The most bytes written to a peer in one `send_all` (unless one frame alone is larger)."""

_CONNECTION_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@attrs.frozen
class TlsConfig:
    """TLS for every connection: `server_context` wraps the connections peers dial in,
    `client_context` the ones this node dials. For mutual TLS, make the server context require
    client certificates (`verify_mode = ssl.CERT_REQUIRED`). Peers are checked against the host
    name in their address."""

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


@attrs.frozen
class Backoff:
    """Reconnect delays: full `maximum` after enough failures, each delay drawn uniformly
    from its upper half so that nodes restarted together do not redial in lockstep."""

    initial: float = 0.05
    maximum: float = 2.0

    def __attrs_post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"Backoff needs 0 < initial <= maximum, got {self}")

    def delay(self, failures: int, rng: random.Random) -> float:
        """The pause before redialing after `failures` failures in a row (>= 1)."""
        ceiling = min(self.maximum, self.initial * 2 ** min(failures - 1, 32))
        return rng.uniform(ceiling / 2, ceiling)


class _Peer:
    """One peer's address, its bounded queue of messages waiting to be written, and the scope
    of the task that keeps it connected."""

    def __init__(self, address: tuple[str, int], queue: SendQueue) -> None:
        self.address = address
        self.queue = queue
        self.cancel_scope = trio.CancelScope()


class TcpTransport:
    """A `Transport` over TCP (optionally TLS) for one node; `async with` it to run it.

    It listens on (`host`, `port`) and keeps a connection to each of `peers` (id -> (host,
    port)). Peers authenticate with `secret` (the HMAC handshake) and/or mutual TLS (`tls`);
    `rng` draws the reconnect jitter. `queue_size` (messages) and `queue_bytes` bound each
    peer's send queue, `incoming_size` the messages received but not yet taken from `incoming`
    (beyond it readers wait, and TCP pushes back on the peers). A connection must finish its
    handshake within `handshake_timeout` seconds, and at most `max_handshakes` may be under way
    at once (more are closed at once): strangers cannot hold more than that.

    Every connection starts with the handshake in `raft.runtime._auth`. A peer that sends a
    malformed, oversized or mismatched frame (its sender must be the authenticated peer, its
    recipient this node) has its connection closed and counted; nothing a peer sends stops the
    transport.
    """

    def __init__(
        self,
        *,
        node_id: int,
        cluster_id: str,
        peers: Mapping[int, tuple[str, int]],
        rng: random.Random,
        secret: bytes | None = None,
        tls: TlsConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        queue_size: int = 1024,
        queue_bytes: int = 64 * 1024 * 1024,
        incoming_size: int = 1024,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        backoff: Backoff = Backoff(),  # frozen, so sharing the default is safe
        handshake_timeout: float = 5.0,
        max_handshakes: int = 64,
    ) -> None:
        if type(node_id) is not int or node_id < 1:
            raise ValueError(f"node_id must be an integer >= 1, got {node_id!r}")
        if secret is not None:
            check_secret(secret)
        elif tls is None or tls.server_context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError(
                "peers must authenticate: give a shared secret, or TLS whose server context "
                "requires client certificates (mutual TLS)"
            )
        check_cluster_id(cluster_id)
        for name, value in (
            ("queue_size", queue_size),
            ("incoming_size", incoming_size),
            ("max_frame_size", max_frame_size),
            ("max_handshakes", max_handshakes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if queue_bytes < max_frame_size:
            raise ValueError(f"queue_bytes ({queue_bytes}) must hold a frame of max_frame_size")
        self._node_id = node_id
        self._cluster_id = cluster_id
        self._secret = secret
        self._tls = tls
        self._host = host
        self._port = port
        self._rng = rng
        self._max_frame_size = max_frame_size
        self._backoff = backoff
        self._handshake_timeout = handshake_timeout
        self._max_handshakes = max_handshakes
        self._handshaking = 0
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._nursery: trio.Nursery | None = None
        self._peers: dict[int, _Peer] = {}
        for peer_id, address in peers.items():
            self.add_peer(peer_id, address)
        self._counters = TransportCounters()
        self._incoming_in, self._incoming = trio.open_memory_channel[Message](incoming_size)
        self._cancel_scope = trio.CancelScope()
        self._exit_stack = AsyncExitStack()
        self._closed = False

    async def __aenter__(self) -> TcpTransport:
        async with AsyncExitStack() as stack:
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(self._run)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return await self._exit_stack.__aexit__(exc_type, exc_value, traceback)

    @property
    def node_id(self) -> int:
        """The id of the node this transport speaks for."""
        return self._node_id

    @property
    def port(self) -> int:
        """The port this transport listens on (the kernel's choice when asked for port 0)."""
        return self._port

    @property
    def counters(self) -> TransportCounters:
        """This transport's running totals."""
        return self._counters

    @property
    def incoming(self) -> trio.MemoryReceiveChannel[Message]:
        """Messages from authenticated peers addressed to this node."""
        return self._incoming

    def send(self, message: Message) -> None:
        """Encode `message` and queue it for its recipient; when the queue is full the oldest
        messages in it are dropped and counted (the newest state is what a lagging peer needs)."""
        peer = self._peers.get(message.recipient)
        if peer is None or self._closed:
            self._counters.dropped += 1
            return
        try:
            data = frame_body(encode_message(message), self._max_frame_size)
        except FrameError:  # larger than a frame may be: the core's limits allow no such thing
            self._counters.dropped += 1
            return
        self._counters.dropped += peer.queue.push(data)

    def add_peer(self, peer_id: int, address: tuple[str, int]) -> None:
        """Start sending to `peer_id` at `address` (host, port), replacing any earlier address."""
        if type(peer_id) is not int or peer_id < 1 or peer_id == self._node_id:
            raise ValueError(f"a peer id must be an integer >= 1 other than {self._node_id}")
        self.remove_peer(peer_id)
        queue = SendQueue(self._queue_size, self._queue_bytes)
        peer = self._peers[peer_id] = _Peer(address, queue)
        if self._nursery is not None and not self._closed:
            self._nursery.start_soon(self._keep_connected, peer_id, peer)

    def remove_peer(self, peer_id: int) -> None:
        """Stop sending to `peer_id`: its connection closes and its queued messages are lost."""
        peer = self._peers.pop(peer_id, None)
        if peer is not None:
            peer.cancel_scope.cancel()

    async def aclose(self) -> None:
        """Close every connection and stop; later sends are dropped and counted."""
        self._closed = True
        self._incoming_in.close()
        self._cancel_scope.cancel()

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._cancel_scope:
            listeners = await trio.open_tcp_listeners(self._port, host=self._host)
            self._port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._serve, listeners)
                self._nursery = nursery
                for peer_id, peer in self._peers.items():
                    nursery.start_soon(self._keep_connected, peer_id, peer)
                task_status.started()

    # Incoming connections: handshake, then read frames until the peer misbehaves or leaves.

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            if self._handshaking >= self._max_handshakes:
                raise AuthenticationError("too many connections are in their handshake")
            self._handshaking += 1
            try:
                connection, peer_id = await self._accept(stream)
            finally:
                self._handshaking -= 1
            self._counters.connections += 1
            await self._receive(connection, peer_id)
        except FrameError:
            self._counters.bad_frames += 1
        except (AuthenticationError, trio.TooSlowError):
            self._counters.auth_failures += 1
        except _CONNECTION_ERRORS:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _accept(self, stream: trio.SocketStream) -> tuple[FramedStream, int]:
        """The connection a peer dialed, once authenticated, and that peer's id."""
        with trio.fail_after(self._handshake_timeout):
            connection = FramedStream(stream, self._cluster_id)
            if self._tls is not None:
                tls_stream = trio.SSLStream(stream, self._tls.server_context, server_side=True)
                await _tls_handshake(tls_stream)
                connection = FramedStream(tls_stream, self._cluster_id)
            peer_id = await server_handshake(
                connection, cluster_id=self._cluster_id, node_id=self._node_id, secret=self._secret
            )
        connection.authenticated(self._max_frame_size)
        return connection, peer_id

    async def _receive(self, connection: FramedStream, peer_id: int) -> None:
        while True:
            message = decode_message(await connection.receive_body())
            if message.sender != peer_id or message.recipient != self._node_id:
                raise FrameError(
                    f"node {peer_id} sent a message from {message.sender} to {message.recipient}"
                )
            self._counters.received += 1
            try:  # a checkpoint per message would cost more than the decoding
                self._incoming_in.send_nowait(message)
            except trio.WouldBlock:
                await self._incoming_in.send(message)

    # Outgoing connections: dial, write queued messages in batches, redial after a failure.

    async def _keep_connected(self, peer_id: int, peer: _Peer) -> None:
        with peer.cancel_scope:
            await self._connect_and_write(peer_id, peer)

    async def _connect_and_write(self, peer_id: int, peer: _Peer) -> None:
        failures = 0
        while True:
            if failures:
                await trio.sleep(self._backoff.delay(failures, self._rng))
            connection = await self._dial(peer_id, peer)
            if connection is None:
                failures += 1
                continue
            self._counters.connections += 1
            failures = 1  # a connection that dies at once must not make us redial in a loop
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_hang_up_on_eof, connection, nursery.cancel_scope)
                    await self._write(connection, peer)
                    nursery.cancel_scope.cancel()
            finally:
                await connection.aclose()

    async def _dial(self, peer_id: int, peer: _Peer) -> FramedStream | None:
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(self._handshake_timeout):
                stream = await trio.open_tcp_stream(*peer.address)
                if self._tls is not None:
                    stream = trio.SSLStream(
                        stream, self._tls.client_context, server_hostname=peer.address[0]
                    )
                    await _tls_handshake(stream)
                connection = FramedStream(stream, self._cluster_id)
                await client_handshake(
                    connection,
                    cluster_id=self._cluster_id,
                    node_id=self._node_id,
                    peer_id=peer_id,
                    secret=self._secret,
                )
                return connection
        except FrameError:
            self._counters.bad_frames += 1
        except AuthenticationError:
            self._counters.auth_failures += 1
        except (trio.TooSlowError, *_CONNECTION_ERRORS):
            pass
        if stream is not None:
            await trio.aclose_forcefully(stream)
        return None

    async def _write(self, connection: FramedStream, peer: _Peer) -> None:
        """Write queued frames until the connection breaks (errors end here: inside a nursery
        they would arrive wrapped in an exception group)."""
        while True:
            batch = await peer.queue.take(MAX_BATCH, MAX_BATCH_BYTES)
            written = False
            try:
                await connection.stream.send_all(b"".join(batch))
                written = True
            except _CONNECTION_ERRORS:
                return
            finally:
                if written:
                    self._counters.sent += len(batch)
                else:
                    self._counters.dropped += len(batch)


async def _tls_handshake(stream: trio.SSLStream[trio.SocketStream]) -> None:
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as error:
        raise AuthenticationError(f"TLS handshake failed: {error.__cause__}") from error


async def _hang_up_on_eof(connection: FramedStream, scope: trio.CancelScope) -> None:
    """Cancel `scope` once the peer closes a connection we only write to (or writes to it)."""
    with suppress(*_CONNECTION_ERRORS):
        await connection.stream.receive_some(1)
    scope.cancel()
