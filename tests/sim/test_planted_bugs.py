"""Proof that the simulator finds bugs (issue #4 §6).

Each test plants one classic Raft bug in the core — with `monkeypatch`, never a switch inside
`raft/core` — and sweeps seeds from 0 until a run reports a violation. The sweep must find one
within the bug's `bound` of seeds, and the violation must name a property that bug breaks. Then,
with the bug taken out again, every seed of that sweep must hold every property: the violation
was the bug's doing, not the scenario's.

Each bug comes with the scenario that finds it fastest (node count, nemesis, duration, message
size), because CI time matters; `benchmarks/planted_bugs.py` measures how many seeds the default
scenario needs too, and `docs/planted-bugs.md` lists the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from raft.core import _election, _log, _node, _reconfig, _replication, _snapshots
from raft.core._membership import Membership
from raft.core._messages import Entry, HardState, InstallSnapshot, VoteRequest
from raft.core._snapshot import Snapshot
from raft.core._state import NodeState, Role
from raft.storage import MemoryStorage
from sim import RunOptions, RunResult, Workload, run_simulation
from statemachines import KVStore

Planter = Callable[[pytest.MonkeyPatch], None]
_Handler = Callable[[NodeState, Any], None]

_REAL_VOTE_HANDLERS = {role: table.get(VoteRequest) for role, table in _node._HANDLERS.items()}


# ---- the bugs ------------------------------------------------------------------------------


def _ignoring_recorded_vote(handler: _Handler) -> _Handler:
    def handle(state: NodeState, message: VoteRequest) -> None:
        recorded = state.vote
        if not message.pre_vote:
            state.vote = None
        handler(state, message)
        if state.vote is None:
            state.vote = recorded

    return handle


def plant_double_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    """A voter ignores the vote it already cast in this term and grants any candidate with an
    up-to-date log while it knows no leader (breaks §5.2's one vote per term).

    `_node._HANDLERS` was built at import, so its entries are patched, once per distinct table.
    """
    patched: list[dict[type, _Handler]] = []
    for table in _node._HANDLERS.values():
        if VoteRequest in table and not any(table is done for done in patched):
            patched.append(table)
            monkeypatch.setitem(table, VoteRequest, _ignoring_recorded_vote(table[VoteRequest]))


def plant_commit_by_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader commits whatever index a majority holds, even an entry of an older term: the
    commit rule Figure 8 of the paper shows to be unsafe (§5.4.2)."""
    maybe_commit = _replication.maybe_commit

    def commit_by_counting(state: NodeState) -> bool:
        progress = state.progress
        index = state.quorum.committed_index(
            {voter: progress[voter].match_index for voter in state.quorum.voters}
        )
        moved = index > state.log.committed and state.log.commit_to(index)
        return maybe_commit(state) or moved

    monkeypatch.setattr(_replication, "maybe_commit", commit_by_counting)


def plant_vote_left_unpersisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The core leaves the vote out of the hard state it asks the caller to persist, so a vote
    can be sent for state a crash forgets; after a restart the node votes again in the same
    term (Figure 2: persist votedFor before responding)."""

    def without_vote(term: int, vote: int | None, commit: int) -> HardState:
        return HardState(term, None, commit)

    monkeypatch.setattr(_node, "HardState", without_vote)


def plant_truncating_follower(monkeypatch: pytest.MonkeyPatch) -> None:
    """A follower replaces its log from `prev_log_index + 1` with every append, without looking
    for the first conflicting entry, and the log's guard against truncating committed entries
    is bypassed: a duplicated or reordered old append deletes acknowledged entries (§5.3,
    Figure 2 receiver rule 3 truncates only on a conflict)."""
    append = _log.RaftLog.append

    def append_over_committed(log: _log.RaftLog, entries: list[Entry]) -> None:
        committed = log.committed
        log.committed = min(committed, entries[0].index - 1)
        try:
            append(log, entries)
        finally:
            log.committed = committed

    monkeypatch.setattr(_log.RaftLog, "find_conflict", lambda log, entries: 0)
    monkeypatch.setattr(_log.RaftLog, "append", append_over_committed)


def plant_stale_leader_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader cut off from its majority never steps down (check-quorum always finds a quorum,
    thesis §6.2), and clients read from whichever node believes it leads, from its own state,
    without asking a majority (thesis §6.4): reads in a minority return stale values."""
    arrive = Workload._arrive

    def arrive_reading_at_leader(
        workload: Workload, client: int, operation: Any, node_id: int
    ) -> None:
        cluster = workload._cluster
        assert cluster is not None
        replica = cluster.replicas[node_id]
        if (
            operation.f == "read"
            and not operation.done
            and replica.up
            and not cluster.is_paused(node_id)
            and replica.node.role is Role.LEADER
        ):
            store = replica.state_machine
            assert isinstance(store, KVStore)
            workload._reply(operation, "ok", store.get(operation.key))
            return
        arrive(workload, client, operation, node_id)

    monkeypatch.setattr(_election, "_quorum_active", lambda state: True)
    monkeypatch.setattr(Workload, "_arrive", arrive_reading_at_leader)


def plant_membership_without_joint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change of more than one voter (a replacement, or several at once) skips the joint
    configuration: the leader appends the new voters alone. Nodes that have the entry decide
    by the new voters, nodes that lack it by the old ones, and the two majorities can be
    disjoint (thesis §4.3, Figure 4.2)."""
    append_config = _reconfig.append_config

    def append_new_voters_directly(state: NodeState, membership: Membership) -> int:
        if membership.joint and len(set(membership.voters) ^ set(membership.outgoing)) > 1:
            membership = Membership(membership.voters, (), membership.learners)
        return append_config(state, membership)

    monkeypatch.setattr(_reconfig, "append_config", append_new_voters_directly)


def plant_snapshot_over_newer_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """A follower installs whatever snapshot completes, even one no newer than its commit
    index, and storage's own refusal of an older snapshot is bypassed: a delayed duplicate of
    an old snapshot rolls the follower's state machine back (paper §7: a follower discards its
    log only for a snapshot of entries it lacks)."""
    apply_snapshot = MemoryStorage.apply_snapshot

    def apply_over_newer(storage: MemoryStorage, snapshot: Snapshot) -> None:
        storage._offset = min(storage._offset, snapshot.metadata.index - 1)
        apply_snapshot(storage, snapshot)

    def never_older(state: NodeState, message: InstallSnapshot) -> bool:
        return False

    monkeypatch.setattr(_snapshots, "is_older_than_commit", never_older)
    monkeypatch.setattr(MemoryStorage, "apply_snapshot", apply_over_newer)


@attrs.frozen
class PlantedBug:
    """A bug to plant, the scenario that finds it fastest, and what finding it means."""

    name: str
    plant: Planter
    scenario: RunOptions
    properties: frozenset[str]
    """A violation of any of these is the bug showing; the first is the one it breaks first."""
    bound: int
    """The sweep must find it among seeds 0 .. bound - 1."""


PLANTED_BUGS = (
    PlantedBug(
        "double-vote",
        plant_double_vote,
        RunOptions(nodes=5, nemesis="isolate-leader", duration=5),
        frozenset({"election safety"}),
        bound=30,
    ),
    PlantedBug(
        "commit-by-counting",
        plant_commit_by_counting,
        RunOptions(nodes=3, nemesis="leader-churn", duration=15, max_entries_per_message=1),
        frozenset({"leader completeness", "state machine safety", "durability"}),
        bound=30,
    ),
    PlantedBug(
        "vote-left-unpersisted",
        plant_vote_left_unpersisted,
        RunOptions(nodes=5, nemesis="crash-restart", duration=5),
        frozenset({"election safety"}),
        bound=100,
    ),
    PlantedBug(
        "truncating-follower",
        plant_truncating_follower,
        RunOptions(nodes=3, nemesis="flaky-net", duration=5, max_entries_per_message=1),
        frozenset({"durability", "state machine safety", "log matching", "leader completeness"}),
        bound=30,
    ),
    PlantedBug(
        "stale-leader-reads",
        plant_stale_leader_reads,
        RunOptions(nodes=3, nemesis="isolate-leader", duration=10),
        frozenset({"linearizability"}),
        bound=30,
    ),
    PlantedBug(
        "membership-without-joint",
        plant_membership_without_joint,
        RunOptions(nodes=3, nemesis="membership", duration=10),
        frozenset({"election safety", "state machine safety", "durability", "leader completeness"}),
        bound=30,
    ),
    PlantedBug(
        "snapshot-over-newer-state",
        plant_snapshot_over_newer_state,
        RunOptions(
            nodes=3,
            nemesis="snapshot,flaky-net",
            duration=10,
            clients=50,
            snapshot_chunk_bytes=1 << 20,
        ),
        frozenset({"state machine safety", "linearizability", "durability"}),
        bound=30,
    ),
)
BUGS_BY_NAME = {bug.name: bug for bug in PLANTED_BUGS}


# ---- the sweep -----------------------------------------------------------------------------


def first_violation(scenario: RunOptions, bound: int) -> RunResult | None:
    """The run of the lowest seed below `bound` that violates a property, if any."""
    for seed in range(bound):
        result = run_simulation(seed, scenario)
        if not result.ok:
            return result
    return None


def assert_sweep_finds(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plant the bug, find it within its bound, check the diagnosis, then check the control:
    without the bug, the same seeds hold every property."""
    bug = BUGS_BY_NAME[name]
    bug.plant(monkeypatch)
    found = first_violation(bug.scenario, bug.bound)
    assert found is not None, f"{name}: no violation in seeds 0..{bug.bound - 1} of {bug.scenario}"
    violated = {violation.property for violation in found.violations}
    assert violated & bug.properties, (
        f"{name}: seed {found.seed} violated {sorted(violated)}, none of "
        f"{sorted(bug.properties)} — replay: {found.replay_command()}"
    )
    monkeypatch.undo()
    for seed in range(found.seed + 1):
        control = run_simulation(seed, bug.scenario)
        assert control.ok, (
            f"{name}'s scenario fails without the bug: {list(map(str, control.violations))} "
            f"— replay: {control.replay_command()}"
        )


