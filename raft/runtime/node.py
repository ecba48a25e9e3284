"""A replicated key-value node in one process: `python -m raft.runtime.node`.

    python -m raft.runtime.node --id 1 --dir /tmp/n1 --client-port 7001 \\
        --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --secret-file secret

It runs a `RaftServer` with a `statemachines.KVStore`, `FileStorage` in `--dir` and a
`TcpTransport` authenticated by the shared secret, and serves clients on `--client-port`
(127.0.0.1 only: the client protocol has no authentication, so it is for tests, benchmarks and
local tools; a real service puts its own API in front of `RaftServer`). Once it listens it
prints one line, ``READY <client port> <raft port>``, on stdout (``READY <client port> <raft
port> <http port>`` with ``--http-port``: the HTTP API of `raft.runtime._http`, served by
hypercorn, the ``http`` extra).

Client protocol (`NodeClient` speaks it): frames of a 4-byte big-endian length and a msgpack
array, at most 1 MiB. A request is ``[request_id, op, args]`` and the answer
``[request_id, status, value]``; requests on one connection are answered in order.

| op | args | value when status is "ok" |
|---|---|---|
| ``"put"`` | ``[key, value, client_id, seq]`` | ``[ok, previous value]`` |
| ``"cas"`` | ``[key, expected, new, client_id, seq]`` | ``[matched, value]`` |
| ``"del"`` | ``[key, client_id, seq]`` | ``[ok, previous value]`` |
| ``"get"`` | ``[key, consistency]`` | the value (None when absent) |
| ``"status"`` | ``[]`` | ``{"id", "role", "term", "leader", "commit", "applied", ...}`` |
| ``"member"`` | ``[action, node_id, address]`` | None |

The status also holds ``"voters"`` and ``"learners"``. A ``"member"`` action is ``"add"`` (a
learner at ``address``, its raft address as ``[host, port]``), ``"promote"`` (a learner to a
voter) or ``"remove"`` (a voter or a learner); `trio-raft member` sends it.

Other statuses: ``"not_leader"`` (value: the leader's id or None; certainly not applied),
``"timeout"`` (outcome unknown), ``"overloaded"``, ``"expired"``, ``"error"`` (value: a
message; the request was malformed or failed). A malformed frame closes the connection.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information
import trio

from raft.core import CommandTooLarge, Config, MembershipChangeError, UsageError
from raft.core import NotLeader as CoreNotLeader
from raft.runtime._errors import Overloaded, SessionExpired, Timeout
from raft.runtime._server import RaftServer
from raft.runtime._tcp import TcpTransport
from raft.storage import FileStorage

MAX_CLIENT_FRAME: Final = 1 << 20
_LENGTH = struct.Struct(">I")


class ProtocolError(ValueError):
    """A client frame that is not a valid request (the connection is closed)."""


async def read_frame(stream: trio.abc.ReceiveStream, buffer: bytearray) -> Any:
    """The next msgpack value from `stream` (using `buffer` for leftovers); None at EOF."""
    while True:
        if len(buffer) >= 4:
            (length,) = _LENGTH.unpack_from(buffer)
            if not 0 < length <= MAX_CLIENT_FRAME:
                raise ProtocolError(f"frame length {length} outside 1..{MAX_CLIENT_FRAME}")
            if len(buffer) >= 4 + length:
                body = bytes(buffer[4 : 4 + length])
                del buffer[: 4 + length]
                try:
                    return msgpack.unpackb(body, raw=False, strict_map_key=True)
                except Exception as error:
                    raise ProtocolError(f"bad msgpack: {error}") from None
        data = await stream.receive_some(65536)
        if not data:
            if buffer:
                raise ProtocolError("connection closed mid-frame")
            return None
        buffer += data


def encode_frame(value: object) -> bytes:
    """`value` as one client-protocol frame."""
    body: bytes = msgpack.packb(value, use_bin_type=True)
    return _LENGTH.pack(len(body)) + body


def _kv_encode_result(result: object) -> object:
    return [result.ok, result.value, result.error]  # type: ignore[attr-defined]


def _parse_peers(text: str) -> dict[int, tuple[str, int]]:
    peers = {}
    for part in text.split(","):
        node, _, address = part.partition("=")
        host, _, port = address.rpartition(":")
        peers[int(node)] = (host, int(port))
    return peers


def status_dict(server: RaftServer) -> dict[str, Any]:
    """The node's status as the client protocol and the HTTP API give it."""
    status = server.status()
    membership = status.membership
    return {
        "id": status.node_id,
        "role": status.role.name,
        "term": status.term,
        "leader": status.leader_id,
        "commit": status.commit_index,
        "applied": status.applied_index,
        "voters": list(membership.voters) if membership else [],
        "learners": list(membership.learners) if membership else [],
    }


