"""`sim.testing` and `sim.strategies`: a correct state machine passes the harness, planted bugs
fail it under the right property's name, printed steps replay, and schedules are valid, compose
and shrink to the fewest, shortest faults.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, run_state_machine_as_test

from raft import Entry, EntryKind
from raft.core._log import RaftLog
from sim import Cluster, election_safety, strategies
from sim.strategies import (
    ClockSkew,
    Crash,
    FaultInjector,
    FaultStep,
    Flaky,
    OneWay,
    Partition,
    Pause,
    Proposal,
    apply_schedule,
    apply_workload,
    fault_schedules,
    kv_commands,
    partitions,
    seeds,
    workloads,
)
from sim.testing import ReplicatedStateMachineTest
from statemachines import KVStore

MS = 1_000_000

# Planted bugs must be found in a handful of examples; the explain phase re-runs failures under
# a tracer and is slow, and the database would make the outcome depend on earlier runs.
FIND_BUG = settings(
    max_examples=50,
    stateful_step_count=10,
    database=None,
    phases=[Phase.generate, Phase.shrink],
)


# ---- a correct state machine passes -------------------------------------------------------


class CheckKVStore(ReplicatedStateMachineTest):
    """The ready-made KV store, replicated on three nodes."""

    state_machine_factory = KVStore
    commands = kv_commands()


CheckKVStore.TestCase.settings = settings(max_examples=50, stateful_step_count=30)
TestKVStorePassesTheHarness = CheckKVStore.TestCase


def int_command(amount: int) -> bytes:
    return amount.to_bytes(2, "big", signed=True)


AMOUNTS = st.integers(-50, 50).map(int_command)


class Counter:
    """A correct counter: each command adds a signed amount."""

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: bytes) -> int:
        self.total += int.from_bytes(command, "big", signed=True)
        return self.total

    def snapshot(self) -> bytes:
        return str(self.total).encode()

    def restore(self, data: bytes) -> None:
        self.total = int(data)

    def state_digest(self) -> int:
        return self.total


class CheckCounterOnFiveNodes(ReplicatedStateMachineTest):
    """A user invariant with a model: each replica's total is the sum of what it applied."""

    state_machine_factory = Counter
    commands = AMOUNTS
    nodes = 5

    @invariant()
    def totals_match_the_applied_commands(self) -> None:
        for node_id, machine in self.state_machines().items():
            assert isinstance(machine, Counter)
            expected = sum(int.from_bytes(c, "big", signed=True) for _, c in self.applied[node_id])
            assert machine.total == expected, f"node {node_id}: {machine.total} != {expected}"


CheckCounterOnFiveNodes.TestCase.settings = settings(max_examples=10, stateful_step_count=20)
TestCounterOnFiveNodesPassesItsOwnInvariant = CheckCounterOnFiveNodes.TestCase


class CheckCounterWithCompaction(CheckCounterOnFiveNodes):
    """Replicas compact every few entries and catch up by snapshots sent in tiny chunks: a
    replica that installs one, or restarts from one, skips to its index (paper §7), and the
    harness must take that as applying what the others applied up to there."""

    nodes = 3
    raft_options: ClassVar[Mapping[str, Any]] = {
        "snapshot_threshold_entries": 4,
        "max_snapshot_chunk_bytes": 2,
    }


CheckCounterWithCompaction.TestCase.settings = settings(max_examples=25, stateful_step_count=30)
TestCounterWithCompactionPassesTheHarness = CheckCounterWithCompaction.TestCase


# ---- planted bugs fail, named by the property they break ----------------------------------

_shared_by_every_replica = itertools.count(1)


class SharedCounterLeak:
    """Non-deterministic: every replica draws from one process-wide counter, so the same
    command at the same index gives each replica a different result."""

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: bytes) -> int:
        self.total += next(_shared_by_every_replica)
        return self.total


class CheckSharedCounterLeak(ReplicatedStateMachineTest):
    state_machine_factory = SharedCounterLeak
    commands = st.binary(min_size=1, max_size=2)


def test_results_that_differ_between_replicas_are_caught() -> None:
    with pytest.raises(AssertionError, match=r"^deterministic results violated") as caught:
        run_state_machine_as_test(CheckSharedCounterLeak, settings=FIND_BUG)
    steps = "\n".join(getattr(caught.value, "__notes__", []))
    assert "state.start(seed=" in steps, steps
    assert "cluster seed" in str(caught.value)


