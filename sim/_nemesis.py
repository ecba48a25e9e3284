"""Nemeses: the faults a run injects, on a seeded schedule.

A nemesis alternates quiet spells and faults: it waits a while, starts one fault of a kind drawn
from its list, lets it last a while, heals it, and starts over. Every fault is recorded (kind,
start, end, what exactly) for the verdict and the timeline. After each heal it measures how long
the cluster went on without a leader of the newest term: the recovery time.

Two kinds follow the cluster instead of a fixed schedule, to reach histories a random schedule
almost never does:

* `leader-churn` cuts off each new leader, together with a random minority of followers, 10-20
  ms after it takes office, for as long as the fault lasts. Every leader leaves
  uncommitted entries of its term on a minority, the next leader writes other entries at the
  same indexes, and a later leader must bring old-term entries to a majority: the history of
  the paper's Figure 8, where counting replicas of an old-term entry is not enough to commit it.
* `crash-restart` crashes every node at once (a power cut) and restarts it at once, so all
  election timers start together and elections often split; then, for as long as the fault
  lasts, it crashes and restarts each node right after it grants a vote (it hears of every
  change of a node's hard state), before the other candidates' requests arrive. A node that
  forgot its vote in the crash votes twice in a term.
* `transfer` asks the leader of the moment to hand leadership to a random other voter every
  few hundred milliseconds, for as long as the fault lasts (thesis §3.10), while other faults
  may cut the target off or drop the `TimeoutNow`: leadership moves under load, and the
  transfers that fail must give the leader its proposals back.

`membership` changes the leader's configuration at random (see `sim._membership_nemesis`).

A third, `snapshot`, is a condition like `clock-skew`, lasting while the next faults come and
go: every replica compacts its log every few (5-20) applied entries (paper §7), and one node is
cut off for a while at the start, so that once back it lags behind the leader's first index and
catches up by an installed snapshot. Runs that include it send snapshots in small chunks
(`RunOptions.snapshot_chunk_bytes`), so an install takes several round trips and overlaps with
whatever the network does.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import attrs

from raft import RaftError, RaftNode, Role
from sim._cluster import Cluster
from sim._membership_nemesis import MembershipChanges
from sim._network import LinkFaults

NEMESES = (
    "partition-halves",
    "partition-ring",
    "bridge",
    "isolate-leader",
    "one-way",
    "kill",
    "pause",
    "clock-skew",
    "flaky-net",
    "leader-churn",
    "crash-restart",
    "transfer",
    "membership",
    "snapshot",
)
"""Every kind of fault, by name; `all` picks among them at random."""

_QUICK_RESTART_NS = (20_000_000, 300_000_000)
_CHURN_NS = (5_000_000_000, 10_000_000_000)
"""A churn lasts long enough for several leaders: each takes an election timeout or two."""
_CHURN_CUT_NS = (10_000_000, 20_000_000)
"""How long after taking office a leader is cut off: a few round trips (messages take 1-5 ms
each way), enough to probe its followers and re-send them older entries, often too little for
its own first entry to reach a majority. Cutting earlier, before anything was re-sent, made
Figure 8 histories rarer in experiments, not more common."""
_CRASH_RESTART_NS = (2_000_000_000, 4_000_000_000)
"""Long enough to cover the election after the power cut (1-2 s of election timeout)."""
_TRANSFER_EVERY_NS = (200_000_000, 800_000_000)
"""Between two transfers: a few heartbeats, so a transfer often starts while the previous
leader's catch-up or `TimeoutNow` is still on its way."""
_SNAPSHOT_EVERY = (5, 20)
"""Applied entries between two snapshots while a `snapshot` fault lasts."""
_SNAPSHOT_CUT_NS = (300_000_000, 900_000_000)
"""How long a `snapshot` fault keeps its node cut off: shorter than any fault lasts and than
the quiet spell before the next fault, so it is back, catching up by snapshot, while the tiny
thresholds still hold, and its heal cannot end another fault's partition."""


@attrs.define
class Fault:
    """One injected fault: what, to whom, and when (simulated ns)."""

    kind: str
    detail: str
    start_ns: int
    end_ns: int | None = None

    def describe(self) -> str:
        """One line for humans: `kind (detail) from Xs to Ys`."""
        end = "the end" if self.end_ns is None else f"{self.end_ns / 1e9:.3f}s"
        return f"{self.kind} ({self.detail}) from {self.start_ns / 1e9:.3f}s to {end}"


Undo = Callable[[], None]


