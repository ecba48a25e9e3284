"""What a run leaves for drawing: every role, commit and fault change, and the client history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from raft import Role
from sim._cluster import Cluster
from sim._invariants import Violation


@attrs.frozen
class FaultSpan:
    """One injected fault: its kind, what exactly, and its simulated start and end (ns)."""

    kind: str
    detail: str
    start_ns: int
    end_ns: int


@attrs.frozen
class Timeline:
    """The observable course of one run, in simulated nanoseconds.

    `role_changes` holds (time, node, role, term) and starts with no entry per node: every node
    begins a FOLLOWER in term 0. `commit_changes` holds (time, node, commit index).
    `node_events` holds (time, node, "crash" | "restart" | "pause" | "resume"). `history` is the
    Jepsen-shaped client history. `violations` carry their time when it is known.
    """

    seed: int
    nodes: tuple[int, ...]
    duration_ns: int
    role_changes: tuple[tuple[int, int, Role, int], ...]
    commit_changes: tuple[tuple[int, int, int], ...]
    node_events: tuple[tuple[int, int, str], ...]
    faults: tuple[FaultSpan, ...]
    history: tuple[dict[str, Any], ...]
    violations: tuple[Violation, ...]


def timeline_of(
    cluster: Cluster,
    faults: Iterable[FaultSpan],
    history: Iterable[dict[str, Any]],
    violations: Iterable[Violation],
) -> Timeline:
    """The timeline of `cluster`'s run so far (its duration is the cluster's current time)."""
    return Timeline(
        seed=cluster.seed,
        nodes=tuple(sorted(cluster.replicas)),
        duration_ns=cluster.now,
        role_changes=tuple(cluster.role_changes),
        commit_changes=tuple(cluster.commit_changes),
        node_events=tuple(cluster.node_events),
        faults=tuple(faults),
        history=tuple(history),
        violations=tuple(violations),
    )
