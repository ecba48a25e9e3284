"""Real clusters for tests, soaks and benchmarks: `python -m raft.runtime.node` processes on
127.0.0.1, a client for their protocol, and a Jepsen-style workload with a SIGKILL nemesis.

Every process is started with its own storage directory and ports the kernel chose (bound to
port 0, read back, released, then handed to the node), and killed by its pid in `aclose`.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from raft.runtime.node import encode_frame, read_frame

SECRET = b"raft.testing.processes shared secret"


def free_port() -> int:
    """A port the kernel has just handed out on 127.0.0.1 (and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ClientError(Exception):
    """The connection to a node failed (the outcome of a pending request is unknown)."""


class NodeClient:
    """One connection to a node's client port (on `host`); one request at a time."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self._stream: trio.SocketStream | None = None
        self._buffer = bytearray()
        self._ids = itertools.count(1)

    async def call(self, op: str, args: list[Any], timeout: float = 3.0) -> tuple[str, Any]:
        """Send one request; its (status, value). `ClientError` if the connection failed or
        no answer came within `timeout` (the connection is then dropped)."""
        try:
            with trio.fail_after(timeout):
                if self._stream is None:
                    self._stream = await trio.open_tcp_stream(self.host, self.port)
                    self._buffer = bytearray()
                request_id = next(self._ids)
                await self._stream.send_all(encode_frame([request_id, op, args]))
                answer = await read_frame(self._stream, self._buffer)
            if answer is None:
                raise ClientError("connection closed")
            _, status, value = answer
            return status, value
        except (OSError, trio.BrokenResourceError, trio.TooSlowError, ValueError) as error:
            await self.aclose()
            raise ClientError(str(error) or type(error).__name__) from None
        except ClientError:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Drop the connection (a later call reconnects)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await trio.aclose_forcefully(stream)


@attrs.define
class _Node:
    node_id: int
    raft_port: int
    client_port: int
    directory: Path
    process: trio.Process | None = None
    http_port: int | None = None


class ProcessCluster:
    """`size` node processes on 127.0.0.1, each with a directory under `directory`."""

    def __init__(
        self,
        directory: Path,
        size: int = 3,
        *,
        tick: float = 0.02,
        election_ticks: int = 10,
        request_timeout: float = 1.0,
        snapshot_entries: int = 10000,
        http: bool = False,
        lease_reads: bool = False,
    ) -> None:
        self.directory = directory
        self.snapshot_entries = snapshot_entries
        self.lease_reads = lease_reads
        self.tick = tick
        self.election_ticks = election_ticks
        self.request_timeout = request_timeout
        self.nodes = {
            node_id: _Node(node_id, free_port(), free_port(), directory / f"node-{node_id}")
            for node_id in range(1, size + 1)
        }
        if http:  # each node serves the HTTP API too (needs hypercorn: the http extra)
            for node in self.nodes.values():
                node.http_port = free_port()
        self.secret_file = directory / "secret"
        self.secret_file.write_bytes(SECRET)
        self.started_pids: list[int] = []

    @property
    def peers(self) -> str:
        return ",".join(f"{n.node_id}=127.0.0.1:{n.raft_port}" for n in self.nodes.values())

    def running(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n.process is not None]

    async def start(self, node_id: int, timeout: float = 30.0) -> None:
        """Start node `node_id` and wait until it listens."""
        node = self.nodes[node_id]
        log = open(self.directory / f"node-{node_id}.log", "ab")  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "raft.runtime.node",
            "--id",
            str(node_id),
            "--peers",
            self.peers,
            "--dir",
            str(node.directory),
            "--client-port",
            str(node.client_port),
            "--secret-file",
            str(self.secret_file),
            "--tick",
            str(self.tick),
            "--election-ticks",
            str(self.election_ticks),
            "--request-timeout",
            str(self.request_timeout),
            "--snapshot-entries",
            str(self.snapshot_entries),
        ]
        if self.lease_reads:
            command.append("--lease-reads")
        if node.http_port is not None:
            http_peers = ",".join(
                f"{n.node_id}=127.0.0.1:{n.http_port}" for n in self.nodes.values()
            )
            command += ["--http-port", str(node.http_port), "--http-peers", http_peers]
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        node.process = process
        self.started_pids.append(process.pid)
        assert process.stdout is not None
        line = b""
        with trio.fail_after(timeout):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError(f"node {node_id} exited before it was ready")
                line += chunk
        if not line.startswith(b"READY"):
            raise RuntimeError(f"node {node_id} said {line!r}")

    async def start_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for node_id in self.nodes:
                nursery.start_soon(self.start, node_id)

    async def kill(self, node_id: int) -> None:
        """SIGKILL node `node_id` (by pid) and reap it."""
        node = self.nodes[node_id]
        process, node.process = node.process, None
        if process is None:
            return
        with _ignoring_missing():
            os.kill(process.pid, signal.SIGKILL)
        await process.wait()

    async def aclose(self) -> None:
        """Kill every node still running."""
        for node_id in self.nodes:
            await self.kill(node_id)

    async def status(self, node_id: int) -> dict[str, Any] | None:
        client = NodeClient(self.nodes[node_id].client_port)
        try:
            status, value = await client.call("status", [], timeout=1.0)
        except ClientError:
            return None
        finally:
            await client.aclose()
        return value if status == "ok" else None

    async def find_leader(self, timeout: float = 20.0) -> int:
        """The id of the node that says it leads."""
        with trio.fail_after(timeout):
            while True:
                for node_id in self.running():
                    status = await self.status(node_id)
                    if status is not None and status["role"] == "LEADER":
                        return node_id
                await trio.sleep(self.tick * 2)


class _ignoring_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return isinstance(value, ProcessLookupError)


@attrs.define
class WorkloadResult:
    """What a workload saw: the Jepsen history, and writes acknowledged to unique keys."""

    records: list[dict[str, Any]]
    acknowledged: dict[str, int]
    ops: int = 0
    kills: int = 0


class Workload:
    """Clients doing reads, writes and compare-and-sets on a few registers (recorded as a
    history) plus writes to unique keys (checked for durability), against whichever node leads.

    Each client has a session: a write that timed out is retried with the same sequence
    number at the next leader, at most `attempts` times, so it is applied at most once.
    """

    def __init__(
        self,
        cluster: ProcessCluster,
        *,
        clients: int = 5,
        keys: tuple[str, ...] = ("a", "b", "c"),
        rng: random.Random,
        attempts: int = 3,
    ) -> None:
        self.cluster = cluster
        self.clients = clients
        self.keys = keys
        self.rng = rng
        self.attempts = attempts
        self.leader_hint = 1
        self.result = WorkloadResult([], {})
        self._values = itertools.count(1)
        self._stop = False

    def _record(self, **fields: Any) -> None:
        fields["time"] = time.monotonic_ns()
        self.result.records.append(fields)

    async def _attempt(
        self, clients: dict[int, NodeClient], op: str, args: list[Any]
    ) -> tuple[str, Any]:
        node_id = self.leader_hint
        if node_id not in clients:
            clients[node_id] = NodeClient(self.cluster.nodes[node_id].client_port)
        try:
            status, value = await clients[node_id].call(
                op, args, timeout=self.cluster.request_timeout + 1.0
            )
        except ClientError:
            self._rotate()
            return "unknown", None
        if status == "not_leader":
            if value is not None:
                self.leader_hint = value
            else:
                self._rotate()
        if status == "timeout":
            self._rotate()
        return status, value

    def _rotate(self) -> None:
        self.leader_hint = self.rng.choice(list(self.cluster.nodes))

    async def _write(
        self, clients: dict[int, NodeClient], op: str, args: list[Any]
    ) -> tuple[str, Any]:
        """ "ok" with the value, "fail" (certainly not applied) or "info" (unknown)."""
        unknown = False
        for _ in range(self.attempts):
            status, value = await self._attempt(clients, op, args)
            if status == "ok":
                return "ok", value
            if status in ("unknown", "timeout", "expired"):
                unknown = True
            elif status not in {"not_leader", "overloaded"}:
                return ("info" if unknown else "fail"), value
            await trio.sleep(self.cluster.tick * 3)
        return ("info" if unknown else "fail"), None

    async def _client(self, process: int) -> None:
        clients: dict[int, NodeClient] = {}
        client_id = self.rng.getrandbits(63) + 1
        seq = 0
        rng = random.Random(self.rng.getrandbits(64))
        try:
            while not self._stop:
                self.result.ops += 1
                key = rng.choice(self.keys)
                roll = rng.random()
                if roll < 0.1:
                    await self._unique_write(clients, client_id, seq := seq + 1, process)
                    continue
                if roll < 0.5:
                    self._record(process=process, type="invoke", f="read", key=key, value=None)
                    status, value = await self._attempt(clients, "get", [key, "linearizable"])
                    if status == "ok":
                        self._record(process=process, type="ok", f="read", key=key, value=value)
                    else:
                        self._record(process=process, type="fail", f="read", key=key, value=None)
                        await trio.sleep(self.cluster.tick * 3)
                    continue
                seq += 1
                if roll < 0.8:
                    value = next(self._values)
                    self._record(process=process, type="invoke", f="write", key=key, value=value)
                    outcome, _ = await self._write(clients, "put", [key, value, client_id, seq])
                    self._record(process=process, type=outcome, f="write", key=key, value=value)
                else:
                    expected, new = rng.randint(1, max(1, next(self._values))), next(self._values)
                    pair = [expected, new]
                    self._record(process=process, type="invoke", f="cas", key=key, value=pair)
                    outcome, value = await self._write(
                        clients, "cas", [key, expected, new, client_id, seq]
                    )
                    if outcome == "ok" and not value[0]:
                        outcome = "fail"  # compare failed: certainly no effect
                    self._record(process=process, type=outcome, f="cas", key=key, value=pair)
                if outcome == "info":
                    process += 1000  # Jepsen: a process with an unknown op is done
        finally:
            for client in clients.values():
                await client.aclose()

    async def _unique_write(
        self, clients: dict[int, NodeClient], client_id: int, seq: int, process: int
    ) -> None:
        key = f"u-{process}-{seq}"
        outcome, _ = await self._write(clients, "put", [key, seq, client_id, seq])
        if outcome == "ok":
            self.result.acknowledged[key] = seq

    async def run(
        self,
        *,
        duration: float | None = None,
        kill_cycles: int = 0,
        on_cycle: Callable[[int], None] | None = None,
    ) -> WorkloadResult:
        """Run the clients for `duration` seconds, or through `kill_cycles` cycles of: find
        the leader, SIGKILL it, restart it."""
        self._stop = False
        async with trio.open_nursery() as nursery:
            for i in range(self.clients):
                nursery.start_soon(self._client, i + 1)
            if kill_cycles:
                for cycle in range(kill_cycles):
                    await trio.sleep(self.rng.uniform(0.2, 0.5))
                    leader = await self.cluster.find_leader()
                    await self.cluster.kill(leader)
                    self.result.kills += 1
                    await trio.sleep(self.rng.uniform(0.0, 0.3))
                    await self.cluster.start(leader)
                    if on_cycle is not None:
                        on_cycle(cycle)
                await trio.sleep(0.5)
            else:
                await trio.sleep(duration or 1.0)
            self._stop = True
        return self.result

    async def final_check(self) -> list[str]:
        """After a restart of every node: read every register (into the history) and every
        acknowledged unique key; the acknowledged writes that are missing."""
        self._stop = False
        clients: dict[int, NodeClient] = {}
        process = 10**6
        for key in self.keys:
            for _ in range(50):
                self._record(process=process, type="invoke", f="read", key=key, value=None)
                status, value = await self._attempt(clients, "get", [key, "linearizable"])
                if status == "ok":
                    self._record(process=process, type="ok", f="read", key=key, value=value)
                    break
                self._record(process=process, type="fail", f="read", key=key, value=None)
                await trio.sleep(0.1)
            else:
                raise RuntimeError(f"could not read {key} after the restart")
        missing = []
        for key, value in self.result.acknowledged.items():
            for _ in range(50):
                status, got = await self._attempt(clients, "get", [key, "linearizable"])
                if status == "ok":
                    if got != value:
                        missing.append(f"{key}: acknowledged {value}, read {got}")
                    break
                await trio.sleep(0.1)
            else:
                raise RuntimeError(f"could not read {key} after the restart")
        for client in clients.values():
            await client.aclose()
        return missing