_replicas_made = itertools.count()


@attrs.define
class PerReplicaScale:
    """Non-deterministic state, deterministic (None) results: each replica scales what it
    adds by a number fixed when it was made, as state that depended on `id()` would."""

    total: int = 0
    scale: int = attrs.field(factory=lambda: next(_replicas_made) % 2 + 1, eq=False)

    def apply(self, command: bytes) -> None:
        self.total += self.scale * len(command)


class CheckPerReplicaScale(ReplicatedStateMachineTest):
    state_machine_factory = PerReplicaScale
    commands = st.binary(min_size=1, max_size=2)


def test_state_that_differs_at_one_applied_index_is_caught_through_eq() -> None:
    with pytest.raises(AssertionError, match=r"^identical state violated"):
        run_state_machine_as_test(CheckPerReplicaScale, settings=FIND_BUG)


class WrappingCounter(Counter):
    """Deterministic but wrong: the total silently wraps at 100."""

    def apply(self, command: bytes) -> int:
        self.total = (self.total + int.from_bytes(command, "big", signed=True)) % 100
        return self.total


class CheckWrappingCounter(CheckCounterOnFiveNodes):
    state_machine_factory = WrappingCounter
    nodes = 3


def test_a_user_invariant_failure_shrinks_and_its_printed_steps_replay() -> None:
    with pytest.raises(AssertionError, match=r"!=") as caught:
        run_state_machine_as_test(CheckWrappingCounter, settings=FIND_BUG)
    printed = [line for line in getattr(caught.value, "__notes__", []) if line.startswith("state")]
    assert printed[0] == "state = CheckWrappingCounter()", printed
    assert any(line.startswith("state.propose(") for line in printed), printed
    namespace = {"CheckWrappingCounter": CheckWrappingCounter, **vars(strategies)}
    with pytest.raises(AssertionError, match=r"!="):
        exec("\n".join(printed), namespace)