# ---- one test per bug ----------------------------------------------------------------------


def test_sweep_finds_a_double_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two candidates of one term, a voter that grants both: two leaders in a term (§5.2)."""
    assert_sweep_finds("double-vote", monkeypatch)


def test_sweep_finds_an_old_term_entry_committed_by_counting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Figure 8: an old-term entry counted onto a majority is overwritten by a later leader
    whose log lacks it, though it was applied (§5.4.2)."""
    assert_sweep_finds("commit-by-counting", monkeypatch)


def test_sweep_finds_a_vote_forgotten_in_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A vote not persisted before it is sent is cast again after a restart: two leaders in a
    term (Figure 2, persistent state)."""
    assert_sweep_finds("vote-left-unpersisted", monkeypatch)


def test_sweep_finds_a_follower_truncating_acknowledged_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reordered appends truncate entries a follower acknowledged: a write the client was told
    is committed is lost from the majority (§5.3)."""
    assert_sweep_finds("truncating-follower", monkeypatch)


def test_sweep_finds_a_membership_change_without_joint_consensus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Voters replaced in one step: the old voters and the new ones each elect a leader and
    commit different entries (thesis §4.3)."""
    assert_sweep_finds("membership-without-joint", monkeypatch)


def test_sweep_finds_stale_reads_from_a_leader_without_quorum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A leader cut off in a minority keeps answering reads from its own state while the
    majority elects another leader and takes writes: the history is not linearizable (§6.4)."""
    assert_sweep_finds("stale-leader-reads", monkeypatch)


