"""The work-queue check: workers that die or stall never lose an item or get one acked twice.

A seeded scenario on a simulated `Cluster` of `WorkQueue` replicas. A producer enqueues items
through the Raft leader; workers loop claiming an item (for a visibility timeout), working on
it, and acking it with their claim token. A worker may stall past its timeout (its ack then
arrives after someone else reclaimed the item, and must be refused) or die for good mid-item (its
item must become claimable again). The Raft leader is paused now and then underneath. Every
command is stamped with the leader's time when it arrives there. The last stretch of the run has
no stalls and no deaths, so the live workers can drain the queue.

The verdict comes from the log: every replica's result at every index must agree; an item acked
more than once, or enqueued and never acked by the end, is a violation (`queue_violations`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import attrs
import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from raft import Entry, LeadershipTransferInProgress, NotLeader
from sim._scenario import LeaderPausingScenario
from statemachines import QueueResult, WorkQueue, queue_ack, queue_claim, queue_enqueue

_QUEUE = "jobs"


@attrs.frozen
class QueueCheckOptions:
    """The scenario's shape; times in simulated nanoseconds."""

    nodes: int = 3
    workers: int = 4
    items: int = 60
    produce_every_ns: int = 100_000_000
    duration_ns: int = 20_000_000_000
    quiet_ns: int = 6_000_000_000
    """The last stretch of the run, with no stalls or deaths."""
    visibility_ns: int = 300_000_000
    work_ns: tuple[int, int] = (20_000_000, 120_000_000)
    stall_probability: float = 0.15
    stall_ns: tuple[int, int] = (400_000_000, 1_000_000_000)
    death_probability: float = 0.05
    """Chance that a worker dies for good holding an item (a new worker replaces it)."""
    latency_ns: tuple[int, int] = (200_000, 2_000_000)
    request_timeout_ns: int = 1_000_000_000
    leader_pause_every_ns: int = 3_000_000_000
    leader_pause_ns: int = 600_000_000
    snapshot_every: int = 20
    """Every replica compacts its log every this many applied entries (0: never), so a replica
    that fell behind during a pause catches up by installing its leader's snapshot."""


@attrs.frozen
class QueueCheckReport:
    """What one run did, and what went wrong (empty `violations`: nothing)."""

    seed: int
    enqueued: int
    acked: int
    claims: int
    stale_acks_refused: int
    worker_stalls: int
    worker_deaths: int
    leader_pauses: int
    snapshots_installed: int
    """Snapshots replicas installed from their leader (restored mid-run, then applied on)."""
    violations: tuple[str, ...]
    trace_sha256: str

    @property
    def clean(self) -> bool:
        """No item lost, none acked twice, every replica agreeing."""
        return not self.violations


def queue_violations(log: list[tuple[str, QueueResult]], remaining: list[int]) -> list[str]:
    """What the applied log shows went wrong: `log` holds (op, result) of every queue command
    in log order, `remaining` the items still queued at the end. An item acked twice, an item
    enqueued and neither acked nor still queued (lost), or one still queued (not drained) is
    reported."""
    enqueued: list[int] = []
    acks: dict[int, int] = {}
    for op, result in log:
        if result.ok and result.item is not None:
            if op == "enqueue":
                enqueued.append(result.item)
            elif op == "ack":
                acks[result.item] = acks.get(result.item, 0) + 1
    found = [f"item {item} acked {count} times" for item, count in acks.items() if count > 1]
    for item in enqueued:
        if item not in acks:
            where = "still queued" if item in remaining else "lost: neither acked nor queued"
            found.append(f"item {item} never acked ({where})")
    return found


def _op(command: bytes) -> str:
    op: str = msgpack.unpackb(command[1:])[0]
    return op


@attrs.define
class _Worker:
    name: str
    generation: int = 0
    item: int | None = None
    token: int | None = None
    dead: bool = False


