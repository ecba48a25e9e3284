"""Throughput of the pure core: three nodes in one process, messages handed straight from one
node's `Ready` to another's `step`, no I/O. Every entry is committed and applied on all three.

Prints one JSON line per batch size:
    {"nodes": 3, "batch": B, "entries_per_s": ..., "proposals_per_s": ...}
each the median of `--repeat` runs. Usage: python benchmarks/core_throughput.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from raft import Config, EntryKind, Message, RaftNode, Role
from raft.storage import MemoryStorage

COMMAND = b"0123456789abcdef"
NODE_IDS = (1, 2, 3)


class Counter:
    """The cheapest honest state machine: counts the commands it applied."""

    def __init__(self) -> None:
        self.applied = 0

    def apply(self, command: bytes) -> object:
        self.applied += 1
        return self.applied

    def snapshot(self) -> bytes:
        return self.applied.to_bytes(8, "big")

    def restore(self, data: bytes) -> None:
        self.applied = int.from_bytes(data, "big")


class BenchNode:
    """A node, its storage and state machine, following the Ready contract."""

    def __init__(self, node_id: int) -> None:
        self.storage = MemoryStorage()
        config = Config(node_id=node_id, voters=NODE_IDS, max_entries_per_message=4096)
        self.node = RaftNode(config, self.storage, random.Random(node_id))
        self.state_machine = Counter()

    def process(self, outbox: list[Message]) -> None:
        node = self.node
        if not node.has_ready():
            return
        ready = node.ready()
        if ready.hard_state is not None:
            self.storage.set_hard_state(ready.hard_state)
        if ready.entries:
            self.storage.append(ready.entries)
        outbox.extend(ready.messages)
        apply = self.state_machine.apply
        command = EntryKind.COMMAND
        for entry in ready.committed_entries:
            if entry.kind == command:
                apply(entry.data)
        node.advance(ready)


def pump(nodes: dict[int, BenchNode]) -> None:
    """Deliver messages until the cluster is quiet."""
    outbox: list[Message] = []
    for bench_node in nodes.values():
        bench_node.process(outbox)
    while outbox:
        inbox, outbox = outbox, []
        for message in inbox:
            nodes[message.recipient].node.step(message)
        for bench_node in nodes.values():
            bench_node.process(outbox)


def run_once(batch: int, entries: int) -> tuple[float, float]:
    """Commit and apply `entries` commands in proposals of `batch`; (entries/s, proposals/s)."""
    nodes = {node_id: BenchNode(node_id) for node_id in NODE_IDS}
    leader = nodes[1].node
    leader.campaign()
    pump(nodes)
    assert leader.role is Role.LEADER
    commands = [COMMAND] * batch
    proposals = entries // batch
    start = time.perf_counter()
    for _ in range(proposals):
        leader.propose_batch(commands)
        pump(nodes)
    # Followers learn the last commit index from the next heartbeat, as they would in service.
    leader.tick()
    pump(nodes)
    elapsed = time.perf_counter() - start
    for bench_node in nodes.values():
        assert bench_node.state_machine.applied == proposals * batch
    return proposals * batch / elapsed, proposals / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per batch size (median)")
    parser.add_argument("--entries", type=int, default=200_000, help="entries per run")
    args = parser.parse_args()
    for batch in (1, 1000):
        entries = args.entries if batch > 1 else args.entries // 10
        runs = [run_once(batch, entries) for _ in range(args.repeat)]
        print(
            json.dumps(
                {
                    "nodes": len(NODE_IDS),
                    "batch": batch,
                    "entries_per_s": round(statistics.median(r[0] for r in runs)),
                    "proposals_per_s": round(statistics.median(r[1] for r in runs)),
                }
            )
        )


if __name__ == "__main__":
    main()
