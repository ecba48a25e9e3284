"""`python -m sim demo`: a five-node cluster told as a story.

A leader is elected and replicates writes; the leader is cut off with one follower in a
minority; the majority elects a new leader and keeps committing while the old leader cannot
commit anything and steps down; the partition heals and every log converges on the majority's.
Then the verdict: every safety property and linearizability of the writes, checked; and the
whole story drawn as an HTML timeline. Everything runs on the seeded in-memory network, so the
same seed tells the same story.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from raft import Entry, Role
from sim._cluster import Cluster
from sim._history import history_from_records
from sim._invariants import Violation
from sim._linearizability import check_linearizability
from sim._monitor import Monitor
from sim._timeline import FaultSpan, timeline_of
from sim._timeline_html import render_timeline_html
from statemachines import KVStore, encode_put

_NODES = (1, 2, 3, 4, 5)
_SECOND = 1_000_000_000


class _Narrator:
    """Prints what changed in the cluster since it last looked, stamped with simulated time."""

    def __init__(self, cluster: Cluster, out: TextIO) -> None:
        self._cluster = cluster
        self._out = out
        self._seen = {node_id: (Role.FOLLOWER, 0) for node_id in _NODES}

    def say(self, text: str) -> None:
        self._out.write(f"[{self._cluster.now / _SECOND:7.3f}s] {text}\n")

    def run(self, seconds: float) -> None:
        """Advance time tick by tick, announcing every role change."""
        cluster = self._cluster
        end = cluster.now + int(seconds * _SECOND)
        while cluster.now < end:
            cluster.run_for(cluster.tick_ns)
            for node_id, replica in cluster.replicas.items():
                node = replica.node
                now = (node.role, node.term)
                if now != self._seen[node_id]:
                    self._announce(node_id, now)
                    self._seen[node_id] = now

    def _announce(self, node_id: int, role_and_term: tuple[Role, int]) -> None:
        role, term = role_and_term
        previous_role, _ = self._seen[node_id]
        if role is Role.LEADER:
            self.say(f"node {node_id} wins the election: leader of term {term}")
        elif previous_role is Role.LEADER:
            _, previous_term = self._seen[node_id]
            why = (
                "it heard from no majority for an election timeout (check-quorum)"
                if term == previous_term
                else "it saw a higher term"
            )
            self.say(f"node {node_id} steps down, {why}: follower in term {term}")

    def table(self) -> None:
        """One line per node: role, term, last index, commit index and its data."""
        for node_id, replica in self._cluster.replicas.items():
            node = replica.node
            store = replica.state_machine
            assert isinstance(store, KVStore)
            self._out.write(
                f"           node {node_id}: {node.role.name.lower():<13} term {node.term}  "
                f"last index {node.last_index:>2}  commit {node.commit_index:>2}  "
                f"data {dict(store.items())}\n"
            )


class _Story:
    """The demo's cluster, its client writes (as a history) and its faults, being checked."""

    def __init__(self, seed: int, out: TextIO) -> None:
        self.monitor = Monitor()
        self.cluster = Cluster(
            _NODES, seed=seed, state_machine_factory=KVStore, on_apply=self._on_apply
        )
        self.monitor.attach(self.cluster)
        self.narrator = _Narrator(self.cluster, out)
        self.history: list[dict[str, Any]] = []
        self.faults: list[FaultSpan] = []
        self.acknowledged: list[tuple[int, int]] = []
        self._waiting: dict[tuple[int, int], tuple[int, str, int]] = {}

    def _on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        self.monitor.on_apply(node_id, entry, result)
        write = self._waiting.pop((node_id, entry.index), None)
        if write is not None:
            term, key, value = write
            outcome = "ok" if entry.term == term else "fail"
            self._record(outcome, key, value)
            if outcome == "ok":
                self.acknowledged.append((entry.index, term))

    def _record(self, kind: str, key: str, value: int) -> None:
        self.history.append(
            {
                "process": value,
                "type": kind,
                "f": "write",
                "key": key,
                "value": value,
                "time": self.cluster.now,
            }
        )

    def write(self, node_id: int, key: str, value: int) -> int:
        """A client write at `node_id`; recorded, and answered when that node applies it."""
        self._record("invoke", key, value)
        term, index = self.cluster.propose(node_id, encode_put(key, value))
        self._waiting[(node_id, index)] = (term, key, value)
        self.narrator.say(f"client writes {key}={value} at node {node_id}: log index {index}")
        return index

    def verdict(self) -> list[Violation]:
        """Every safety property and linearizability, checked over the whole story."""
        self.monitor.finish(self.acknowledged)
        violations = list(self.monitor.violations)
        linearizable = check_linearizability(history_from_records(self.history), "kv")
        if not linearizable.ok:
            violations.append(Violation("linearizability", linearizable.explain()))
        return violations


