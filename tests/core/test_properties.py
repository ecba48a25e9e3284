"""Property tests: random message schedules (drops, duplicates, reordering, crashes) never break
election safety, leader append-only, log matching or state machine safety (Figure 3).

Hypothesis drives a small cluster through a pool of in-flight messages: any message may be
delivered next, dropped or duplicated; nodes tick, crash and restart, and leaders take
proposals and membership changes (two spare nodes start with no membership, ready to join).
The invariants are checked after every step; a failure shrinks to a short list of
steps that replays exactly (every node's randomness comes from the drawn seed).
"""

from __future__ import annotations

import contextlib
import random
from itertools import pairwise

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from raft import Config, Entry, MembershipChangeError, Message, Role
from sim._invariants import election_safety, log_matching, state_machine_safety
from sim._replica import Replica
from tests.builders import AppliedLog


class RandomSchedule(RuleBasedStateMachine):
    """A cluster whose messages are delivered in whatever order Hypothesis picks."""

    def __init__(self) -> None:
        super().__init__()
        self.replicas: dict[int, Replica] = {}
        self.pool: list[Message] = []
        self.leaders_by_term: dict[int, set[int]] = {}
        self.leader_logs: dict[tuple[int, int], list[Entry]] = {}
        self.applied: dict[int, list[tuple[int, bytes]]] = {}
        self.proposals = 0

    @initialize(size=st.sampled_from([3, 5]), seed=st.integers(0, 2**32 - 1))
    def build(self, size: int, seed: int) -> None:
        voters = tuple(range(1, size + 1))
        for node_id in range(1, size + 3):
            self.applied[node_id] = []
            self.replicas[node_id] = Replica(
                Config(
                    node_id=node_id,
                    voters=voters if node_id in voters else (),
                    election_ticks=5,
                    max_inflight_messages=4,
                ),
                random.Random(f"{seed}/{node_id}"),
                AppliedLog,
                on_apply=self._record_apply,
            )

    def _record_apply(self, node_id: int, entry: Entry, result: object) -> None:
        self.applied[node_id].append((entry.index, entry.data))

    def _node(self, pick: int) -> Replica:
        return self.replicas[pick % len(self.replicas) + 1]

    def _flush(self, replica: Replica) -> None:
        self.pool.extend(replica.process_ready())
        node = replica.node
        if node.role is Role.LEADER:
            self.leaders_by_term.setdefault(node.term, set()).add(replica.node_id)

    @rule(ticks=st.integers(1, 12))
    def tick_all(self, ticks: int) -> None:
        for _ in range(ticks):
            for replica in self.replicas.values():
                if replica.up:
                    replica.node.tick()
                    self._flush(replica)

    @precondition(lambda self: self.pool)
    @rule(pick=st.integers(0, 2**16))
    def deliver(self, pick: int) -> None:
        message = self.pool.pop(pick % len(self.pool))
        replica = self.replicas[message.recipient]
        if replica.up:
            replica.node.step(message)
            self._flush(replica)

    @precondition(lambda self: self.pool)
    @rule(rounds=st.integers(1, 6))
    def deliver_in_order(self, rounds: int) -> None:
        """A calm spell: everything in flight, and what it causes, for a few round trips."""
        for _ in range(rounds):
            batch, self.pool = self.pool, []
            for message in batch:
                replica = self.replicas[message.recipient]
                if replica.up:
                    replica.node.step(message)
                    self._flush(replica)

    @precondition(lambda self: self.pool)
    @rule(pick=st.integers(0, 2**16))
    def drop(self, pick: int) -> None:
        self.pool.pop(pick % len(self.pool))

    @precondition(lambda self: self.pool)
    @rule(pick=st.integers(0, 2**16))
    def duplicate(self, pick: int) -> None:
        self.pool.append(self.pool[pick % len(self.pool)])

    @rule(pick=st.integers(0, 4), count=st.integers(1, 3))
    def propose(self, pick: int, count: int) -> None:
        replica = self._node(pick)
        if replica.up and replica.node.role is Role.LEADER:
            commands = [b"c%d" % (self.proposals + i) for i in range(count)]
            self.proposals += count
            replica.node.propose_batch(commands)
            self._flush(replica)

    @rule(voters=st.sets(st.integers(1, 7), max_size=5))
    def change_membership(self, voters: set[int]) -> None:
        """Any leader is asked for any change of voters; refusals are fine (thesis ch. 4)."""
        for replica in self.replicas.values():
            if replica.up and replica.node.role is Role.LEADER:
                with contextlib.suppress(MembershipChangeError):
                    replica.node.change_membership(sorted(voters & set(self.replicas)))
                self._flush(replica)

    @rule(pick=st.integers(0, 4))
    def crash_and_restart(self, pick: int) -> None:
        replica = self._node(pick)
        replica.crash()
        self.applied[replica.node_id] = []
        replica.restart()
        self._flush(replica)

    def _logs(self) -> dict[int, list[Entry]]:
        return {
            node_id: replica.node.log_entries(1, replica.node.last_index + 1)
            for node_id, replica in self.replicas.items()
        }

    @invariant()
    def at_most_one_leader_per_term(self) -> None:
        violation = election_safety(self.leaders_by_term)
        assert violation is None, str(violation)

    @invariant()
    def logs_match(self) -> None:
        violation = log_matching(self._logs())
        assert violation is None, str(violation)

    @invariant()
    def applied_commands_agree(self) -> None:
        violation = state_machine_safety(self.applied)
        assert violation is None, str(violation)

    @invariant()
    def leaders_only_append(self) -> None:
        for node_id, log in self._logs().items():
            node = self.replicas[node_id].node
            if node.role is not Role.LEADER:
                continue
            key = (node_id, node.term)
            before = self.leader_logs.get(key, [])
            assert log[: len(before)] == before, (
                f"leader {node_id} of term {node.term} rewrote its log: {before} -> {log}"
            )
            self.leader_logs[key] = log

    @invariant()
    def committed_entries_survive(self) -> None:
        for replica in self.replicas.values():
            node = replica.node
            assert node.commit_index <= node.last_index


