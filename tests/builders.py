"""Builders shared by the tests: nodes with a given log, clusters, a recording state machine."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from raft import Config, Entry, HardState, Message, Role, VoteRequest, VoteResponse
from raft.storage import MemoryStorage
from sim._cluster import Cluster
from sim._replica import Replica


class AppliedLog:
    """A state machine that records every command it applies, in order."""

    def __init__(self) -> None:
        self.commands: list[bytes] = []

    def apply(self, command: bytes) -> object:
        self.commands.append(command)
        return len(self.commands)

    def snapshot(self) -> bytes:
        return b"".join(len(command).to_bytes(4, "big") + command for command in self.commands)

    def restore(self, data: bytes) -> None:
        commands = []
        position = 0
        while position < len(data):
            size = int.from_bytes(data[position : position + 4], "big")
            commands.append(data[position + 4 : position + 4 + size])
            position += 4 + size
        self.commands = commands


def make_storage(terms: Sequence[int] = (), hard_state: HardState | None = None) -> MemoryStorage:
    """A storage holding entries 1..len(terms) with the given terms (data b"<index>")."""
    storage = MemoryStorage()
    storage.append([Entry(term, index, b"%d" % index) for index, term in enumerate(terms, 1)])
    if hard_state is not None:
        storage.set_hard_state(hard_state)
    return storage


def make_replica(
    node_id: int = 1,
    voters: Sequence[int] = (1, 2, 3),
    *,
    terms: Sequence[int] = (),
    term: int = 0,
    vote: int | None = None,
    commit: int = 0,
    seed: int = 0,
    **config: Any,
) -> Replica:
    """A replica whose storage already holds a log of `terms` and the given hard state."""
    storage = make_storage(terms, HardState(term, vote, commit))
    return Replica(
        Config(node_id=node_id, voters=tuple(voters), **config),
        random.Random(seed),
        AppliedLog,
        storage=storage,
    )


def make_cluster(size: int = 3, seed: int = 0, **options: Any) -> Cluster:
    """A cluster of nodes 1..size recording applied commands, seeded."""
    return Cluster(range(1, size + 1), seed=seed, state_machine_factory=AppliedLog, **options)


def messages_of(replica: Replica) -> list[Message]:
    """Persist, apply and advance the replica's pending work; return the messages to send."""
    return list(replica.process_ready())


def terms_of(replica: Replica) -> list[int]:
    """The terms of every entry in the replica's log, index 1 first."""
    node = replica.node
    return [entry.term for entry in node.log_entries(1, node.last_index + 1)]


def make_leader(node_id: int = 1, voters: Sequence[int] = (1, 2, 3), **options: Any) -> Replica:
    """A `make_replica(node_id, voters, **options)` that campaigned and won with the votes of a
    bare majority (pre-vote first when configured), with all its pending work done: the no-op
    of its new term is persisted and the messages it wanted to send are dropped."""
    replica = make_replica(node_id, voters, **options)
    node = replica.node
    node.campaign()
    needed = len(voters) // 2
    while node.role is not Role.LEADER:
        requests = [m for m in messages_of(replica) if isinstance(m, VoteRequest)]
        if not requests:
            raise AssertionError(f"node {node_id} did not win an election: {node!r}")
        for request in requests[:needed]:
            grant = VoteResponse(request.term, request.recipient, node_id, True, request.pre_vote)
            node.step(grant)
    messages_of(replica)
    return replica


def deliver_all(
    replicas: Mapping[int, Replica],
    messages: Iterable[Message],
    drop: Callable[[Message], bool] | None = None,
) -> list[Message]:
    """Deliver `messages` and everything they cause among `replicas`, first in first out, with
    no time passing (no ticks). A message `drop` picks, or one for a node not in `replicas` or
    down, is lost. Returns every message sent, in order, lost ones included."""
    sent = list(messages)
    position = 0
    while position < len(sent):
        message = sent[position]
        position += 1
        replica = replicas.get(message.recipient)
        if replica is None or not replica.up or (drop is not None and drop(message)):
            continue
        replica.node.step(message)
        sent.extend(messages_of(replica))
    return sent


def make_group(size: int = 3, **options: Any) -> dict[int, Replica]:
    """Replicas 1..size with empty logs, each seeded by its id."""
    voters = tuple(range(1, size + 1))
    return {node_id: make_replica(node_id, voters, seed=node_id, **options) for node_id in voters}


def elect(
    replicas: dict[int, Replica], leader_id: int = 1, drop: Callable[[Message], bool] | None = None
) -> list[Message]:
    """Make `leader_id` campaign and deliver everything that follows (so its no-op commits);
    return what was sent."""
    leader = replicas[leader_id]
    leader.node.campaign()
    sent = deliver_all(replicas, messages_of(leader), drop)
    assert leader.node.role is Role.LEADER, f"node {leader_id} failed to win: {leader.node!r}"
    return sent