def test_a_raft_that_ignores_the_election_restriction_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A planted core bug: voters grant votes to candidates with stale logs (§5.4.1), so a
    leader can lack committed entries and overwrite them. Only generation runs: shrinking this
    one takes half a minute."""
    monkeypatch.setattr(RaftLog, "is_up_to_date", lambda self, last_index, last_term: True)
    with pytest.raises(AssertionError, match=r"^(state machine safety|durability) violated"):
        run_state_machine_as_test(
            CheckKVStore,
            settings=settings(
                max_examples=300, stateful_step_count=50, database=None, phases=[Phase.generate]
            ),
        )


class ForgetfulSnapshotCounter(Counter):
    """A snapshot that loses the state: a compacted or caught-up replica would start over."""

    def snapshot(self) -> bytes:
        return b"0"


class CheckForgetfulSnapshotCounter(ReplicatedStateMachineTest):
    state_machine_factory = ForgetfulSnapshotCounter
    commands = AMOUNTS.filter(lambda command: command != int_command(0))


def test_a_snapshot_that_does_not_restore_the_state_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"^snapshot round trip violated"):
        run_state_machine_as_test(CheckForgetfulSnapshotCounter, settings=FIND_BUG)


class RaisesOnBoom:
    """Breaks the `raft.StateMachine` contract: raises instead of returning an error result."""

    def apply(self, command: bytes) -> None:
        if command == b"boom":
            raise ValueError("boom")


class CheckRaisesOnBoom(ReplicatedStateMachineTest):
    state_machine_factory = RaisesOnBoom
    commands = st.sampled_from([b"ok", b"boom"])


def test_an_apply_that_raises_fails_with_a_note_saying_where() -> None:
    with pytest.raises(ValueError, match="boom") as caught:
        run_state_machine_as_test(CheckRaisesOnBoom, settings=FIND_BUG)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "apply must return errors as results, never raise" in notes
    assert "cluster seed" in notes


# ---- the harness's own checks fail on violating input -------------------------------------


def started(machine_class: type[ReplicatedStateMachineTest]) -> ReplicatedStateMachineTest:
    machine = machine_class()
    machine.start(seed=1)
    return machine


def test_two_entries_applied_at_one_index_violate_state_machine_safety() -> None:
    machine = started(CheckKVStore)
    machine.run(duration_ms=100)
    replicas = machine.cluster.replicas
    index = replicas[1].node.applied_index + 1
    assert replicas[2].node.applied_index + 1 == index
    machine._record_apply(1, Entry(5, index, b"x"), None)
    machine._record_apply(2, Entry(5, index, b"y"), None)
    with pytest.raises(
        AssertionError, match=rf"^state machine safety violated at [0-9.]+s: index {index}:"
    ):
        machine.applied_entries_agree()


def test_applying_an_index_out_of_order_violates_state_machine_safety() -> None:
    machine = started(CheckKVStore)
    skipped_to = machine.cluster.replicas[3].node.applied_index + 2
    machine._record_apply(3, Entry(1, skipped_to, b"", EntryKind.NOOP), None)
    with pytest.raises(AssertionError, match=r"node 3 applied index \d+ right after index \d+"):
        machine.applied_entries_agree()


class CheckKVStoreImpatiently(CheckKVStore):
    convergence_timeout_ns = 1


def test_a_cluster_that_has_not_converged_by_teardown_fails() -> None:
    machine = started(CheckKVStoreImpatiently)
    leader = machine.cluster.leader()
    assert leader is not None
    machine.propose(commands=[b"not a command"])
    machine.inject(faults=[Crash(leader, at_ns=0, for_ns=500 * MS)])
    machine.run(duration_ms=10)
    with pytest.raises(AssertionError, match=r"^convergence violated"):
        machine.teardown()


class CheckKVStoreQuietly(CheckKVStore):
    max_messages_per_node_per_second = 1


def test_a_message_storm_fails_instead_of_running_on() -> None:
    machine = started(CheckKVStoreQuietly)
    with pytest.raises(AssertionError, match=r"^bounded traffic violated"):
        machine.run(duration_ms=200)


def test_a_subclass_without_a_commands_strategy_is_refused() -> None:
    with pytest.raises(TypeError, match="commands must be a hypothesis SearchStrategy"):
        type("Broken", (ReplicatedStateMachineTest,), {"commands": [b"a"]})


def test_a_subclass_overriding_a_generated_rule_is_refused() -> None:
    with pytest.raises(TypeError, match="defines propose, but the harness generates that rule"):
        type(
            "Broken",
            (ReplicatedStateMachineTest,),
            {"commands": st.just(b"a"), "propose": lambda self, commands: None},
        )


# ---- strategies: valid, composable, shrinking ---------------------------------------------


@settings(max_examples=30)
@given(
    seed=seeds(),
    schedule=fault_schedules(3, max_faults=5, horizon_ns=1_000 * MS),
    workload=workloads(kv_commands(), max_ops=10, horizon_ns=1_000 * MS),
)
def test_any_schedule_runs_and_every_fault_ends_on_time(
    seed: int, schedule: list[FaultStep], workload: list[Proposal]
) -> None:
    cluster = Cluster(range(1, 4), seed=seed, state_machine_factory=KVStore)
    base_faults = cluster.network.faults
    injector = apply_schedule(cluster, schedule)
    accepted = apply_workload(cluster, workload)
    cluster.run_for(1_000 * MS + 3_000 * MS + MS)
    assert injector.active == []
    assert cluster.live() == [1, 2, 3]
    assert not any(cluster.is_paused(node) for node in cluster.replicas)
    assert cluster.network.blocked_links() == []
    assert cluster.network.faults == base_faults
    assert set(cluster.tick_ns_of.values()) == {cluster.tick_ns}
    assert election_safety(cluster.leaders_by_term) is None
    assert len(accepted) <= len(workload)


def test_one_schedule_and_seed_give_one_trace() -> None:
    schedule: list[FaultStep] = [
        Partition(((1,), (2, 3)), at_ns=100 * MS, for_ns=700 * MS),
        Crash(2, at_ns=300 * MS, for_ns=400 * MS),
        Flaky(0.2, 0.1, at_ns=0, for_ns=2_000 * MS),
        ClockSkew(3, 0.5, at_ns=0, for_ns=1_000 * MS),
    ]
    traces = []
    for _ in range(2):
        cluster = Cluster(range(1, 4), seed=7, state_machine_factory=KVStore)
        apply_schedule(cluster, schedule)
        apply_workload(cluster, [Proposal(t * 50 * MS, b"%d" % t) for t in range(20)])
        cluster.run_for(3_000 * MS)
        traces.append(cluster.trace_sha256())
    assert traces[0] == traces[1]


def injector_on_three_nodes() -> tuple[Cluster, FaultInjector]:
    cluster = Cluster(range(1, 4), seed=3, state_machine_factory=KVStore)
    return cluster, FaultInjector(cluster)


def test_overlapping_crashes_keep_a_node_down_until_the_last_ends() -> None:
    cluster, injector = injector_on_three_nodes()
    injector.apply([Crash(2, at_ns=0, for_ns=300 * MS), Crash(2, at_ns=100 * MS, for_ns=500 * MS)])
    cluster.run_for(400 * MS)
    assert 2 not in cluster.live()
    cluster.run_for(201 * MS)
    assert 2 in cluster.live()
    assert [event for _, node, event in cluster.node_events if node == 2] == ["crash", "restart"]


def test_a_link_stays_cut_while_any_fault_covers_it() -> None:
    cluster, injector = injector_on_three_nodes()
    partition = injector.start(Partition(((1,), (2, 3))))
    one_way = injector.start(OneWay(1, 2))
    injector.stop(partition)
    assert cluster.network.blocked_links() == [(1, 2)]
    injector.stop(one_way)
    assert cluster.network.blocked_links() == []


def test_a_crash_during_a_pause_comes_back_paused() -> None:
    cluster, injector = injector_on_three_nodes()
    pause = injector.start(Pause(3))
    crash = injector.start(Crash(3))
    injector.stop(crash)
    assert cluster.is_paused(3)
    injector.stop(pause)
    assert not cluster.is_paused(3)


def test_overlapping_loss_compounds_and_ends_with_the_last_spell() -> None:
    cluster, injector = injector_on_three_nodes()
    first = injector.start(Flaky(0.5))
    second = injector.start(Flaky(0.5, duplicate=0.1))
    assert cluster.network.faults.loss == pytest.approx(0.75)
    assert cluster.network.faults.duplicate == 0.1
    injector.stop(first)
    injector.stop(second)
    assert cluster.network.faults.loss == 0.0


def test_heal_ends_active_faults_and_cancels_pending_ones() -> None:
    cluster, injector = injector_on_three_nodes()
    injector.apply([Crash(1, at_ns=0, for_ns=1_000 * MS), Pause(2, at_ns=500 * MS)])
    cluster.run_for(100 * MS)
    injector.heal()
    cluster.run_for(2_000 * MS)
    assert cluster.live() == [1, 2, 3]
    assert not cluster.is_paused(2)
    assert injector.active == []


def test_invalid_steps_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="groups"):
        Partition(((1, 2), (2, 3)))
    with pytest.raises(ValueError, match="for_ns"):
        Crash(1, for_ns=0)
    with pytest.raises(ValueError, match="loss"):
        Flaky(1.5)
    with pytest.raises(ValueError, match="factor"):
        ClockSkew(1, 0.0)


def test_any_crash_shrinks_to_one_short_early_crash_of_node_1() -> None:
    minimal = find(
        fault_schedules(5),
        lambda schedule: any(isinstance(step, Crash) for step in schedule),
        settings=settings(database=None),
    )
    assert minimal == [Crash(node=1, at_ns=0, for_ns=1 * MS)]


def test_a_three_way_partition_shrinks_to_cutting_off_the_last_two_nodes() -> None:
    minimal = find(
        partitions(5),
        lambda partition: len(partition.groups) == 3,
        settings=settings(database=None),
    )
    assert minimal == Partition(((1, 2, 3), (4,), (5,)), at_ns=0, for_ns=1 * MS)


def test_workloads_shrink_to_few_early_proposals() -> None:
    minimal = find(
        workloads(st.binary(max_size=4)),
        lambda workload: len(workload) >= 2,
        settings=settings(database=None),
    )
    assert minimal == [Proposal(0, b""), Proposal(0, b"")]


def test_step_reprs_rebuild_the_step() -> None:
    steps: list[FaultStep] = [
        Partition(((1,), (2, 3)), 5, 6),
        OneWay(1, 2),
        Crash(3, 1, 2),
        Pause(1),
        ClockSkew(2, 0.25),
        Flaky(0.1, 0.05),
    ]
    for step in steps:
        assert eval(repr(step), vars(strategies)) == step
    assert re.fullmatch(r"Proposal\(at_ns=0, command=b'x'\)", repr(Proposal(0, b"x")))


@settings(max_examples=50)
@given(fault_schedules(1, max_faults=8))
def test_kinds_needing_two_nodes_are_left_out_of_a_one_node_cluster(
    schedule: list[FaultStep],
) -> None:
    assert not any(isinstance(step, Partition | OneWay) for step in schedule)
