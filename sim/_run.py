"""One simulated run from a seed to a verdict, and the verdict's shape.

A run builds a cluster of KV stores, starts the clients and the nemesis, lets simulated time
pass, then stops injecting faults for a quiet tail so the cluster can recover, and checks every
safety property plus linearizability of the client history. Everything random derives from the
seed, so `replay_command()` reproduces the run exactly.
"""

from __future__ import annotations

import random
import time
from typing import Any

import attrs

from raft import Entry
from sim._cluster import Cluster
from sim._history import history_from_records
from sim._invariants import Violation, election_safety
from sim._linearizability import check_linearizability
from sim._membership_nemesis import spare_ids
from sim._monitor import Monitor
from sim._nemesis import Nemesis, parse_nemeses
from sim._timeline import FaultSpan, Timeline, timeline_of
from sim._workload import READ_MODES, Workload, WorkloadOptions
from statemachines import KVStore

_SECOND = 1_000_000_000
_TICK_NS = 100_000_000
"""As etcd's defaults: heartbeats every 100 ms, elections after 1-2 s of silence."""


def _at_least(minimum: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            option = "--" + attribute.name.replace("_", "-")
            raise ValueError(f"{option} must be an integer >= {minimum}, got {value!r}")

    return check


def _nemesis_spec(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    parse_nemeses(value)


@attrs.frozen
class RunOptions:
    """Everything that shapes a run besides its seed; invalid values raise ValueError."""

    nodes: int = attrs.field(default=5, validator=_at_least(1))
    nemesis: str = attrs.field(default="all", validator=_nemesis_spec)
    duration: int = attrs.field(default=30, validator=_at_least(1))
    """Simulated seconds, including a quiet tail of up to 5 s with no new faults."""
    read_mode: str = attrs.field(default="index", validator=attrs.validators.in_(READ_MODES))
    clients: int = attrs.field(default=10, validator=_at_least(1))
    max_entries_per_message: int = attrs.field(default=4096, validator=_at_least(1))
    """Small values split replication into many messages, so followers acknowledge partial
    logs: the condition under which Figure 8's commit rule matters."""
    snapshot_chunk_bytes: int = attrs.field(default=16, validator=_at_least(1))
    """The largest snapshot chunk, in runs with the `snapshot` nemesis: small values make an
    install take many round trips; large ones send a snapshot in one message, which the network
    may then duplicate and delay whole."""

    def arguments(self) -> list[str]:
        """These options as `python -m sim` arguments."""
        return [
            f"--nodes {self.nodes}",
            f"--nemesis {self.nemesis}",
            f"--duration {self.duration}",
            f"--read-mode {self.read_mode}",
            f"--clients {self.clients}",
            f"--max-entries-per-message {self.max_entries_per_message}",
            f"--snapshot-chunk-bytes {self.snapshot_chunk_bytes}",
        ]


@attrs.frozen
class RunResult:
    """The verdict of one run, with the figures a sweep adds up."""

    seed: int
    options: RunOptions
    violations: tuple[Violation, ...]
    ops: int
    elections: int
    max_recovery_s: float
    sim_seconds: float
    wall_seconds: float
    events: int
    trace_sha256: str
    faults: tuple[str, ...]
    timeline: Timeline | None = attrs.field(repr=False)
    """Everything needed to draw the run (None in sweeps, which only add up figures)."""

    @property
    def ok(self) -> bool:
        """Whether every property held."""
        return not self.violations

    def replay_command(self) -> str:
        """The command line that replays this run exactly."""
        return f"python -m sim run --seed {self.seed} " + " ".join(self.options.arguments())

    def summary(self) -> dict[str, Any]:
        """The JSON-ready figures of `run --json`."""
        return {
            "runs": 1,
            "violations": [
                {"seed": self.seed, "property": v.property, "detail": v.detail}
                for v in self.violations
            ],
            "ops": self.ops,
            "elections": self.elections,
            "max_recovery_s": self.max_recovery_s,
            "sim_seconds": self.sim_seconds,
            "wall_seconds": round(self.wall_seconds, 3),
            "events": self.events,
            "trace_sha256": self.trace_sha256,
            "faults": list(self.faults),
            "replay": self.replay_command(),
        }


def run_simulation(seed: int, options: RunOptions | None = None) -> RunResult:
    """Run one seeded simulation and check it."""
    options = options or RunOptions()
    started = time.perf_counter()
    duration_ns = options.duration * _SECOND
    quiet_tail_ns = min(5 * _SECOND, duration_ns // 3)
    workload = Workload(
        random.Random(f"{seed}/workload"),
        WorkloadOptions(clients=options.clients, read_mode=options.read_mode),
    )
    monitor = Monitor()

    def on_apply(node_id: int, entry: Entry, result: object) -> None:
        monitor.on_apply(node_id, entry, result)
        workload.on_apply(node_id, entry, result)

    kinds = parse_nemeses(options.nemesis)
    cluster = Cluster(
        range(1, options.nodes + 1),
        seed=seed,
        spares=spare_ids(options.nodes, kinds),
        state_machine_factory=KVStore,
        on_apply=on_apply,
        on_read=workload.on_read,
        on_snapshot=monitor.on_snapshot,
        max_snapshot_chunk_bytes=options.snapshot_chunk_bytes if "snapshot" in kinds else None,
        tick_ns=_TICK_NS,
        max_entries_per_message=options.max_entries_per_message,
        lease_reads=options.read_mode == "lease",
    )
    monitor.attach(cluster)
    nemesis = Nemesis(kinds, random.Random(f"{seed}/nemesis"), workload.forget_node)
    workload.start(cluster)
    nemesis.start(cluster, duration_ns - quiet_tail_ns)
    cluster.run_for(duration_ns - _SECOND)
    workload.stopped = True
    cluster.run_for(_SECOND)
    monitor.finish(workload.acknowledged)

    violations = list(monitor.violations)
    election = election_safety(cluster.leaders_by_term)
    if election is not None and not any(v.property == election.property for v in violations):
        violations.append(election)
    linearizable = check_linearizability(history_from_records(workload.history), "kv")
    if not linearizable.ok:
        violations.append(Violation("linearizability", linearizable.explain()))
    violations_found = tuple(violations)
    timeline = timeline_of(
        cluster,
        (
            FaultSpan(f.kind, f.detail, f.start_ns, duration_ns if f.end_ns is None else f.end_ns)
            for f in nemesis.faults
        ),
        workload.history,
        violations_found,
    )
    return RunResult(
        seed=seed,
        options=options,
        violations=violations_found,
        ops=sum(1 for record in workload.history if record["type"] == "invoke"),
        elections=monitor.elections,
        max_recovery_s=max(nemesis.recoveries_ns, default=0) / _SECOND,
        sim_seconds=duration_ns / _SECOND,
        wall_seconds=time.perf_counter() - started,
        events=len(cluster.trace),
        trace_sha256=cluster.trace_sha256(),
        faults=tuple(fault.describe() for fault in nemesis.faults),
        timeline=timeline,
    )
