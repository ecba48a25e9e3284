"""Soak: a 3-process cluster on 127.0.0.1 (TCP, FileStorage, fsync) under a recorded client
workload while the leader is SIGKILLed and restarted, cycle after cycle; then every node is
restarted, the history is checked for linearizability and every acknowledged write is read back.

Prints one JSON line: cycles, ops, history events, acknowledged unique writes, lost writes (must
be 0), the verdict and the seconds taken. Exit status 1 on any violation.
Usage: python scripts/soak_sigkill.py [--cycles 200] [--seed 1] [--snapshot-entries 100]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import trio

from raft.testing.processes import ProcessCluster, Workload
from sim import check_linearizability, history_from_records


async def soak(arguments: argparse.Namespace) -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(prefix="raft-soak-"))
    cluster = ProcessCluster(directory, snapshot_entries=arguments.snapshot_entries)
    started = time.monotonic()
    try:
        await cluster.start_all()
        await cluster.find_leader()
        workload = Workload(cluster, rng=random.Random(arguments.seed), clients=arguments.clients)
        result = await workload.run(
            kill_cycles=arguments.cycles,
            on_cycle=lambda cycle: print(f"cycle {cycle + 1}", file=sys.stderr, flush=True),
        )
        for node_id in cluster.nodes:
            await cluster.kill(node_id)
        await cluster.start_all()
        await cluster.find_leader()
        missing = await workload.final_check()
    finally:
        with trio.CancelScope(shield=True):
            await cluster.aclose()
    ops = history_from_records(result.records)
    verdict = check_linearizability(ops, "kv")
    outcomes = collections.Counter(f"{op.kind.value}:{op.outcome.value}" for op in ops)
    return {
        "cycles": result.kills,
        "ops": len(ops),
        "outcomes": dict(sorted(outcomes.items())),
        "acknowledged_unique_writes": len(result.acknowledged),
        "lost_writes": len(missing),
        "missing": missing[:10],
        "linearizable": verdict.ok,
        "verdict": str(verdict),
        "seconds": round(time.monotonic() - started, 1),
        "directory": str(directory),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--snapshot-entries", type=int, default=100)
    arguments = parser.parse_args()
    report = trio.run(soak, arguments)
    print(json.dumps(report))
    if not report["linearizable"] or report["lost_writes"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
