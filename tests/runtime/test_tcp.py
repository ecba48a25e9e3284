"""The TCP transport on 127.0.0.1 with kernel-chosen ports: messages flow, peers reconnect,
queues stay bounded, and strangers, garbage and oversized frames are shut out and counted
while good peers go on being served."""

from __future__ import annotations

import functools
import random
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
import trio

from raft.core import AppendEntries, Entry, Heartbeat, TimeoutNow
from raft.runtime import (
    Backoff,
    TcpTransport,
    TlsConfig,
    encode_message,
    encode_preamble,
    frame,
)
from raft.runtime._auth import NONCE_BYTES, AuthenticationError, client_handshake, server_handshake
from raft.runtime._framed import FramedStream

CLUSTER = "tcp-test"
SECRET = b"correct horse battery staple"
HOST = "127.0.0.1"
FAST = Backoff(initial=0.005, maximum=0.05)


def _transport(node_id: int, **settings: Any) -> TcpTransport:
    defaults: dict[str, Any] = {
        "cluster_id": CLUSTER,
        "peers": {},
        "rng": random.Random(node_id),
        "secret": SECRET,
        "backoff": FAST,
    }
    return TcpTransport(node_id=node_id, **(defaults | settings))


@asynccontextmanager
async def _cluster(*transports: TcpTransport) -> AsyncIterator[tuple[TcpTransport, ...]]:
    """Run `transports`, each a peer of all the others."""
    async with AsyncExitStack() as stack:
        for transport in transports:
            await stack.enter_async_context(transport)
        for transport in transports:
            for other in transports:
                if other is not transport:
                    transport.add_peer(other.node_id, (HOST, other.port))
        yield transports


def _ping(sender: int, recipient: int, round_: int = 0) -> Heartbeat:
    return Heartbeat(term=1, sender=sender, recipient=recipient, commit=0, round=round_)


async def _eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.005)


async def _closed_by_peer(stream: trio.abc.Stream) -> None:
    """Read until the peer closes the connection (anything it sent first is ignored)."""
    with trio.fail_after(5):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass  # a reset is a close too


async def test_messages_flow_every_way_between_three_transports() -> None:
    async with _cluster(_transport(1), _transport(2), _transport(3)) as transports:
        for sender in transports:
            for recipient in transports:
                if recipient is not sender:
                    sender.send(_ping(sender.node_id, recipient.node_id))
        with trio.fail_after(5):
            for recipient in transports:
                senders = {(await recipient.incoming.receive()).sender for _ in range(2)}
                assert senders == {1, 2, 3} - {recipient.node_id}
        for transport in transports:
            assert transport.counters.sent == 2
            assert transport.counters.received == 2
            assert transport.counters.connections == 4  # two dialed, two accepted
            assert transport.counters.dropped == transport.counters.bad_frames == 0


async def test_many_queued_messages_arrive_whole_and_in_order() -> None:
    async with _cluster(_transport(1, queue_size=5000), _transport(2)) as (one, two):
        for round_ in range(3000):
            one.send(_ping(1, 2, round_))
        with trio.fail_after(10):
            rounds = [(await two.incoming.receive()).round for _ in range(3000)]  # type: ignore[union-attr]
        assert rounds == list(range(3000))


async def test_a_peer_whose_listener_restarts_is_redialed() -> None:
    async with _cluster(_transport(1)) as (one,):
        async with _transport(2) as two:
            one.add_peer(2, (HOST, two.port))
            one.send(_ping(1, 2))
            with trio.fail_after(5):
                await two.incoming.receive()
            port = two.port
        async with _transport(2, port=port) as again:
            with trio.fail_after(5):
                while True:
                    one.send(_ping(1, 2))
                    with trio.move_on_after(0.02):
                        await again.incoming.receive()
                        break
        assert one.counters.connections == 2


async def test_a_full_queue_drops_the_oldest_and_counts() -> None:
    async with _transport(2) as gone:
        port = gone.port
    async with _transport(1, queue_size=4, peers={2: (HOST, port)}) as one:
        for round_ in range(10):
            one.send(_ping(1, 2, round_))
        one.send(_ping(1, 7))  # not a peer
        assert one.counters.dropped == 7
        async with _transport(2, port=port) as two:
            with trio.fail_after(5):
                rounds = [(await two.incoming.receive()).round for _ in range(4)]  # type: ignore[union-attr]
        assert rounds == [6, 7, 8, 9]


