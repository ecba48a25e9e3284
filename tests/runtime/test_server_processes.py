"""A real 3-process cluster on 127.0.0.1 (TCP, FileStorage, fsync): a client workload recorded
as a Jepsen history while the leader is SIGKILLed and restarted 20 times; the history must be
linearizable and no acknowledged write may be missing after a restart of every node."""

from __future__ import annotations

import random
from pathlib import Path

import trio

from raft.testing.processes import ProcessCluster, Workload
from sim import check_linearizability, history_from_records


async def test_sigkill_the_leader_twenty_times(tmp_path: Path) -> None:
    cluster = ProcessCluster(tmp_path, snapshot_entries=100)  # compaction under SIGKILL too
    try:
        await cluster.start_all()
        await cluster.find_leader()
        workload = Workload(cluster, rng=random.Random(20))
        result = await workload.run(kill_cycles=20)
        for node_id in cluster.nodes:  # a final restart of every node
            await cluster.kill(node_id)
        await cluster.start_all()
        await cluster.find_leader()
        missing = await workload.final_check()
    finally:
        with trio.CancelScope(shield=True):
            await cluster.aclose()
    assert result.kills == 20
    assert missing == []
    ops = history_from_records(result.records)
    completed_writes = [op for op in ops if op.kind.value == "write" and op.outcome.value == "ok"]
    assert len(completed_writes) >= 20, "the workload made too little progress"
    assert len(result.acknowledged) >= 5
    snapshots = list(tmp_path.glob("node-*/snapshot-*.snap"))
    assert snapshots, "no node compacted its log"
    verdict = check_linearizability(ops, "kv")
    assert verdict.ok, verdict.explain()