def parse_nemeses(spec: str) -> tuple[str, ...]:
    """Turn `all`, `none` or a comma-separated list of names into kinds; ValueError on unknown."""
    if spec == "all":
        return NEMESES
    if spec == "none":
        return ()
    kinds = tuple(name.strip() for name in spec.split(",") if name.strip())
    unknown = [kind for kind in kinds if kind not in NEMESES]
    if unknown or not kinds:
        raise ValueError(
            f"unknown nemesis {', '.join(unknown) or spec!r}; choose from all, none, "
            + ", ".join(NEMESES)
        )
    return kinds


class Nemesis:
    """Injects faults of `kinds` into a cluster until `stop_ns`, then heals everything."""

    def __init__(
        self,
        kinds: tuple[str, ...],
        rng: random.Random,
        on_crash: Callable[[int], None],
        quiet_ns: tuple[int, int] = (1_000_000_000, 3_000_000_000),
        fault_ns: tuple[int, int] = (1_000_000_000, 4_000_000_000),
    ) -> None:
        self.kinds = kinds
        self._rng = rng
        self._on_crash = on_crash
        self._quiet_ns = quiet_ns
        self._fault_ns = fault_ns
        self.faults: list[Fault] = []
        self.recoveries_ns: list[int] = []
        self._cluster: Cluster | None = None
        self._stop_ns = 0
        self._churn: int | None = None
        """While a `leader-churn` fault lasts, its number: cuts scheduled by an older one lapse."""
        self._rebooting_voters = False
        """Whether a `crash-restart` fault is on: nodes are rebooted right after they vote."""
        self._voted: set[tuple[int, int]] = set()
        """The (node, term) votes of the current `crash-restart` already rebooted after."""
        self._transfers: int | None = None
        """While a `transfer` fault lasts, its number: transfers scheduled by an older one lapse."""
        self._starters: dict[str, Callable[[Cluster], tuple[str, Undo]]] = {
            "partition-halves": self._partition_halves,
            "partition-ring": self._partition_ring,
            "bridge": self._bridge,
            "isolate-leader": self._isolate_leader,
            "one-way": self._one_way,
            "kill": self._kill,
            "pause": self._pause,
            "clock-skew": self._clock_skew,
            "flaky-net": self._flaky_net,
            "leader-churn": self._leader_churn,
            "crash-restart": self._crash_restart,
            "transfer": self._transfer,
            "membership": MembershipChanges(rng).start,
            "snapshot": self._snapshot,
        }

    def start(self, cluster: Cluster, stop_ns: int) -> None:
        """Schedule faults on `cluster`; none starts after `stop_ns`."""
        self._cluster = cluster
        self._stop_ns = stop_ns
        if "leader-churn" in self.kinds:
            cluster.leader_listeners.append(self._leader_took_office)
        if "crash-restart" in self.kinds:
            cluster.change_listeners.append(self._maybe_voted)
        if self.kinds:
            cluster.schedule(cluster.now + self._rng.randint(*self._quiet_ns), self._inject)

    def _inject(self) -> None:
        cluster = self._cluster
        assert cluster is not None
        if cluster.now >= self._stop_ns:
            return
        kind = self._rng.choice(self.kinds)
        detail, undo = self._starters[kind](cluster)
        fault = Fault(kind, detail, cluster.now)
        self.faults.append(fault)
        rng = self._rng
        # Half the kills are a crash and a supervisor's quick restart: the node is back while
        # the election it took part in is still going on, which is when forgotten votes bite.
        if kind == "kill" and rng.random() < 0.5:
            duration_range = _QUICK_RESTART_NS
        elif kind == "leader-churn":
            duration_range = _CHURN_NS
        elif kind == "crash-restart":
            duration_range = _CRASH_RESTART_NS
        else:
            duration_range = self._fault_ns
        end = min(cluster.now + rng.randint(*duration_range), self._stop_ns)
        if kind in ("clock-skew", "snapshot"):
            # A skewed clock is a condition, not an event: it lasts while the next faults come
            # and go, since a slow leader's lease is only dangerous once it is also cut off.
            # So is frequent compaction: installs matter most over a lossy, reordering network.
            cluster.schedule(end, lambda: self._heal(fault, undo, chain=False))
            cluster.schedule(cluster.now + rng.randint(*self._quiet_ns), self._inject)
        else:
            cluster.schedule(end, lambda: self._heal(fault, undo))

    def _heal(self, fault: Fault, undo: Undo, chain: bool = True) -> None:
        cluster = self._cluster
        assert cluster is not None
        undo()
        fault.end_ns = cluster.now
        healed_at = cluster.now
        self._watch_recovery(healed_at)
        if chain:
            cluster.schedule(cluster.now + self._rng.randint(*self._quiet_ns), self._inject)

    def _watch_recovery(self, healed_at: int) -> None:
        cluster = self._cluster
        assert cluster is not None
        if _has_current_leader(cluster):
            self.recoveries_ns.append(cluster.now - healed_at)
            return
        cluster.schedule(cluster.now + cluster.tick_ns, lambda: self._watch_recovery(healed_at))

    # ---- the faults: each starts one and returns (what it did, how to undo it) ------------

    def _shuffled(self, cluster: Cluster) -> list[int]:
        ids = sorted(cluster.replicas)
        self._rng.shuffle(ids)
        return ids

    def _partition_halves(self, cluster: Cluster) -> tuple[str, Undo]:
        ids = self._shuffled(cluster)
        minority, majority = sorted(ids[: len(ids) // 2]), sorted(ids[len(ids) // 2 :])
        cluster.network.partition(minority, majority)
        return f"{minority} | {majority}", cluster.network.heal

    def _partition_ring(self, cluster: Cluster) -> tuple[str, Undo]:
        ring = self._shuffled(cluster)
        size = len(ring)
        reach = (size // 2 + 1) // 2  # itself and 2*reach neighbours make a majority
        near = {
            (ring[i], ring[(i + step) % size])
            for i in range(size)
            for step in range(-reach, reach + 1)
        }
        cluster.network.cut((a, b) for a in ring for b in ring if a != b and (a, b) not in near)
        return f"ring {ring}, each sees {2 * reach + 1}", cluster.network.heal

    def _bridge(self, cluster: Cluster) -> tuple[str, Undo]:
        ids = self._shuffled(cluster)
        bridge, rest = ids[0], ids[1:]
        left, right = sorted(rest[: len(rest) // 2]), sorted(rest[len(rest) // 2 :])
        cluster.network.partition(left, right)
        return f"{left} | {right} joined by {bridge}", cluster.network.heal

    def _isolate_leader(self, cluster: Cluster) -> tuple[str, Undo]:
        leader = cluster.leader()
        target = leader if leader is not None else self._shuffled(cluster)[0]
        cluster.network.partition([target], [i for i in cluster.replicas if i != target])
        return f"node {target}" + (" (leader)" if leader is not None else ""), cluster.network.heal

    def _one_way(self, cluster: Cluster) -> tuple[str, Undo]:
        leader = cluster.leader()
        target = leader if leader is not None and self._rng.random() < 0.5 else None
        target = target if target is not None else self._shuffled(cluster)[0]
        others = [i for i in cluster.replicas if i != target]
        if self._rng.random() < 0.5:
            cluster.network.cut((other, target) for other in others)
            return f"node {target} cannot receive", cluster.network.heal
        cluster.network.cut((target, other) for other in others)
        return f"node {target} cannot send", cluster.network.heal

    def _kill(self, cluster: Cluster) -> tuple[str, Undo]:
        ids = self._shuffled(cluster)
        victims = sorted(ids[: self._rng.randint(1, (len(ids) - 1) // 2)])
        for node_id in victims:
            cluster.crash(node_id)
            self._on_crash(node_id)

        def restart() -> None:
            for node_id in victims:
                cluster.restart(node_id)

        return f"nodes {victims}", restart

    def _pause(self, cluster: Cluster) -> tuple[str, Undo]:
        leader = cluster.leader()
        target = leader if leader is not None and self._rng.random() < 0.5 else None
        target = target if target is not None else self._shuffled(cluster)[0]
        cluster.pause(target)
        return f"node {target}", lambda: cluster.resume(target)

    def _clock_skew(self, cluster: Cluster) -> tuple[str, Undo]:
        leader = cluster.leader()
        if leader is not None and self._rng.random() < 0.5:
            # A leader whose clock runs slow believes in its lease longer than its followers do.
            target, factor = leader, self._rng.choice((2.0, 4.0))
        else:
            target = self._shuffled(cluster)[0]
            factor = self._rng.choice((0.25, 0.5, 2.0, 4.0))
        cluster.tick_ns_of[target] = int(cluster.tick_ns * factor)

        def restore() -> None:
            cluster.tick_ns_of[target] = cluster.tick_ns

        speed = "slow" if factor > 1 else "fast"
        return f"node {target} ticks every {factor:g}x the interval ({speed})", restore

    def _flaky_net(self, cluster: Cluster) -> tuple[str, Undo]:
        normal = cluster.network.faults
        loss = self._rng.choice((0.05, 0.1, 0.2, 0.3))
        duplicate = self._rng.choice((0.05, 0.1, 0.2))
        cluster.network.faults = LinkFaults(
            normal.min_latency_ns, normal.max_latency_ns * 10, loss, duplicate
        )

        def restore() -> None:
            cluster.network.faults = normal

        return f"loss {loss:g}, duplicate {duplicate:g}, reordering latency", restore

    def _leader_churn(self, cluster: Cluster) -> tuple[str, Undo]:
        churn = len(self.faults)
        self._churn = churn
        leader = cluster.leader()
        if leader is not None:
            self._leader_took_office(leader, cluster.replicas[leader].node.term)

        def stop() -> None:
            self._churn = None
            cluster.network.heal()

        return "each new leader cut off with a minority soon after it takes office", stop

    def _leader_took_office(self, node_id: int, term: int) -> None:
        cluster = self._cluster
        churn = self._churn
        if cluster is None or churn is None:
            return
        delay = self._rng.randint(*_CHURN_CUT_NS)
        cluster.schedule(cluster.now + delay, lambda: self._cut_off(churn, node_id, term))

    def _cut_off(self, churn: int, node_id: int, term: int) -> None:
        """Put a leader in a minority with random partners; this heals the previous cut."""
        cluster = self._cluster
        assert cluster is not None
        node = cluster.replicas[node_id].node
        if churn != self._churn or node.role is not Role.LEADER or node.term != term:
            return
        others = self._shuffled(cluster)
        others.remove(node_id)
        partners = others[: self._rng.randint(0, (len(others) - 1) // 2)]
        minority = sorted([node_id, *partners])
        cluster.network.partition(minority, [i for i in others if i not in partners])

    def _crash_restart(self, cluster: Cluster) -> tuple[str, Undo]:
        for node_id in cluster.live():
            self._reboot(node_id)
        self._voted = set()
        self._rebooting_voters = True

        def stop() -> None:
            self._rebooting_voters = False

        return "every node at once, then each right after it grants a vote", stop

    def _snapshot(self, cluster: Cluster) -> tuple[str, Undo]:
        every = self._rng.randint(*_SNAPSHOT_EVERY)
        for replica in cluster.replicas.values():
            replica.snapshot_threshold = every
        target = self._shuffled(cluster)[0]
        cluster.network.partition([target], [i for i in cluster.replicas if i != target])

        # Healed before any other fault can start (the quiet spell after a condition is longer).
        cluster.schedule(cluster.now + self._rng.randint(*_SNAPSHOT_CUT_NS), cluster.network.heal)

        def stop() -> None:
            for replica in cluster.replicas.values():
                replica.snapshot_threshold = None

        return f"compact every {every} entries, node {target} cut off for a while", stop

    def _maybe_voted(self, node_id: int, node: RaftNode) -> None:
        """While `crash-restart` lasts: crash and restart a node that just granted a vote,
        before the other candidates' requests arrive (as soon as this event is done)."""
        if not self._rebooting_voters or node.vote in (None, node_id):
            return
        vote = (node_id, node.term)
        if vote not in self._voted:
            self._voted.add(vote)
            cluster = self._cluster
            assert cluster is not None
            cluster.schedule(cluster.now, lambda: self._reboot(node_id))

    def _reboot(self, node_id: int) -> None:
        cluster = self._cluster
        assert cluster is not None
        cluster.crash(node_id)
        self._on_crash(node_id)
        cluster.restart(node_id)

    def _transfer(self, cluster: Cluster) -> tuple[str, Undo]:
        transfers = len(self.faults)
        self._transfers = transfers
        self._hand_over(transfers)

        def stop() -> None:
            self._transfers = None

        return "the leader hands over to a random voter every 0.2-0.8 s", stop

    def _hand_over(self, transfers: int) -> None:
        """Ask the current leader, if any, to transfer to a random other voter; then again."""
        cluster = self._cluster
        assert cluster is not None
        if transfers != self._transfers:
            return
        leader = cluster.leader()
        if leader is not None and not cluster.is_paused(leader):
            node = cluster.replicas[leader].node
            membership = node.membership
            voters = membership.voters if membership is not None else ()
            others = [voter for voter in voters if voter != leader]
            if others:
                with contextlib.suppress(RaftError):
                    node.transfer_leadership(self._rng.choice(others))
                cluster.flush(leader)
        delay = self._rng.randint(*_TRANSFER_EVERY_NS)
        cluster.schedule(cluster.now + delay, lambda: self._hand_over(transfers))


def _has_current_leader(cluster: Cluster) -> bool:
    """Whether some running node leads in a term no live node has passed."""
    leader = cluster.leader()
    if leader is None or cluster.is_paused(leader):
        return False
    term = cluster.replicas[leader].node.term
    return all(cluster.replicas[node_id].node.term <= term for node_id in cluster.live())
