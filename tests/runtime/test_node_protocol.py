"""The node process's client protocol, in process: valid requests are answered, and malformed,
oversized or truncated frames close that connection while the node keeps serving."""

from __future__ import annotations

import random
import struct

import pytest
import trio

from raft.core import Config
from raft.runtime import MemoryHub, RaftServer
from raft.runtime.node import MAX_CLIENT_FRAME, _Handler, encode_frame
from raft.storage import MemoryStorage
from raft.testing.processes import ClientError, NodeClient
from statemachines import KVStore


async def _closed(port: int, garbage: bytes) -> bool:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(garbage)
        await stream.send_eof()
        with trio.fail_after(5):
            while await stream.receive_some(1024):
                pass
        return True
    except (trio.BrokenResourceError, OSError):
        return True
    finally:
        await stream.aclose()


async def test_requests_and_bad_frames() -> None:
    server = RaftServer(
        Config(node_id=1, voters=(1,)),
        MemoryStorage(),
        MemoryHub().connect(1),
        KVStore(),
        rng=random.Random(1),
        tick_interval=0.01,
    )
    async with server, trio.open_nursery() as nursery:
        await server.wait_for_leader()
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        await nursery.start(trio.serve_listeners, _Handler(server).serve, listeners)
        client = NodeClient(port)
        assert await client.call("put", ["x", 1, 5, 1]) == ("ok", [True, None])
        assert await client.call("put", ["x", 1, 5, 1]) == ("ok", [True, None])  # dedup
        assert await client.call("get", ["x", "linearizable"]) == ("ok", 1)
        assert (await client.call("status", []))[1]["role"] == "LEADER"
        assert (await client.call("nope", []))[0] == "error"
        assert (await client.call("put", ["x"]))[0] == "error"
        assert (await client.call("get", ["x", "sideways"]))[0] == "error"
        rng = random.Random(7)
        garbage = [
            struct.pack(">I", MAX_CLIENT_FRAME + 1),  # oversized
            struct.pack(">I", 0),  # empty
            struct.pack(">I", 10) + b"abc",  # truncated
            struct.pack(">I", 1) + b"\xc1",  # not msgpack
            encode_frame({"a": 1}),  # not a request
            encode_frame([1, 2]),
            *(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) for _ in range(30)),
        ]
        for data in garbage:
            assert await _closed(port, data)
        assert await client.call("get", ["x", "stale"]) == ("ok", 1)  # still serving
        await client.aclose()
        with pytest.raises(ClientError):  # nobody listens there
            await NodeClient(1).call("status", [], timeout=1)
        nursery.cancel_scope.cancel()
