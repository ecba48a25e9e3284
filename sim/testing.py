"""A property-based harness that checks *your* `raft.StateMachine` under partitions and crashes.

Subclass `ReplicatedStateMachineTest`, name your state machine and a strategy for its commands,
and run the `TestCase` it gives you under pytest or unittest::

    class CheckCounter(ReplicatedStateMachineTest):
        state_machine_factory = Counter
        commands = st.integers(-9, 9).map(lambda n: n.to_bytes(1, "big", signed=True))

    TestCounter = CheckCounter.TestCase

Hypothesis then drives a seeded, simulated cluster of `nodes` replicas of your state machine
through a list of steps: `start(seed)` builds the cluster and elects a leader, then
`propose(commands)` proposes at the leader, `run(duration_ms)` lets simulated time pass,
`inject(faults)` schedules overlapping faults drawn from `sim.strategies` (partitions, one-way
cuts, crashes with restarts, pauses, clock skew, message loss and duplication) and `heal()`
ends those in effect. After every step it checks the Raft paper's Figure 3 properties, and
that your state machine is deterministic:

- election safety: at most one leader per term;
- log matching: two logs that share an entry (index and term) are identical up to it;
- state machine safety: every replica applies indexes 1, 2, 3, ... in order, and no two apply
  different entries at one index (across crashes, too);
- deterministic results: every application of one index returns an equal result (results
  whose type does not define `__eq__` are not compared);
- identical state: running replicas that have applied the same index hold the same state, as
  told by `state_digest()` when the state machine has one, else by `==` when its type defines
  `__eq__` (otherwise state is not compared);
- snapshot round trip: `restore(snapshot())` on a fresh machine holds the same state as the
  running replica it came from (compared like identical state; skipped for a machine without
  `snapshot`), so log compaction (paper §7) cannot change what a replica knows;
- bounded traffic: no message storm (see `max_messages_per_node_per_second`).

At teardown it heals every fault, lets the cluster run quietly, and checks convergence: every
replica is up and has applied the same commands up to the leader's last index, no index that
was ever applied is lost (durability), and every replica holds the same state.

A failure raises `AssertionError` whose message starts with the property's name, and Hypothesis
shrinks it to a minimal list of steps. The steps it prints replay the run exactly: the cluster's
seed is the argument of the first step (`state.start(seed=...)`), fault steps print as the
`sim.strategies` classes that rebuild them, and nothing else is random.

Add invariants of your own with `@invariant()` in the subclass; they can read `self.cluster`
(a `sim.Cluster`), `self.state_machines()` (your running state machines, by node id) and
`self.applied` (the (index, command) pairs each replica's current incarnation applied).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import attrs
from hypothesis import currently_in_test_context, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from raft import CommandTooLarge, Entry, EntryKind, NotLeader, SnapshotMetadata, StateMachine
from sim._cluster import Cluster
from sim._invariants import Violation, election_safety, log_matching
from sim.strategies import (
    FAULT_KINDS,
    FaultInjector,
    FaultStep,
    fault_schedules,
    proposal_target,
    seeds,
)

__all__ = ["ReplicatedStateMachineTest"]

_MS = 1_000_000
_TRAFFIC_WINDOW_NS = 100 * _MS


@attrs.frozen
class _FirstApplication:
    node: int
    entry: Entry
    result: object


def _comparable(value: object) -> bool:
    return type(value).__eq__ is not object.__eq__


def _same(a: object, b: object) -> bool:
    # NaN is not equal to itself, but two replicas both answering NaN agree.
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return both_nan or bool(a == b)


def _state_of(machine: object) -> tuple[bool, object]:
    """(whether the state can be compared, what to compare)."""
    digest = getattr(machine, "state_digest", None)
    if callable(digest):
        return True, digest()
    if _comparable(machine):
        return True, machine
    return False, None


class ReplicatedStateMachineTest(RuleBasedStateMachine):
    """Checks a user's `raft.StateMachine`, replicated by Raft, under injected faults.

    Set in the body of the subclass (its rules are built from these when the class is made):

    - `state_machine_factory` (required): makes one empty state machine; called once per
      replica and again whenever a replica restarts. Usually the class itself.
    - `commands` (required): a Hypothesis `SearchStrategy[bytes]` of commands to propose.
    - `nodes`: the cluster size (3).
    - `fault_kinds`: which `sim.strategies` fault steps to inject (all of `FAULT_KINDS`).
    - `raft_options`: `raft.Config` options for every node, such as `{"pre_vote": False}`.
    - `convergence_timeout_ns`: how much quiet simulated time teardown allows (10 s).
    - `max_messages_per_node_per_second`: above this rate of simulated traffic (50,000; a
      healthy cluster sends a few hundred, and bursts of a few thousand under duplication) a
      run fails as a message storm, rather than crawling on.

    Set Hypothesis settings on the generated test: `MyTest.TestCase.settings = settings(...)`.
    """

    state_machine_factory: ClassVar[Callable[[], StateMachine]]
    commands: ClassVar[st.SearchStrategy[bytes]]
    nodes: ClassVar[int] = 3
    fault_kinds: ClassVar[tuple[type[FaultStep], ...]] = FAULT_KINDS
    raft_options: ClassVar[Mapping[str, Any]] = {}
    convergence_timeout_ns: ClassVar[int] = 10_000 * _MS
    max_messages_per_node_per_second: ClassVar[int] = 50_000

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Build the rules whose strategies depend on the subclass's `commands` and `nodes`."""
        super().__init_subclass__(**kwargs)
        commands = getattr(cls, "commands", None)
        if commands is None:
            return
        if not isinstance(commands, st.SearchStrategy):
            raise TypeError(
                f"{cls.__name__}.commands must be a hypothesis SearchStrategy of bytes, "
                f"got {commands!r}"
            )
        nodes = cls.nodes
        if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= 9:
            raise ValueError(f"{cls.__name__}.nodes must be an integer from 1 to 9, got {nodes!r}")
        for generated in ("propose", "inject"):
            if generated in vars(cls):
                raise TypeError(
                    f"{cls.__name__} defines {generated}, but the harness generates that rule; "
                    "give your own rule another name"
                )
        schedules = fault_schedules(
            nodes,
            kinds=cls.fault_kinds,
            min_faults=1,
            max_faults=3,
            horizon_ns=1_000 * _MS,
            max_for_ns=3_000 * _MS,
        )
        # These rules replace the plain methods of the same names (setattr: mypy forbids
        # assigning to a method, and the plain methods keep `state.propose(...)` typed).
        proposals = st.lists(commands, min_size=1, max_size=3)
        setattr(cls, "propose", _propose_rule(proposals))  # noqa: B010
        setattr(cls, "inject", _inject_rule(schedules))  # noqa: B010

    def __init__(self) -> None:
        super().__init__()
        self._cluster: Cluster | None = None
        self._injector: FaultInjector | None = None
        self.applied: dict[int, list[tuple[int, bytes]]] = {}
        """Per node, the (index, command) pairs its current incarnation applied, in order."""
        self._last_applied: dict[int, int] = {}
        self._first_applications: dict[int, _FirstApplication] = {}
        self._violations: dict[str, Violation] = {}
        self._traffic_window = (0, 0)
        # Teardown must not add a second failure on top of one already propagating.
        self._exception_at_start = sys.exception()

    # ---- for subclasses --------------------------------------------------------------------

    @property
    def cluster(self) -> Cluster:
        """The simulated cluster (available once the `start` step ran)."""
        if self._cluster is None:
            raise RuntimeError("the cluster exists only after the start step")
        return self._cluster

    def state_machines(self) -> dict[int, StateMachine]:
        """The state machines of the running replicas (paused ones included), by node id."""
        return {
            node_id: replica.state_machine
            for node_id, replica in self.cluster.replicas.items()
            if replica.up
        }

    # ---- steps -----------------------------------------------------------------------------

    @initialize(seed=seeds())
    def start(self, seed: int) -> None:
        """Build the cluster from `seed` and elect its first leader."""
        factory = getattr(type(self), "state_machine_factory", None)
        if factory is None:
            raise TypeError(
                f"{type(self).__name__} must set state_machine_factory (your raft.StateMachine "
                "class) and commands (a SearchStrategy of bytes)"
            )
        if currently_in_test_context():
            note(f"# cluster seed {seed}; the steps below replay this run")
        node_ids = range(1, type(self).nodes + 1)
        self.applied = {node_id: [] for node_id in node_ids}
        self._last_applied = dict.fromkeys(node_ids, 0)
        cluster = Cluster(
            node_ids,
            seed=seed,
            state_machine_factory=factory,
            on_apply=self._record_apply,
            on_snapshot=self._record_snapshot,
            **type(self).raft_options,
        )
        self._cluster = cluster
        self._traffic_window = (cluster.now, cluster.network.sent)
        self._injector = FaultInjector(cluster, on_crash=self._forget_incarnation)
        with self._explaining():
            cluster.elect()

    def propose(self, commands: Sequence[bytes]) -> None:
        """Propose `commands` at the leader; with no leader, or when refused, they are dropped.

        A rule (drawing from `commands`) in every subclass that sets `commands`.
        """
        cluster = self.cluster
        target = proposal_target(cluster)
        if target is None:
            return
        with self._explaining():
            for command in commands:
                try:
                    cluster.propose(target, command)
                except (NotLeader, CommandTooLarge):
                    return

    def inject(self, faults: Sequence[FaultStep]) -> None:
        """Start each fault `at_ns` from now, for `for_ns`.

        A rule (drawing from `sim.strategies.fault_schedules`) in every subclass that sets
        `commands`.
        """
        assert self._injector is not None
        self._injector.apply(faults)

    @rule(duration_ms=st.integers(1, 2_000))
    def run(self, duration_ms: int) -> None:
        """Let `duration_ms` milliseconds of simulated time pass."""
        with self._explaining():
            self._run(duration_ms * _MS)

    @precondition(lambda self: self._injector is not None and self._injector.active)
    @rule()
    def heal(self) -> None:
        """End every fault in effect now (faults scheduled to start later still will)."""
        assert self._injector is not None
        with self._explaining():
            self._injector.heal(cancel_pending=False)

    # ---- what each step is checked against -------------------------------------------------

    @invariant()
    def at_most_one_leader_per_term(self) -> None:
        """At most one leader per term (§5.2)."""
        self._fail_on(election_safety(self.cluster.leaders_by_term))

    @invariant()
    def logs_match(self) -> None:
        """Logs sharing an entry are identical up to it (§5.3); running replicas only."""
        self._fail_on(
            log_matching(
                {
                    node_id: replica.node.log_entries(1, replica.node.last_index + 1)
                    for node_id, replica in self.cluster.replicas.items()
                    if replica.up
                }
            )
        )

    @invariant()
    def applied_entries_agree(self) -> None:
        """Indexes applied in order, and one entry per index everywhere (§5.4.3)."""
        self._fail_on(self._violations.get("state machine safety"))

    @invariant()
    def results_are_deterministic(self) -> None:
        """Every application of an index returned an equal result."""
        self._fail_on(self._violations.get("deterministic results"))

    @invariant()
    def states_agree(self) -> None:
        """Running replicas at the same applied index hold the same state."""
        self._fail_on(self._state_divergence(self.cluster.live()))

    @invariant()
    def snapshots_restore_the_same_state(self) -> None:
        """A fresh machine restored from a running replica's snapshot holds its state (§7)."""
        factory = type(self).state_machine_factory
        for node_id, machine in self.state_machines().items():
            take = getattr(machine, "snapshot", None)
            comparable, state = _state_of(machine)
            if not callable(take) or not comparable:
                return
            restored = factory()
            restored.restore(take())
            _, restored_state = _state_of(restored)
            if not _same(state, restored_state):
                self._fail_on(
                    Violation(
                        "snapshot round trip",
                        f"node {node_id} holds {state!r}, but a machine restored from its "
                        f"snapshot holds {restored_state!r}",
                        self.cluster.now,
                    )
                )

    def teardown(self) -> None:
        """Heal everything, run quietly, and check that every replica converged."""
        if self._cluster is None or sys.exception() is not self._exception_at_start:
            return
        cluster = self._cluster
        assert self._injector is not None
        with self._explaining():
            self._injector.heal()
            converged = self._run(type(self).convergence_timeout_ns, until=self._converged)
        if not converged:
            self._fail_on(
                Violation(
                    "convergence",
                    f"{type(self).convergence_timeout_ns / 1e9:g}s after every fault healed "
                    f"the replicas still disagree: {self._describe_replicas()}",
                    cluster.now,
                )
            )
        # The quiet period ran after the last per-step check, so check everything once more.
        self.at_most_one_leader_per_term()
        self.logs_match()
        self.applied_entries_agree()
        self.results_are_deterministic()
        self._fail_on(self._final_divergence())

    # ---- bookkeeping -----------------------------------------------------------------------

    def _run(self, duration_ns: int, until: Callable[[], bool] | None = None) -> bool:
        """Run for `duration_ns`, or, given `until`, only until it holds (checked every tick);
        True if `until` held. Every 100 ms of simulated time the traffic is checked."""
        cluster = self.cluster
        end = cluster.now + duration_ns
        slice_ns = cluster.tick_ns if until is not None else _TRAFFIC_WINDOW_NS
        while True:
            if until is not None and until():
                return True
            if cluster.now >= end:
                return False
            cluster.run_for(min(slice_ns, end - cluster.now))
            self._check_traffic()

    def _check_traffic(self) -> None:
        cluster = self.cluster
        started, sent_before = self._traffic_window
        elapsed = cluster.now - started
        if elapsed < _TRAFFIC_WINDOW_NS:
            return
        sent = cluster.network.sent - sent_before
        self._traffic_window = (cluster.now, cluster.network.sent)
        limit = type(self).max_messages_per_node_per_second * len(cluster.replicas)
        if sent * 1_000_000_000 > limit * elapsed:
            self._fail_on(
                Violation(
                    "bounded traffic",
                    f"{sent} messages sent in {elapsed / 1e6:g} ms of simulated time, more than "
                    f"{type(self).max_messages_per_node_per_second} per node per second: a "
                    "message storm",
                    cluster.now,
                )
            )

    def _record_apply(self, node_id: int, entry: Entry, result: object) -> None:
        last = self._last_applied[node_id]
        if entry.index != last + 1:
            self._flag(
                "state machine safety",
                f"node {node_id} applied index {entry.index} right after index {last}",
            )
        self._last_applied[node_id] = entry.index
        if entry.kind == EntryKind.COMMAND:
            self.applied[node_id].append((entry.index, entry.data))
        first = self._first_applications.setdefault(
            entry.index, _FirstApplication(node_id, entry, result)
        )
        if first.entry != entry:
            self._flag(
                "state machine safety",
                f"index {entry.index}: node {first.node} applied {first.entry!r}, "
                f"node {node_id} applied {entry!r}",
            )
        elif (
            entry.kind == EntryKind.COMMAND
            and _comparable(result)
            and not _same(first.result, result)
        ):
            self._flag(
                "deterministic results",
                f"index {entry.index} ({entry.data!r}) gave {first.result!r} on node "
                f"{first.node} but {result!r} on node {node_id}: apply must depend only on the "
                "command and the state",
            )

    def _record_snapshot(
        self, node_id: int, metadata: SnapshotMetadata, data: bytes, applied_before: int
    ) -> None:
        """A replica that installs a snapshot skips to its index: it now holds what the first
        replicas to apply those entries applied (state machine safety checks that they agree)."""
        if metadata.index > applied_before:
            self._skip_to(node_id, metadata.index)

    def _forget_incarnation(self, node_id: int) -> None:
        """A crashed replica restarts from its stored snapshot, or empty, and re-applies the
        committed log after it."""
        snapshot = self.cluster.replicas[node_id].storage.snapshot()
        self._skip_to(node_id, 0 if snapshot is None else snapshot.metadata.index)

    def _skip_to(self, node_id: int, index: int) -> None:
        firsts = self._first_applications
        self.applied[node_id] = [
            (position, firsts[position].entry.data)
            for position in range(1, index + 1)
            if position in firsts and firsts[position].entry.kind == EntryKind.COMMAND
        ]
        self._last_applied[node_id] = index

    def _flag(self, prop: str, detail: str) -> None:
        now = self._cluster.now if self._cluster is not None else None
        self._violations.setdefault(prop, Violation(prop, detail, now))

    def _state_divergence(self, node_ids: Sequence[int]) -> Violation | None:
        replicas = self.cluster.replicas
        by_index: dict[int, tuple[int, object]] = {}
        for node_id in node_ids:
            comparable, state = _state_of(replicas[node_id].state_machine)
            if not comparable:
                return None
            index = self._last_applied[node_id]
            first = by_index.setdefault(index, (node_id, state))
            if not _same(first[1], state):
                return Violation(
                    "identical state",
                    f"nodes {first[0]} and {node_id} both applied up to index {index} but hold "
                    f"different states: {first[1]!r} vs {state!r}",
                    self.cluster.now,
                )
        return None

    def _converged(self) -> bool:
        cluster = self.cluster
        leader = proposal_target(cluster)
        if leader is None:
            return False
        last = cluster.replicas[leader].node.last_index
        return all(
            replica.up and replica.node.last_index == last and replica.node.applied_index == last
            for replica in cluster.replicas.values()
        )

    def _final_divergence(self) -> Violation | None:
        cluster = self.cluster
        node_ids = sorted(cluster.replicas)
        reference = node_ids[0]
        for node_id in node_ids[1:]:
            if self.applied[node_id] != self.applied[reference]:
                return Violation(
                    "convergence",
                    f"after healing, node {reference} applied {self.applied[reference]!r} but "
                    f"node {node_id} applied {self.applied[node_id]!r}",
                    cluster.now,
                )
        highest = max(self._first_applications, default=0)
        final = self._last_applied[reference]
        if highest > final:
            return Violation(
                "durability",
                f"index {highest} was applied (by node "
                f"{self._first_applications[highest].node}) but after healing every replica "
                f"stops at index {final}",
                cluster.now,
            )
        return self._state_divergence(node_ids)

    def _describe_replicas(self) -> str:
        parts = []
        for node_id, replica in sorted(self.cluster.replicas.items()):
            node = replica.node
            status = "up" if replica.up else "down"
            parts.append(
                f"node {node_id} {status} {node.role.name.lower()} of term {node.term}, "
                f"last index {node.last_index}, commit {node.commit_index}, "
                f"applied {node.applied_index}"
            )
        return "; ".join(parts)

    def _fail_on(self, violation: Violation | None) -> None:
        if violation is None:
            return
        raise AssertionError(f"{violation}\n{self._replay_hint()}")

    def _replay_hint(self) -> str:
        seed = self._cluster.seed if self._cluster is not None else None
        return (
            f"cluster seed {seed}; the steps Hypothesis prints above replay this run exactly "
            "(state.start(seed=...) builds the same cluster)"
        )

    @contextmanager
    def _explaining(self) -> Iterator[None]:
        """Say which run an unexpected error (say, from the state machine's apply) came from."""
        try:
            yield
        except AssertionError:
            raise  # a violation, which explains itself
        except Exception as error:
            error.add_note(
                f"while driving the simulated cluster at {self.cluster.now / 1e9:.3f}s; "
                f"{self._replay_hint()}. A raft.StateMachine's apply must return errors as "
                "results, never raise."
            )
            raise


def _propose_rule(commands: st.SearchStrategy[list[bytes]]) -> Callable[..., None]:
    """A fresh `propose` rule (Hypothesis marks a function as a rule only once, and each
    subclass draws from its own strategy)."""

    @rule(commands=commands)
    def propose(self: ReplicatedStateMachineTest, commands: list[bytes]) -> None:
        ReplicatedStateMachineTest.propose(self, commands)

    propose.__doc__ = ReplicatedStateMachineTest.propose.__doc__

    return propose


def _inject_rule(faults: st.SearchStrategy[list[FaultStep]]) -> Callable[..., None]:
    """A fresh `inject` rule drawing schedules from `faults`."""

    @rule(faults=faults)
    def inject(self: ReplicatedStateMachineTest, faults: list[FaultStep]) -> None:
        ReplicatedStateMachineTest.inject(self, faults)

    inject.__doc__ = ReplicatedStateMachineTest.inject.__doc__

    return inject
