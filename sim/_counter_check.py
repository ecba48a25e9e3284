"""The counter check: through leader pauses and lost proposals, a replicated `Counter` ends
holding exactly the adds that took effect.

A seeded scenario on a simulated `Cluster` of `Counter` replicas: clients add positive amounts
through the Raft leader, one at a time. An add answered with its result certainly took effect;
one refused (another term's entry took its index, or the node was not leader) certainly did not;
one left unanswered at its timeout is *unknown*: it may have taken effect, or may yet. At the end
every replica must hold the same value, and that value must lie between the sum of the
acknowledged adds and that sum plus every unknown add (`counter_bounds`). A client that wrongly
counts a timeout as a failure (plant one with ``CounterCheckOptions(timeouts_failed=True)``)
makes the check fail: its lost-looking adds show up in the total.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import attrs

from raft import Entry, LeadershipTransferInProgress, NotLeader
from sim._scenario import LeaderPausingScenario
from statemachines import Counter, CounterResult, counter_add

_NAME = "hits"


@attrs.frozen
class CounterCheckOptions:
    """The scenario's shape; times in simulated nanoseconds."""

    nodes: int = 3
    clients: int = 5
    duration_ns: int = 10_000_000_000
    quiet_ns: int = 3_000_000_000
    think_ns: tuple[int, int] = (10_000_000, 100_000_000)
    latency_ns: tuple[int, int] = (200_000, 2_000_000)
    request_timeout_ns: int = 300_000_000
    leader_pause_every_ns: int = 1_500_000_000
    leader_pause_ns: int = 600_000_000
    snapshot_every: int = 20
    """Every replica compacts its log every this many applied entries (0: never), so a replica
    that fell behind during a pause catches up by installing its leader's snapshot."""
    timeouts_failed: bool = False
    """PLANTED BUG when True: clients count an unanswered add as certainly not applied."""


@attrs.frozen
class CounterCheckReport:
    """What one run did and whether the final value is explained by the adds."""

    seed: int
    acknowledged: int
    failed: int
    unknown: int
    value: int
    low: int
    high: int
    leader_pauses: int
    snapshots_installed: int
    """Snapshots replicas installed from their leader (restored mid-run, then applied on)."""
    violation: str | None
    trace_sha256: str

    @property
    def clean(self) -> bool:
        """The replicas agree and the value lies within the adds' bounds."""
        return self.violation is None


def counter_bounds(values: list[int], low: int, high: int) -> str | None:
    """Whether every replica's final value (`values`) is one value within [low, high]."""
    if len(set(values)) != 1:
        return f"replicas hold different values: {values}"
    if not low <= values[0] <= high:
        return f"the counter holds {values[0]}, outside [{low}, {high}] that the adds explain"
    return None


class _Scenario(LeaderPausingScenario):
    def __init__(self, seed: int, options: CounterCheckOptions) -> None:
        super().__init__(
            seed,
            "counter-check",
            nodes=options.nodes,
            state_machine_factory=Counter,
            snapshot_every=options.snapshot_every,
            latency_ns=options.latency_ns,
            leader_pause_ns=options.leader_pause_ns,
            leader_pause_every_ns=options.leader_pause_every_ns,
        )
        self.options = options
        self.pending: dict[tuple[int, int], tuple[int, Callable[[str], None]]] = {}
        self.totals = {"ok": 0, "fail": 0, "info": 0}
        self.counts = {"ok": 0, "fail": 0, "info": 0}

    def _on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        waiting = self.pending.pop((node_id, entry.index), None)
        if waiting is not None:
            term, answer = waiting
            ok = entry.term == term and isinstance(result, CounterResult) and result.ok
            self._later(partial(answer, "ok" if ok else "fail"))

    def _client(self) -> None:
        if self.cluster.now >= self.options.duration_ns - self.options.quiet_ns:
            return
        delta = self.rng.randint(1, 10)
        answered = False

        def answer(outcome: str) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            if outcome == "info" and self.options.timeouts_failed:
                outcome = "fail"
            self.totals[outcome] += delta
            self.counts[outcome] += 1
            self._later(self._client, self.rng.randint(*self.options.think_ns))

        self._later(partial(answer, "info"), self.options.request_timeout_ns)
        leader = self.cluster.leader()
        if leader is None:
            self._later(partial(answer, "fail"), 20_000_000)
            return

        def arrive() -> None:
            cluster = self.cluster
            if cluster.is_paused(leader):
                return
            try:
                term, index = cluster.propose(leader, counter_add(_NAME, delta))
            except (NotLeader, LeadershipTransferInProgress):
                self._later(partial(answer, "fail"))
                return
            self.pending[(leader, index)] = (term, answer)

        self._later(arrive)

    def _may_pause_leader(self) -> bool:
        return self.cluster.now < self.options.duration_ns - self.options.quiet_ns


def run_counter_check(seed: int, options: CounterCheckOptions | None = None) -> CounterCheckReport:
    """Run the counter scenario for `seed`; the same seed gives the same run."""
    options = options or CounterCheckOptions()
    scenario = _Scenario(seed, options)
    cluster = scenario.cluster
    cluster.elect()
    for _ in range(options.clients):
        scenario._later(scenario._client, scenario.rng.randint(0, 100_000_000))
    if options.leader_pause_every_ns:
        scenario._later(scenario._pause_leader)
    cluster.run_for(options.duration_ns)
    values = []
    for replica in cluster.replicas.values():
        counter = replica.state_machine
        assert isinstance(counter, Counter)
        values.append(counter.get(_NAME))
    low = scenario.totals["ok"]
    high = low + scenario.totals["info"]
    return CounterCheckReport(
        seed=seed,
        acknowledged=scenario.counts["ok"],
        failed=scenario.counts["fail"],
        unknown=scenario.counts["info"],
        value=values[0],
        low=low,
        high=high,
        leader_pauses=scenario.leader_pauses,
        snapshots_installed=scenario.installs,
        violation=counter_bounds(values, low, high),
        trace_sha256=cluster.trace_sha256(),
    )