def run_demo(seed: int, out: TextIO, timeline_path: Path | None = None) -> bool:
    """Tell the story for `seed`, check it, and draw it into `timeline_path` (if given);
    True if every log converged and every property held."""
    story = _Story(seed, out)
    cluster, narrator = story.cluster, story.narrator
    out.write(
        f"trio-raft demo: {len(_NODES)} nodes on a simulated network (seed {seed}, 1-5 ms "
        f"latency, a tick every {cluster.tick_ns // 1_000_000} ms, elections after 10-20 ticks)\n\n"
    )
    narrator.say("all nodes start as followers in term 0, with empty logs")
    leader = cluster.elect()
    narrator.run(0.05)
    for value in (1, 2, 3):
        story.write(leader, "x", value)
    narrator.run(0.1)
    narrator.say("every node has applied the writes:")
    narrator.table()

    buddy = next(node_id for node_id in _NODES if node_id != leader)
    majority = [node_id for node_id in _NODES if node_id not in (leader, buddy)]
    out.write("\n")
    cluster.network.partition([leader, buddy], majority)
    partitioned_at = cluster.now
    narrator.say(f"PARTITION: leader {leader} and node {buddy} are cut off from nodes {majority}")
    stale_index = story.write(leader, "y", 666)
    narrator.run(0.05)
    narrator.say(
        f"node {leader} cannot commit index {stale_index}: only node {buddy} took it, and 2 of "
        f"{len(_NODES)} is no majority (commit index stays "
        f"{cluster.replicas[leader].node.commit_index})"
    )
    narrator.run(2.0)
    new_leader = cluster.leader()
    if new_leader is None or new_leader == leader:
        narrator.say("the majority did not elect a new leader; try another seed")
        return False
    story.write(new_leader, "y", 2)
    narrator.run(0.1)
    narrator.say(
        "the majority commits without the old leader; the minority, refused pre-votes, "
        "never even raises its term:"
    )
    narrator.table()

    out.write("\n")
    narrator.say("HEAL: the network is whole again")
    cluster.network.heal()
    story.faults.append(
        FaultSpan(
            "partition", f"{sorted([leader, buddy])} | {majority}", partitioned_at, cluster.now
        )
    )
    narrator.run(1.0)
    narrator.say(
        f"node {leader}'s uncommitted write at index {stale_index} is replaced by the "
        "majority's entry; every log now agrees:"
    )
    narrator.table()
    converged = _report_convergence(cluster, out)
    violations = story.verdict()
    if violations:
        out.write("verdict: VIOLATED\n" + "".join(f"  {v}\n" for v in violations))
    else:
        out.write(
            "verdict: every property held (election safety, leader append-only, log matching, "
            "leader completeness, state machine safety, durability, linearizability)\n"
        )
    if timeline_path is not None:
        timeline = timeline_of(cluster, story.faults, story.history, violations)
        timeline_path.write_text(render_timeline_html(timeline))
        out.write(f"timeline: {timeline_path}\n")
    return converged and not violations


def _report_convergence(cluster: Cluster, out: TextIO) -> bool:
    logs = {
        tuple(replica.node.log_entries(1, replica.node.last_index + 1))
        for replica in cluster.replicas.values()
    }
    digests = {
        replica.state_machine.state_digest()
        for replica in cluster.replicas.values()
        if isinstance(replica.state_machine, KVStore)
    }
    out.write(
        f"\nlogs identical on all {len(_NODES)} nodes: {'yes' if len(logs) == 1 else 'NO'}; "
        f"state machines identical: {'yes' if len(digests) == 1 else 'NO'}; "
        f"leaders per term: "
        f"{ {term: sorted(ids) for term, ids in sorted(cluster.leaders_by_term.items())} }\n"
    )
    return len(logs) == 1 and len(digests) == 1