class _Scenario(LeaderPausingScenario):
    def __init__(self, seed: int, options: QueueCheckOptions) -> None:
        super().__init__(
            seed,
            "queue-check",
            nodes=options.nodes,
            state_machine_factory=WorkQueue,
            snapshot_every=options.snapshot_every,
            latency_ns=options.latency_ns,
            leader_pause_ns=options.leader_pause_ns,
            leader_pause_every_ns=options.leader_pause_every_ns,
        )
        self.options = options
        self.pending: dict[tuple[int, int], tuple[int, Callable[[QueueResult | None], None]]] = {}
        self.log: dict[int, tuple[str, QueueResult]] = {}
        self.disagreements: list[str] = []
        self.produced = 0
        self.worker_count = 0
        self.claims = 0
        self.stale_acks = 0
        self.stalls = 0
        self.deaths = 0
        self.faults_end = options.duration_ns - options.quiet_ns

    def _on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        if isinstance(result, QueueResult):
            seen = self.log.setdefault(entry.index, (_op(entry.data), result))
            if seen[1] != result:
                self.disagreements.append(
                    f"node {node_id} applied index {entry.index} as {result}, another as {seen[1]}"
                )
        waiting = self.pending.pop((node_id, entry.index), None)
        if waiting is not None:
            term, answer = waiting
            answered = result if isinstance(result, QueueResult) else None
            self._later(partial(answer, answered if entry.term == term else None))

    def _request(
        self, make: Callable[[int], bytes], answer: Callable[[QueueResult | None], None]
    ) -> None:
        """Send a command to the leader, stamped there on arrival; `answer` gets the result,
        or None once (refused, lost, or timed out)."""
        answered = False

        def once(result: QueueResult | None) -> None:
            nonlocal answered
            if not answered:
                answered = True
                answer(result)

        self._later(partial(once, None), self.options.request_timeout_ns)
        leader = self.cluster.leader()
        if leader is None:
            self._later(partial(once, None), 50_000_000)
            return

        def arrive() -> None:
            cluster = self.cluster
            if cluster.is_paused(leader):
                return
            try:
                term, index = cluster.propose(leader, make(cluster.now))
            except (NotLeader, LeadershipTransferInProgress):
                self._later(partial(once, None))
                return
            self.pending[(leader, index)] = (term, once)

        self._later(arrive)

    # ---- the producer -------------------------------------------------------------------

    def _produce(self) -> None:
        if self.produced >= self.options.items:
            return
        payload = str(self.produced).encode()

        def answered(result: QueueResult | None) -> None:
            if result is not None and result.ok:
                self.produced += 1
            self._later(self._produce, self.options.produce_every_ns)

        self._request(lambda now: queue_enqueue(_QUEUE, payload, now_ns=now), answered)

    # ---- a worker -----------------------------------------------------------------------

    def _new_worker(self) -> None:
        self.worker_count += 1
        worker = _Worker(f"worker-{self.worker_count}")
        self._later(partial(self._claim, worker), self.rng.randint(0, 100_000_000))

    def _faulty(self) -> bool:
        return self.cluster.now < self.faults_end

    def _may_pause_leader(self) -> bool:
        return self._faulty()

    def _claim(self, worker: _Worker) -> None:
        visibility = self.options.visibility_ns

        def answered(result: QueueResult | None) -> None:
            if result is None or not result.ok:
                self._later(partial(self._claim, worker), 50_000_000)
                return
            self.claims += 1
            worker.item, worker.token = result.item, result.token
            work = self.rng.randint(*self.options.work_ns)
            if self._faulty() and self.rng.random() < self.options.death_probability:
                self.deaths += 1
                worker.dead = True
                self._new_worker()
                return
            if self._faulty() and self.rng.random() < self.options.stall_probability:
                self.stalls += 1
                work += self.rng.randint(*self.options.stall_ns)
            self._later(partial(self._ack, worker), work)

        self._request(
            lambda now: queue_claim(_QUEUE, worker.name, visibility_ns=visibility, now_ns=now),
            answered,
        )

    def _ack(self, worker: _Worker) -> None:
        item, token = worker.item, worker.token
        assert item is not None and token is not None

        def answered(result: QueueResult | None) -> None:
            if result is not None and not result.ok:
                self.stale_acks += 1
            # An unanswered ack may or may not have taken: the item comes back if it did not.
            worker.item = worker.token = None
            self._later(partial(self._claim, worker))

        self._request(lambda now: queue_ack(_QUEUE, item, token, now_ns=now), answered)

    # ---- raft faults --------------------------------------------------------------------

    def start(self) -> None:
        self._later(self._produce)
        for _ in range(self.options.workers):
            self._new_worker()
        if self.options.leader_pause_every_ns:
            self._later(self._pause_leader)


def run_queue_check(seed: int, options: QueueCheckOptions | None = None) -> QueueCheckReport:
    """Run the work-queue scenario for `seed`; the same seed gives the same run."""
    options = options or QueueCheckOptions()
    scenario = _Scenario(seed, options)
    cluster = scenario.cluster
    cluster.elect()
    scenario.start()
    cluster.run_for(options.duration_ns)
    leader = cluster.leader()
    remaining: list[int] = []
    if leader is not None:
        queue = cluster.replicas[leader].state_machine
        assert isinstance(queue, WorkQueue)
        remaining = [item for item, _, _ in queue.items(_QUEUE)]
    log = [scenario.log[index] for index in sorted(scenario.log)]
    violations = scenario.disagreements + queue_violations(log, remaining)
    if leader is None:
        violations.append("no leader at the end of the run")
    return QueueCheckReport(
        seed=seed,
        enqueued=sum(1 for op, result in log if op == "enqueue" and result.ok),
        acked=sum(1 for op, result in log if op == "ack" and result.ok),
        claims=sum(1 for op, result in log if op == "claim" and result.ok),
        stale_acks_refused=scenario.stale_acks,
        worker_stalls=scenario.stalls,
        worker_deaths=scenario.deaths,
        leader_pauses=scenario.leader_pauses,
        snapshots_installed=scenario.installs,
        violations=tuple(violations),
        trace_sha256=cluster.trace_sha256(),
    )
