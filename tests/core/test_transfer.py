"""Paper tests for leadership transfer (thesis §3.10).

The leader stops taking proposals, brings the target's log up to date, then sends it
`TimeoutNow`; the target campaigns at once, without pre-vote, and voters grant its vote even
while they still hear from the old leader. A transfer that does not finish within an election
timeout is abandoned. Small scenarios step real replicas by hand (`deliver_all`, no time
passing); the whole-run test drives the seeded simulator with clients writing throughout.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import pytest

from raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    Heartbeat,
    LeadershipTransferInProgress,
    Message,
    NotLeader,
    RaftError,
    Role,
    TimeoutNow,
    UsageError,
    VoteRequest,
    VoteResponse,
)
from sim._invariants import election_safety
from sim._network import LinkFaults
from sim._replica import Replica
from tests.builders import (
    deliver_all,
    elect,
    make_cluster,
    make_group,
    make_replica,
    messages_of,
)

ELECTION_TICKS = 10
SECOND = 1_000_000_000


def involving(*node_ids: int) -> Callable[[Message], bool]:
    """A `drop` that loses every message from or to one of `node_ids` (a partition)."""
    return lambda message: message.sender in node_ids or message.recipient in node_ids


def tick_leader(replicas: dict[int, Replica], ticks: int, drop: Callable[[Message], bool]) -> None:
    """Tick the leader, node 1, delivering what each tick causes except what `drop` picks."""
    leader = replicas[1]
    for _ in range(ticks):
        leader.node.tick()
        deliver_all(replicas, messages_of(leader), drop)


def first_of(kind: type, sent: list[Message]) -> int:
    return next(position for position, message in enumerate(sent) if isinstance(message, kind))


# ---- the handover --------------------------------------------------------------------------


def test_transfer_to_an_up_to_date_follower_sends_timeout_now_and_it_takes_over() -> None:
    """Thesis §3.10: with the target's log already complete, the leader sends `TimeoutNow` at
    once; the target starts an election in the next term, without pre-vote (voters that hear
    from the leader would refuse it), wins it, and the old leader follows it."""
    replicas = make_group(3)
    elect(replicas, 1)
    old, target = replicas[1].node, replicas[2].node
    term = old.term

    old.transfer_leadership(2)
    handover = messages_of(replicas[1])
    sent = deliver_all(replicas, handover)

    assert handover == [TimeoutNow(term, 1, 2)]
    requests = [m for m in sent if isinstance(m, VoteRequest)]
    assert [(r.term, r.recipient, r.pre_vote, r.transfer) for r in requests] == [
        (term + 1, 1, False, True),
        (term + 1, 3, False, True),
    ]
    assert (target.role, target.term) == (Role.LEADER, term + 1)
    assert (old.role, old.term, old.leader_id) == (Role.FOLLOWER, term + 1, 2)
    assert replicas[3].node.leader_id == 2


def test_transfer_to_a_lagging_follower_replicates_before_timeout_now() -> None:
    """Thesis §3.10 step 2: the leader first brings the target's log up to date, and only
    once the target holds every entry sends `TimeoutNow`, so the target's log is as
    up-to-date as any voter's and its election can succeed. (Here the appends to the target
    were lost unnoticed: the next heartbeat's answer shows the gap, as in plain replication.)"""
    replicas = make_group(3)
    elect(replicas, 1)
    leader = replicas[1]
    for command in (b"a", b"b", b"c"):
        leader.node.propose(command)
        deliver_all(replicas, messages_of(leader), lambda m: m.recipient == 2)
    last = leader.node.last_index
    assert replicas[2].node.last_index < last

    leader.node.transfer_leadership(2)
    sent = deliver_all(replicas, messages_of(leader))
    for _ in range(ELECTION_TICKS):
        if replicas[2].node.role is Role.LEADER:
            break
        leader.node.tick()
        sent += deliver_all(replicas, messages_of(leader))

    assert any(isinstance(m, AppendEntries) and m.recipient == 2 and m.entries for m in sent)
    caught_up = next(
        position
        for position, message in enumerate(sent)
        if isinstance(message, AppendEntriesResponse)
        and message.sender == 2
        and message.match_index == last
    )
    assert first_of(TimeoutNow, sent) > caught_up
    new = replicas[2].node
    assert new.role is Role.LEADER
    assert [e.data for e in new.log_entries(1, last + 1)] == [b"", b"a", b"b", b"c"]