async def _raw(port: int, data: bytes = b"") -> trio.SocketStream:
    stream = await trio.open_tcp_stream(HOST, port)
    if data:
        await stream.send_all(data)
    return stream


async def _authenticated(port: int, node_id: int, peer_id: int = 2) -> FramedStream:
    connection = FramedStream(await _raw(port), CLUSTER)
    await client_handshake(
        connection, cluster_id=CLUSTER, node_id=node_id, peer_id=peer_id, secret=SECRET
    )
    return connection


def _hello(node_id: int, cluster: str = CLUSTER) -> bytes:
    return encode_preamble(cluster) + frame(msgpack.packb([node_id, bytes(NONCE_BYTES)]))


async def test_bad_input_closes_only_that_connection_and_is_counted() -> None:
    async with _cluster(_transport(1), _transport(2)) as (one, two):
        port = two.port
        attacks = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # garbage
            _hello(3, cluster="another-cluster"),  # wrong cluster id
            encode_preamble(CLUSTER) + (1 << 31).to_bytes(4, "big"),  # oversized frame
            encode_preamble(CLUSTER) + frame(bytes(2000)),  # too big for a handshake
            encode_preamble(CLUSTER) + frame(b"\xc1"),  # not msgpack
        ]
        for attack in attacks:
            await _closed_by_peer(await _raw(port, attack))
        assert two.counters.bad_frames == len(attacks)

        liar = await _authenticated(port, node_id=3)  # authenticated as 3, claims to be 1
        await liar.send_body(encode_message(_ping(1, 2)))
        await _closed_by_peer(liar.stream)
        misdirected = await _authenticated(port, node_id=3)
        await misdirected.send_body(encode_message(_ping(3, 1)))
        await _closed_by_peer(misdirected.stream)
        good_then_bad = await _authenticated(port, node_id=3)
        await good_then_bad.send_body(encode_message(TimeoutNow(1, 3, 2)))
        await good_then_bad.stream.send_all((1 << 31).to_bytes(4, "big"))
        await _closed_by_peer(good_then_bad.stream)
        assert two.counters.bad_frames == len(attacks) + 3

        with trio.fail_after(5):
            assert await two.incoming.receive() == TimeoutNow(1, 3, 2)
            one.send(_ping(1, 2, 42))
            assert await two.incoming.receive() == _ping(1, 2, 42)
        assert two.counters.auth_failures == 0


async def test_a_wrong_secret_is_refused_both_ways() -> None:
    async with _cluster(_transport(1), _transport(2)) as (one, two):
        impostor = FramedStream(await _raw(two.port), CLUSTER)
        with pytest.raises((AuthenticationError, trio.BrokenResourceError)):
            await client_handshake(
                impostor, cluster_id=CLUSTER, node_id=3, peer_id=2, secret=b"x" * 32
            )
        await _closed_by_peer(impostor.stream)
        assert two.counters.auth_failures == 1

        stranger = _transport(3, secret=b"another secret entirely", peers={2: (HOST, two.port)})
        async with stranger:
            stranger.send(_ping(3, 2))
            await _eventually(lambda: two.counters.auth_failures >= 2)
        one.send(_ping(1, 2))
        with trio.fail_after(5):
            assert (await two.incoming.receive()).sender == 1
        assert two.counters.received == 1


async def test_a_silent_connection_is_dropped_after_the_handshake_timeout() -> None:
    async with _transport(2, handshake_timeout=0.05) as two:
        await _closed_by_peer(await _raw(two.port))
        assert two.counters.auth_failures == 1


async def test_strangers_cannot_hold_more_than_max_handshakes_connections() -> None:
    async with _cluster(_transport(1), _transport(2, max_handshakes=2)) as (one, two):
        one.send(_ping(1, 2))
        with trio.fail_after(5):
            await two.incoming.receive()  # node 1 is connected before the strangers come
        silent = [await _raw(two.port), await _raw(two.port)]
        await _eventually(lambda: two._handshaking == 2)
        await _closed_by_peer(await _raw(two.port))
        assert two.counters.auth_failures == 1
        for stream in silent:
            await stream.aclose()
        await _eventually(lambda: two._handshaking == 0)
        one.send(_ping(1, 2, 1))
        with trio.fail_after(5):
            assert await two.incoming.receive() == _ping(1, 2, 1)


