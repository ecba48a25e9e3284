"""The plumbing the battery checks share (`sim._counter_check`, `sim._queue_check`,
`sim._fencing`): a cluster whose replicas compact their logs, messages to and from clients with
seeded latency, pauses of the leader, and a count of the snapshots replicas installed."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from raft import Entry, SnapshotMetadata, StateMachine
from sim._cluster import Cluster


class LeaderPausingScenario:
    """A seeded scenario on a `Cluster` of `state_machine_factory` replicas that compact every
    `snapshot_every` applied entries (0: never); subclasses say what an applied entry means
    (`_on_apply`) and when the leader may be paused (`_may_pause_leader`)."""

    def __init__(
        self,
        seed: int,
        name: str,
        *,
        nodes: int,
        state_machine_factory: Callable[[], StateMachine],
        snapshot_every: int,
        latency_ns: tuple[int, int],
        leader_pause_ns: int,
        leader_pause_every_ns: int,
    ) -> None:
        self.rng = random.Random(f"{seed}/{name}")
        self.cluster = Cluster(
            range(1, nodes + 1),
            seed=seed,
            state_machine_factory=state_machine_factory,
            on_apply=self._on_apply,
            on_snapshot=self._count_install,
            snapshot_threshold_entries=snapshot_every,
        )
        self._latency_ns = latency_ns
        self._leader_pause_ns = leader_pause_ns
        self._leader_pause_every_ns = leader_pause_every_ns
        self.installs = 0
        """Snapshots replicas installed from their leader (not the ones they took)."""
        self.leader_pauses = 0

    def _on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        raise NotImplementedError

    def _may_pause_leader(self) -> bool:
        return True

    def _count_install(
        self, _node_id: int, metadata: SnapshotMetadata, _data: bytes, applied: int
    ) -> None:
        if metadata.index > applied:
            self.installs += 1

    def _latency(self) -> int:
        return self.rng.randint(*self._latency_ns)

    def _later(self, callback: Callable[[], None], delay: int | None = None) -> None:
        """Run `callback` after `delay`, or after one message's latency."""
        cluster = self.cluster
        cluster.schedule(cluster.now + (self._latency() if delay is None else delay), callback)

    def _leader_pause_gap(self) -> int:
        return int(self.rng.expovariate(1 / self._leader_pause_every_ns))

    def _pause_leader(self) -> None:
        """Pause the leader for a while (when allowed now), then schedule the next pause."""
        cluster = self.cluster
        leader = cluster.leader()
        if self._may_pause_leader() and leader is not None and not cluster.is_paused(leader):
            self.leader_pauses += 1
            cluster.pause(leader)
            self._later(partial(cluster.resume, leader), self._leader_pause_ns)
        self._later(self._pause_leader, self._leader_pause_gap())