def test_leader_refuses_proposals_while_transferring() -> None:
    """Thesis §3.10 step 1: the leader stops accepting client requests, so the target can
    catch up with a log that no longer grows; the refusal names the target to retry at."""
    replicas = make_group(3)
    elect(replicas, 1)
    leader = replicas[1].node
    last = leader.last_index
    leader.transfer_leadership(3)

    with pytest.raises(LeadershipTransferInProgress) as raised:
        leader.propose(b"x")
    with pytest.raises(LeadershipTransferInProgress):
        leader.propose_batch([b"y", b"z"])

    assert isinstance(raised.value, RaftError)
    assert (raised.value.node_id, raised.value.target) == (1, 3)
    assert "node 3" in str(raised.value)
    assert leader.last_index == last


def test_transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout() -> None:
    """Thesis §3.10: if the transfer does not complete within an election timeout, the leader
    aborts it and resumes accepting client requests; it is still leader in the same term."""
    replicas = make_group(3)
    elect(replicas, 1)
    leader = replicas[1].node
    term = leader.term
    cut_off = involving(2)
    leader.transfer_leadership(2)
    deliver_all(replicas, messages_of(replicas[1]), cut_off)

    tick_leader(replicas, ELECTION_TICKS - 1, cut_off)
    with pytest.raises(LeadershipTransferInProgress):
        leader.propose(b"too early")
    tick_leader(replicas, 1, cut_off)
    _, index = leader.propose(b"after")
    deliver_all(replicas, messages_of(replicas[1]), cut_off)

    assert (leader.role, leader.term) == (Role.LEADER, term)
    assert leader.commit_index == index
    assert replicas[2].node.term == term


def test_stale_timeout_now_from_an_earlier_term_is_ignored() -> None:
    """§5.1, thesis §3.10: a `TimeoutNow` from a leader of an earlier term is stale; acting on
    it would start an election nobody asked for."""
    replica = make_replica(2, terms=[1, 3], term=3)

    replica.node.step(TimeoutNow(2, 1, 2))

    assert (replica.node.role, replica.node.term) == (Role.FOLLOWER, 3)
    assert messages_of(replica) == []


# ---- voting ---------------------------------------------------------------------------------


def hearing_from_leader() -> Replica:
    """Node 3 following leader 1 in term 1, having just heard from it (check-quorum on)."""
    replica = make_replica(3, terms=[1], term=1)
    replica.node.step(Heartbeat(1, 1, 3, 0))
    messages_of(replica)
    return replica


def test_voter_hearing_from_its_leader_refuses_a_normal_higher_term_vote() -> None:
    """Thesis §4.2.3: a voter that heard from a current leader within the minimum election
    timeout neither updates its term nor grants its vote (the requester is disruptive)."""
    replica = hearing_from_leader()

    replica.node.step(VoteRequest(2, 2, 3, last_log_index=1, last_log_term=1))

    assert messages_of(replica) == []
    assert (replica.node.term, replica.node.vote, replica.node.leader_id) == (1, None, 1)


def test_voter_hearing_from_its_leader_grants_a_transfer_vote() -> None:
    """Thesis §3.10: a vote request sent because the leader handed over (`transfer`) bypasses
    the §4.2.3 rule, since that leader itself asked for the election."""
    replica = hearing_from_leader()

    replica.node.step(VoteRequest(2, 2, 3, last_log_index=1, last_log_term=1, transfer=True))

    assert messages_of(replica) == [VoteResponse(2, 3, 2, True)]
    assert (replica.node.term, replica.node.vote, replica.node.leader_id) == (2, 2, None)


def test_transfer_vote_still_needs_an_up_to_date_log() -> None:
    """§5.4.1 holds for transfers too: bypassing the lease is not bypassing the log check."""
    replica = make_replica(3, terms=[1, 1], term=1)
    replica.node.step(Heartbeat(1, 1, 3, 0))
    messages_of(replica)

    replica.node.step(VoteRequest(2, 2, 3, last_log_index=1, last_log_term=1, transfer=True))

    assert messages_of(replica) == [VoteResponse(2, 3, 2, False)]


