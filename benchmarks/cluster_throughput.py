"""Throughput and failover of a real cluster: 3 `python -m raft.runtime.node` processes on
127.0.0.1 (TCP with HMAC, FileStorage, one fsync per Ready), closed-loop clients sending 16-byte
writes (a KV put of a 16-character value) to the leader over the node's client protocol.

Cases, one JSON line each (medians of `--repeat` runs):
  {"case": "writes", "concurrency": c, "writes_per_s": ..., "p50_ms": ..., "p99_ms": ...}
      for c in --concurrency (default 1, 16, 256), each run `--seconds` long after a warm-up;
  {"case": "failover", "election_timeout_s": ..., "median_s": ..., "runs_s": [...]}
      SIGKILL the leader, then time until a write submitted right after the kill commits
      (`--failovers` reps; the killed node is restarted between reps).
With `--peer pysyncobj --peer-python VENV/bin/python` (a venv holding pysyncobj and msgpack,
not a dependency of this project) the same write cases also run on a 3-process PySyncObj
cluster (`benchmarks/_pysyncobj_node.py`: in-memory log, no fsync) in the same run, and a
`{"case": "ratio", ...}` line per concurrency gives trio-raft's writes/s over PySyncObj's.
Usage: python benchmarks/cluster_throughput.py [--seconds 5] [--repeat 3] [--failovers 5]
           [--peer pysyncobj --peer-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from raft.testing.processes import ClientError, NodeClient, ProcessCluster, free_port

VALUE = "0123456789abcdef"  # 16 bytes


class _PeerNode:
    def __init__(self) -> None:
        self.raft_port = free_port()
        self.client_port = free_port()
        self.process: trio.Process | None = None


class PySyncObjCluster:
    """3 PySyncObj processes (`_pysyncobj_node.py`) run by `python`, with the same client
    protocol for puts, so `_writes` drives them unchanged."""

    def __init__(self, python: str, size: int = 3) -> None:
        self.python = python
        self.nodes = {i: _PeerNode() for i in range(1, size + 1)}

    async def start_all(self) -> None:
        script = str(Path(__file__).with_name("_pysyncobj_node.py"))
        for node_id, node in self.nodes.items():
            partners = ",".join(
                f"127.0.0.1:{n.raft_port}" for i, n in self.nodes.items() if i != node_id
            )
            node.process = await trio.lowlevel.open_process(
                [
                    self.python,
                    script,
                    "--self",
                    f"127.0.0.1:{node.raft_port}",
                    "--partners",
                    partners,
                    "--client-port",
                    str(node.client_port),
                ],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            assert node.process.stdout is not None
            with trio.fail_after(30):
                line = b""
                while not line.endswith(b"\n"):
                    chunk = await node.process.stdout.receive_some(1)
                    if not chunk:
                        raise RuntimeError("a PySyncObj node exited")
                    line += chunk

    async def find_leader(self, timeout: float = 30.0) -> int:
        with trio.fail_after(timeout):
            while True:
                for node_id, node in self.nodes.items():
                    client = NodeClient(node.client_port)
                    try:
                        status, value = await client.call("status", [], timeout=1)
                    except ClientError:
                        continue
                    finally:
                        await client.aclose()
                    if status == "ok" and value["role"] == "LEADER":
                        return node_id
                await trio.sleep(0.1)

    async def aclose(self) -> None:
        for node in self.nodes.values():
            if node.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.process.pid, signal.SIGKILL)
                await node.process.wait()
                node.process = None


async def _writes(cluster: Any, concurrency: int, seconds: float) -> dict[str, float]:
    leader = await cluster.find_leader()
    port = cluster.nodes[leader].client_port
    latencies: list[float] = []
    counter = itertools.count()
    measuring = False
    errors = 0

    async def client(number: int) -> None:
        nonlocal errors
        connection = NodeClient(port)
        try:
            while True:
                key = f"k{number}-{next(counter) % 64}"
                start = time.perf_counter()
                status, _ = await connection.call("put", [key, VALUE, 0, 0], timeout=10)
                if status != "ok":
                    errors += 1
                    await trio.sleep(0.01)
                    continue
                if measuring:
                    latencies.append(time.perf_counter() - start)
        finally:
            await connection.aclose()

    async with trio.open_nursery() as nursery:
        for number in range(concurrency):
            nursery.start_soon(client, number)
        await trio.sleep(min(1.0, seconds / 3))  # warm-up
        measuring = True
        began = time.perf_counter()
        await trio.sleep(seconds)
        measuring = False
        elapsed = time.perf_counter() - began
        nursery.cancel_scope.cancel()
    latencies.sort()
    return {
        "writes_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


async def _failover(cluster: ProcessCluster) -> float:
    leader = await cluster.find_leader()
    await trio.sleep(0.5)
    await cluster.kill(leader)
    killed_at = time.perf_counter()
    survivors = [node_id for node_id in cluster.nodes if node_id != leader]
    clients = {node_id: NodeClient(cluster.nodes[node_id].client_port) for node_id in survivors}
    try:
        for attempt in itertools.count():
            node_id = survivors[attempt % len(survivors)]
            try:
                status, value = await clients[node_id].call(
                    "put", ["failover", VALUE, 0, 0], timeout=5
                )
            except ClientError:
                continue
            if status == "ok":
                took = time.perf_counter() - killed_at
                break
            if status == "not_leader" and value in clients:
                survivors.insert(0, survivors.pop(survivors.index(value)))
            await trio.sleep(0.005)
    finally:
        for client in clients.values():
            await client.aclose()
    await cluster.start(leader)
    await trio.sleep(1.0)  # let it catch up
    return took


def _summary(system: str, concurrency: int, runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "case": "writes",
        "system": system,
        "concurrency": concurrency,
        "fsync": system == "trio-raft",
        "writes_per_s": round(statistics.median(r["writes_per_s"] for r in runs)),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
        "runs_writes_per_s": [round(r["writes_per_s"]) for r in runs],
        "errors": sum(int(r["errors"]) for r in runs),
    }


async def _peer(arguments: argparse.Namespace, ours: dict[int, dict[str, Any]]) -> None:
    cluster = PySyncObjCluster(arguments.peer_python)
    try:
        await cluster.start_all()
        for concurrency in arguments.concurrency:
            runs = [
                await _writes(cluster, concurrency, arguments.seconds)
                for _ in range(arguments.repeat)
            ]
            theirs = _summary("pysyncobj", concurrency, runs)
            print(json.dumps(theirs), flush=True)
            mine = ours[concurrency]["writes_per_s"]
            print(
                json.dumps(
                    {
                        "case": "ratio",
                        "concurrency": concurrency,
                        "trio_raft_writes_per_s": mine,
                        "pysyncobj_writes_per_s": theirs["writes_per_s"],
                        "ratio": round(mine / max(1, theirs["writes_per_s"]), 2),
                    }
                ),
                flush=True,
            )
    finally:
        with trio.CancelScope(shield=True):
            await cluster.aclose()


async def bench(arguments: argparse.Namespace) -> None:
    ours: dict[int, dict[str, Any]] = {}
    directory = Path(tempfile.mkdtemp(prefix="raft-bench-"))
    cluster = ProcessCluster(
        directory,
        tick=arguments.tick,
        election_ticks=arguments.election_ticks,
        request_timeout=5.0,
    )
    try:
        await cluster.start_all()
        for concurrency in arguments.concurrency:
            runs = [
                await _writes(cluster, concurrency, arguments.seconds)
                for _ in range(arguments.repeat)
            ]
            ours[concurrency] = _summary("trio-raft", concurrency, runs)
            print(json.dumps(ours[concurrency]), flush=True)
        if arguments.failovers:
            runs_s = [await _failover(cluster) for _ in range(arguments.failovers)]
            timeout = arguments.tick * arguments.election_ticks
            print(
                json.dumps(
                    {
                        "case": "failover",
                        "election_timeout_s": timeout,
                        "median_s": round(statistics.median(runs_s), 3),
                        "max_s": round(max(runs_s), 3),
                        "median_over_election_timeout": round(
                            statistics.median(runs_s) / timeout, 2
                        ),
                        "runs_s": [round(r, 3) for r in runs_s],
                    }
                ),
                flush=True,
            )
    finally:
        with trio.CancelScope(shield=True):
            await cluster.aclose()
    if arguments.peer == "pysyncobj":
        await _peer(arguments, ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--tick", type=float, default=0.05, help="seconds per tick")
    parser.add_argument("--election-ticks", type=int, default=10)
    parser.add_argument("--peer", choices=["pysyncobj"], help="also run this system")
    parser.add_argument("--peer-python", default="python", help="the peer venv's python")
    trio.run(bench, parser.parse_args())


if __name__ == "__main__":
    main()