RandomSchedule.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_schedules_keep_raft_safe = RandomSchedule.TestCase


class RandomScheduleWithCompaction(RandomSchedule):
    """The same schedules with every node compacting its log every 3 applied entries and
    snapshots sent in 32-byte chunks (paper §7): installs meet drops, duplicates, reordering and
    crashes. Each state machine records every command it holds, snapshots included, so any two
    must be one a prefix of the other."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[int, int] = {}
        """How many commands each running state machine held at the last check."""

    @initialize(size=st.sampled_from([3, 5]), seed=st.integers(0, 2**32 - 1))
    def build(self, size: int, seed: int) -> None:
        voters = tuple(range(1, size + 1))
        for node_id in voters:
            self.applied[node_id] = []
            self.replicas[node_id] = Replica(
                Config(
                    node_id=node_id,
                    voters=voters,
                    election_ticks=5,
                    max_inflight_messages=4,
                    snapshot_threshold_entries=3,
                    max_snapshot_chunk_bytes=32,
                ),
                random.Random(f"{seed}/{node_id}"),
                AppliedLog,
                on_apply=self._record_apply,
            )

    @invariant()
    def leaders_only_append(self) -> None:
        # Compaction drops a log's head: compare what both versions still hold, by index.
        for node_id, log in self._logs().items():
            node = self.replicas[node_id].node
            if node.role is not Role.LEADER:
                continue
            key = (node_id, node.term)
            first = log[0].index if log else node.last_index + 1
            before = [entry for entry in self.leader_logs.get(key, []) if entry.index >= first]
            assert log[: len(before)] == before, (
                f"leader {node_id} of term {node.term} rewrote its log: {before} -> {log}"
            )
            self.leader_logs[key] = log

    @rule(pick=st.integers(0, 4), count=st.integers(3, 10))
    def propose_while_one_node_is_cut_off(self, pick: int, count: int) -> None:
        """Commands committed without one node for a few round trips: it falls behind the
        leader's compacted log and will need a snapshot."""
        cut_off = self._node(pick).node_id
        leaders = [r for r in self.replicas.values() if r.up and r.node.role is Role.LEADER]
        if not leaders or leaders[0].node_id == cut_off:
            return
        self.propose(leaders[0].node_id - 1, count)
        for _ in range(3):
            batch, self.pool = self.pool, []
            for message in batch:
                replica = self.replicas[message.recipient]
                if message.recipient != cut_off and replica.up:
                    replica.node.step(message)
                    self._flush(replica)

    @rule(pick=st.integers(0, 4))
    def crash_and_restart(self, pick: int) -> None:
        self.held.pop(self._node(pick).node_id, None)
        super().crash_and_restart(pick)

    @invariant()
    def running_state_machines_never_lose_commands(self) -> None:
        """No rollback: an installed snapshot never replaces newer state (paper §7)."""
        for node_id, replica in self.replicas.items():
            commands = replica.state_machine.commands  # type: ignore[attr-defined]
            assert len(commands) >= self.held.get(node_id, 0), (
                f"node {node_id} went back to {len(commands)} commands from {self.held[node_id]}"
            )
            self.held[node_id] = len(commands)

    @invariant()
    def state_machines_hold_prefixes_of_one_history(self) -> None:
        histories = sorted(
            (replica.state_machine.commands for replica in self.replicas.values()),  # type: ignore[attr-defined]
            key=len,
        )
        for shorter, longer in pairwise(histories):
            assert longer[: len(shorter)] == shorter, f"{shorter} is not a prefix of {longer}"


RandomScheduleWithCompaction.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_schedules_with_compaction_keep_raft_safe = RandomScheduleWithCompaction.TestCase