# ---- misuse ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [1, 4, 0, -2], ids=["self", "unknown", "zero", "negative"])
def test_transfer_to_a_bad_target_raises_usage_error(target: int) -> None:
    """Only another voter can take over: the leader itself or an unknown id is a caller bug;
    the refusal lists the voters to pick from, and the leader carries on."""
    replicas = make_group(3)
    elect(replicas, 1)
    leader = replicas[1].node

    with pytest.raises(UsageError, match=r"pick one of the other voters \[2, 3\]"):
        leader.transfer_leadership(target)

    assert messages_of(replicas[1]) == []
    leader.propose(b"still taking proposals")


def test_transfer_on_a_non_leader_raises_not_leader() -> None:
    """Thesis §3.10: only the leader can hand over; a follower names the leader to ask."""
    replicas = make_group(3)
    elect(replicas, 1)

    with pytest.raises(NotLeader) as on_follower:
        replicas[2].node.transfer_leadership(3)
    with pytest.raises(NotLeader) as on_stranger:
        make_replica(1).node.transfer_leadership(2)

    assert on_follower.value.leader_id == 1
    assert on_stranger.value.leader_id is None


# ---- in the simulator -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_transfer_under_client_writes_loses_no_committed_entry(seed: int) -> None:
    """Thesis §3.10 with §5.4 and Figure 3: clients write before, during and after a transfer
    on a lossy network (a lost `TimeoutNow` means the transfer is abandoned; the caller asks
    again); the target takes over, no entry any node applied is lost or replaced, and no term
    has two leaders."""
    rng = random.Random(f"{seed}/test")
    applied: dict[int, dict[int, Entry]] = {}

    def record(node_id: int, entry: Entry, result: object) -> None:
        applied.setdefault(node_id, {})[entry.index] = entry

    cluster = make_cluster(
        5, seed=seed, on_apply=record, faults=LinkFaults(loss=0.02, duplicate=0.02)
    )
    commands = (b"w%d" % n for n in range(1_000_000))

    def client_writes() -> None:
        leader = cluster.leader()
        if leader is not None:
            with contextlib.suppress(NotLeader, LeadershipTransferInProgress):
                cluster.propose(leader, next(commands))
        cluster.schedule(cluster.now + rng.randrange(5, 50) * 1_000_000, client_writes)

    cluster.schedule(0, client_writes)
    old = cluster.elect()
    cluster.run_for(SECOND)
    old_term = cluster.replicas[old].node.term
    target = rng.choice([node_id for node_id in sorted(cluster.replicas) if node_id != old])
    retry_every = 2 * ELECTION_TICKS * cluster.tick_ns

    def handed_over() -> bool:
        leader = cluster.leader()
        if leader == target:
            return True
        if leader is not None and cluster.now % retry_every == 0:
            cluster.replicas[leader].node.transfer_leadership(target)
            cluster.flush(leader)
        return False

    cluster.replicas[old].node.transfer_leadership(target)
    cluster.flush(old)
    assert cluster.run_until(handed_over, 10 * SECOND), f"seed {seed}: never handed over"
    cluster.run_for(2 * SECOND)
    cluster.network.faults = LinkFaults()
    cluster.run_for(2 * SECOND)

    assert election_safety(cluster.leaders_by_term) is None, f"seed {seed}"
    assert any(
        target in leaders for term, leaders in cluster.leaders_by_term.items() if term > old_term
    ), f"seed {seed}"
    for node_id, replica in cluster.replicas.items():
        node = replica.node
        log = {entry.index: entry for entry in node.log_entries(1, node.last_index + 1)}
        for entries in applied.values():
            for index, entry in entries.items():
                assert log.get(index) == entry, f"seed {seed}: node {node_id} lost {entry}"
    target_writes = [entry for entry in applied[target].values() if entry.data]
    assert any(entry.term == old_term for entry in target_writes), f"seed {seed}"
    assert any(entry.term > old_term for entry in target_writes), f"seed {seed}"