def test_sweep_finds_an_old_snapshot_installed_over_newer_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whole-snapshot chunks that the network duplicates and delays: a follower that caught up
    and compacted past an old snapshot installs a late copy of it, rolling back applied
    commands (paper §7)."""
    assert_sweep_finds("snapshot-over-newer-state", monkeypatch)


@pytest.mark.parametrize("name", sorted(BUGS_BY_NAME))
def test_every_planted_bug_is_removed_by_undo(name: str) -> None:
    """The core each test leaves behind is the real one: no planted bug leaks."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        BUGS_BY_NAME[name].plant(monkeypatch)
    assert vars(_node)["HardState"] is HardState
    assert _replication.maybe_commit.__module__ == "raft.core._replication"
    assert _election._quorum_active.__module__ == "raft.core._election"
    assert _log.RaftLog.find_conflict.__module__ == "raft.core._log"
    assert _log.RaftLog.append.__module__ == "raft.core._log"
    assert Workload._arrive.__qualname__ == "Workload._arrive"
    assert _reconfig.append_config is _replication.append_config
    assert _snapshots.is_older_than_commit.__module__ == "raft.core._snapshots"
    assert MemoryStorage.apply_snapshot.__qualname__ == "MemoryStorage.apply_snapshot"
    for role, table in _node._HANDLERS.items():
        assert table.get(VoteRequest) is _REAL_VOTE_HANDLERS[role]