async def _start_http(nursery: trio.Nursery, server: RaftServer, arguments: Any) -> int:
    """Start the HTTP API (`raft.runtime._http`) on --http-port through hypercorn; its port."""
    try:
        from hypercorn.config import Config as HypercornConfig  # noqa: PLC0415
        from hypercorn.trio import serve  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the optional extra is missing
        sys.exit("--http-port needs hypercorn: pip install 'trio-raft[http]'")
    from raft.runtime._http import KVHttpApp  # noqa: PLC0415

    addresses = _parse_peers(arguments.http_peers) if arguments.http_peers else {}
    peers = {node: f"{host}:{port}" for node, (host, port) in addresses.items()}
    config = HypercornConfig()
    config.bind = [f"{arguments.http_host}:{arguments.http_port}"]
    config.accesslog = None
    app = KVHttpApp(server, peers, lambda: status_dict(server))
    binds = await nursery.start(
        partial(serve, app, config, shutdown_trigger=trio.sleep_forever)  # type: ignore[arg-type]
    )
    return int(str(binds[0]).rpartition(":")[2])


class _Handler:
    def __init__(self, server: RaftServer) -> None:
        # The application lives above raft (DESIGN.md's layers): imported only when run.
        from statemachines import encode_cas, encode_delete, encode_put  # noqa: PLC0415

        self.server = server
        self.encode_put = encode_put
        self.encode_cas = encode_cas
        self.encode_delete = encode_delete

    async def serve(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        try:
            while True:
                request = await read_frame(stream, buffer)
                if request is None:
                    return
                if not (isinstance(request, list) and len(request) == 3):
                    raise ProtocolError("a request is [request_id, op, args]")
                request_id, op, args = request
                status, value = await self.handle(op, args)
                await stream.send_all(encode_frame([request_id, status, value]))
        except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def handle(self, op: object, args: Any) -> tuple[str, object]:
        server = self.server
        try:
            if op == "put":
                key, value, client_id, seq = args
                result: Any = await server.apply(
                    self.encode_put(key, value), client_id=client_id, seq=seq
                )
                return "ok", [result.ok, result.value]
            if op == "cas":
                key, expected, new, client_id, seq = args
                result = await server.apply(
                    self.encode_cas(key, expected, new), client_id=client_id, seq=seq
                )
                return "ok", [result.ok, result.value]
            if op == "del":
                key, client_id, seq = args
                result = await server.apply(self.encode_delete(key), client_id=client_id, seq=seq)
                return "ok", [result.ok, result.value]
            if op == "member":
                # A follower answers before add_learner records the address: only the leader
                # changes membership.
                status = server.status()
                if status.role.name != "LEADER":
                    return "not_leader", status.leader_id
                await self.member(*args)
                return "ok", None
            if op == "get":
                key, consistency = args
                return "ok", await server.read(lambda kv: kv.get(key), consistency=consistency)
            if op == "status":
                return "ok", status_dict(server)
            return "error", f"unknown op {op!r}"
        except CoreNotLeader as error:
            return "not_leader", error.leader_id
        except (MembershipChangeError, UsageError) as error:
            return "error", str(error)
        except Timeout as error:
            return "timeout", str(error)
        except Overloaded as error:
            return "overloaded", str(error)
        except SessionExpired as error:
            return "expired", str(error)
        except (CommandTooLarge, ValueError, TypeError) as error:
            return "error", str(error)

    async def member(self, action: str, node_id: int, address: list[Any] | None) -> None:
        server = self.server
        if action == "add":
            if address is None:
                raise ValueError("adding a member needs its raft address")
            host, port = address
            await server.add_learner(node_id, (str(host), int(port)))
        elif action == "promote":
            await server.promote_learner(node_id)
        elif action == "remove":
            membership = server.status().membership
            if membership is not None and node_id in membership.learners:
                await server.remove_learner(node_id)
            else:
                await server.remove_voter(node_id)
        else:
            raise ValueError(f"unknown member action {action!r} (add, promote, remove)")


async def run_node(arguments: argparse.Namespace) -> None:
    """Run one node until killed."""
    from statemachines import KVResult, KVStore  # noqa: PLC0415  (see _Handler)

    peers = _parse_peers(arguments.peers)
    node_id = arguments.id
    host, raft_port = peers[node_id]
    others = {peer: address for peer, address in peers.items() if peer != node_id}
    secret: bytes | None = getattr(arguments, "secret", None)  # set by `trio-raft serve`
    if secret is None:
        secret = open(arguments.secret_file, "rb").read().strip()  # noqa: SIM115
    config = Config(
        node_id=node_id,
        voters=tuple(sorted(peers)),
        election_ticks=arguments.election_ticks,
        heartbeat_ticks=1,
        snapshot_threshold_entries=arguments.snapshot_entries,
        lease_reads=getattr(arguments, "lease_reads", False),
    )
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    with FileStorage(arguments.dir) as storage:
        transport = TcpTransport(
            node_id=node_id,
            cluster_id=arguments.cluster_id,
            peers=others,
            rng=rng,
            secret=secret,
            host=host,
            port=raft_port,
        )
        async with transport:
            server = RaftServer(
                config,
                storage,
                transport,
                KVStore(),
                rng=rng,
                tick_interval=arguments.tick,
                addresses=peers,
                request_timeout=arguments.request_timeout,
                encode_result=_kv_encode_result,
                decode_result=lambda fields: KVResult(*fields),  # type: ignore[misc]
            )
            async with server, trio.open_nursery() as nursery:
                handler = _Handler(server)
                ready = ""
                if getattr(arguments, "http_port", None) is not None:
                    ready = f" {await _start_http(nursery, server, arguments)}"
                listeners = await trio.open_tcp_listeners(arguments.client_port, host="127.0.0.1")
                port = listeners[0].socket.getsockname()[1]
                print(f"READY {port} {transport.port}{ready}", flush=True)
                await trio.serve_listeners(handler.serve, listeners)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m raft.runtime.node", description=__doc__)
    parser.add_argument("--id", type=int, required=True, help="this node's id")
    parser.add_argument("--peers", required=True, help="id=host:port,... every node, this one too")
    parser.add_argument("--dir", required=True, help="this node's storage directory")
    parser.add_argument("--client-port", type=int, default=0, help="client port on 127.0.0.1")
    parser.add_argument("--secret-file", required=True, help="file holding the shared secret")
    parser.add_argument("--cluster-id", default="kv", help="cluster id (must match)")
    parser.add_argument("--tick", type=float, default=0.05, help="seconds per tick")
    parser.add_argument("--election-ticks", type=int, default=10, help="ticks per election")
    parser.add_argument("--request-timeout", type=float, default=2.0, help="seconds")
    parser.add_argument(
        "--lease-reads",
        action="store_true",
        help="allow 'lease' reads (Config.lease_reads: safe while clocks drift little)",
    )
    parser.add_argument(
        "--http-port", type=int, default=None, help="serve the HTTP API here (needs hypercorn)"
    )
    parser.add_argument("--http-host", default="127.0.0.1", help="the HTTP API's host")
    parser.add_argument(
        "--http-peers", default="", help="id=host:port,... HTTP addresses (for redirects)"
    )
    parser.add_argument(
        "--snapshot-entries", type=int, default=10000, help="compact every N applied (0: never)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    arguments = parse_arguments(argv)
    try:
        trio.run(run_node, arguments)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