async def test_a_removed_peer_is_hung_up_on_and_sent_nothing_more() -> None:
    async with _cluster(_transport(1), _transport(2)) as (one, two):
        one.send(_ping(1, 2))
        with trio.fail_after(5):
            await two.incoming.receive()
        one.remove_peer(2)
        one.send(_ping(1, 2))
        assert one.counters.dropped == 1
        one.add_peer(2, (HOST, two.port))
        one.send(_ping(1, 2, 7))
        with trio.fail_after(5):
            assert await two.incoming.receive() == _ping(1, 2, 7)
        assert one.counters.connections == 3  # two dialed (before and after), one accepted


async def test_a_peer_that_resets_mid_write_is_redialed_and_the_loss_counted() -> None:
    resets = 0

    async def resetting_peer(stream: trio.SocketStream) -> None:
        nonlocal resets
        await server_handshake(
            FramedStream(stream, CLUSTER), cluster_id=CLUSTER, node_id=2, secret=SECRET
        )
        await trio.sleep(0.05)  # not reading: the writer fills the socket buffers and blocks
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        resets += 1
        await stream.aclose()  # with linger 0: a reset, under the writer's feet

    big = AppendEntries(1, 1, 2, 0, 1, tuple(Entry(1, i, bytes(60_000)) for i in range(1, 5)), 0)
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, resetting_peer, 0, host=HOST)
        [listener] = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        async with _transport(1, peers={2: (HOST, port)}) as one:
            for cycle in range(1, 4):
                for _ in range(100):
                    one.send(big)
                await _eventually(lambda: resets >= cycle)  # noqa: B023
            await _eventually(lambda: one.counters.connections >= 4)
            assert one.counters.dropped > 0
        nursery.cancel_scope.cancel()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="peers must authenticate"):
        _transport(1, secret=None)
    with pytest.raises(ValueError, match="at least 16"):
        _transport(1, secret=b"short")
    with pytest.raises(ValueError, match="other than 1"):
        _transport(1, peers={1: (HOST, 1)})
    with pytest.raises(ValueError, match="queue_size"):
        _transport(1, queue_size=0)
    with pytest.raises(ValueError, match="cluster_id"):
        _transport(1, cluster_id="")
    with pytest.raises(ValueError, match="queue_bytes"):
        _transport(1, queue_bytes=1000, max_frame_size=2000)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=1.0, maximum=0.5)


def test_backoff_grows_to_its_maximum_with_jitter() -> None:
    backoff, rng = Backoff(initial=0.1, maximum=1.0), random.Random(1)
    delays = [backoff.delay(failures, rng) for failures in range(1, 40)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= delay <= 1.0 for delay in delays[5:])
    assert len(set(delays)) == len(delays)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: TLS is not tested here")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _tls(cert: Path, key: Path, *, client_certificate: bool = True) -> TlsConfig:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cert)
    server.load_cert_chain(cert, key)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
    if client_certificate:
        client.load_cert_chain(cert, key)
    return TlsConfig(server_context=server, client_context=client)


async def test_mutual_tls_carries_messages_and_refuses_clients_without_a_certificate(
    certificate: tuple[Path, Path],
) -> None:
    tls = _tls(*certificate)
    async with _cluster(
        _transport(1, secret=None, tls=tls), _transport(2, secret=None, tls=tls)
    ) as (one, two):
        one.send(_ping(1, 2))
        two.send(_ping(2, 1))
        with trio.fail_after(5):
            assert (await two.incoming.receive()).sender == 1
            assert (await one.incoming.receive()).sender == 2
        anonymous = _tls(*certificate, client_certificate=False)
        without_certificate = TlsConfig(tls.server_context, anonymous.client_context)
        stranger = _transport(3, secret=None, tls=without_certificate, peers={2: (HOST, two.port)})
        async with stranger:
            stranger.send(_ping(3, 2))
            await _eventually(lambda: two.counters.auth_failures >= 1)
        assert two.counters.received == 1


async def test_tls_and_the_secret_together(certificate: tuple[Path, Path]) -> None:
    tls = _tls(*certificate)
    async with _cluster(_transport(1, tls=tls), _transport(2, tls=tls)) as (one, two):
        one.send(_ping(1, 2))
        with trio.fail_after(5):
            assert (await two.incoming.receive()).sender == 1
