"""Random and mutated bytes at a live TCP transport, before and after an authenticated
handshake: the connection is closed (or simply ended), the transport keeps serving its peers."""

from __future__ import annotations

import random

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from raft.core import Heartbeat, TimeoutNow
from raft.runtime import Backoff, TcpTransport, encode_message, frame
from raft.runtime._auth import client_handshake
from raft.runtime._framed import FramedStream

CLUSTER = "fuzz"
SECRET = b"a secret for the fuzzing tests"
HOST = "127.0.0.1"


def _transport(node_id: int) -> TcpTransport:
    return TcpTransport(
        node_id=node_id,
        cluster_id=CLUSTER,
        peers={},
        rng=random.Random(node_id),
        secret=SECRET,
        backoff=Backoff(initial=0.005, maximum=0.05),
        handshake_timeout=1.0,
    )


async def _send_and_hang_up(port: int, payload: bytes, authenticate: bool) -> None:
    stream = await trio.open_tcp_stream(HOST, port)
    if authenticate:
        connection = FramedStream(stream, CLUSTER)
        await client_handshake(connection, cluster_id=CLUSTER, node_id=3, peer_id=2, secret=SECRET)
    try:
        await stream.send_all(payload)
        await stream.send_eof()
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass  # the transport closed it first: what it should do with bad bytes
    await stream.aclose()


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(data)
    for position, value in edits:
        mutable[position % len(mutable)] = value
    return bytes(mutable)


valid_frames = st.lists(
    st.builds(TimeoutNow, st.integers(0, 9), st.just(3), st.just(2)), min_size=1, max_size=3
).map(lambda messages: b"".join(frame(encode_message(m)) for m in messages))


@settings(max_examples=40)
@given(
    payload=st.binary(max_size=200)
    | st.builds(_mutate, valid_frames, st.lists(st.tuples(st.integers(0), st.integers(0, 255)))),
    authenticate=st.booleans(),
)
async def test_bytes_from_a_stranger_or_a_peer_never_stop_the_transport(
    payload: bytes, authenticate: bool
) -> None:
    async with _transport(1) as one, _transport(2) as two:
        one.add_peer(2, (HOST, two.port))
        with trio.fail_after(5):
            await _send_and_hang_up(two.port, payload, authenticate)
            one.send(Heartbeat(term=1, sender=1, recipient=2, commit=0))
            while (await two.incoming.receive()).sender != 1:
                pass  # a well-formed frame from the fuzzer may arrive first: that is fine
