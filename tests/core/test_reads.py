"""Paper tests for linearizable reads without a log write: ReadIndex (thesis §6.4) and lease
reads (thesis §6.4.1).

Message-level tests drive one leader by hand (set up → step → check the messages and the
`ReadState`s it hands out); forwarding uses a small group wired by `deliver_all`; the
linearizability scenario runs the seeded simulator and plants a bug to show the check can fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import raft.core._reads
from raft import (
    AppendEntriesResponse,
    Config,
    Heartbeat,
    HeartbeatResponse,
    Message,
    NotLeader,
    ReadIndexRequest,
    ReadIndexResponse,
    ReadState,
    Ready,
    Role,
    TimeoutNow,
    UsageError,
    VoteRequest,
    VoteResponse,
)
from sim._cluster import Cluster
from sim._replica import Replica
from tests.builders import (
    deliver_all,
    elect,
    make_cluster,
    make_group,
    make_leader,
    make_replica,
    messages_of,
)

ELECTION_TICKS = 10
DRIFT_TICKS = 2
LEASE_TICKS = ELECTION_TICKS - DRIFT_TICKS
SECOND = 1_000_000_000


def record_reads(replica: Replica) -> list[ReadState]:
    """From now on, keep every `ReadState` the replica's node hands out, in order (the
    simulator's replica serves confirmed reads and forgets them)."""
    confirmed: list[ReadState] = []
    node = replica.node
    take = node.ready

    def ready() -> Ready:
        batch = take()
        confirmed.extend(batch.read_states)
        return batch

    node.ready = ready  # type: ignore[method-assign]
    return confirmed


def make_committed_leader(voters: Sequence[int] = (1, 2, 3), **options: Any) -> Replica:
    """Node 1 as leader whose no-op a bare majority acknowledged: it knows the commit index
    (thesis §6.4 step 1), and no heartbeat round has been answered yet."""
    replica = make_leader(1, voters, **options)
    node = replica.node
    for peer in voters[1 : len(voters) // 2 + 1]:
        node.step(AppendEntriesResponse(node.term, peer, 1, True, node.last_index))
    messages_of(replica)
    assert node.commit_index == node.last_index
    return replica


def heartbeats_in(messages: Sequence[Message]) -> list[Heartbeat]:
    return [m for m in messages if isinstance(m, Heartbeat)]


def answer(replica: Replica, beats: Sequence[Heartbeat], *peers: int) -> None:
    """Step the leader with the answers of `peers` to the heartbeats sent them in `beats`."""
    for beat in beats:
        if beat.recipient in peers:
            replica.node.step(
                HeartbeatResponse(beat.term, beat.recipient, beat.sender, beat.round, beat.context)
            )


def commit_one_more(replica: Replica, peer: int = 2) -> int:
    """Leader: propose a command and let `peer` acknowledge it; returns its (committed) index."""
    node = replica.node
    _, index = node.propose(b"w")
    node.step(AppendEntriesResponse(node.term, peer, node.node_id, True, index))
    messages_of(replica)
    assert node.commit_index == index
    return index


def acknowledgements(message: Message) -> bool:
    """A `drop` that loses every acknowledgement of entries."""
    return isinstance(message, AppendEntriesResponse)


def tick_quietly(replica: Replica, ticks: int) -> None:
    """Tick the node, dropping what it sends."""
    for _ in range(ticks):
        replica.node.tick()
        messages_of(replica)


# ---- ReadIndex on the leader ---------------------------------------------------------------


def test_leader_sends_a_heartbeat_round_carrying_the_read_context() -> None:
    """Thesis §6.4 step 3: to confirm it is still leader, the leader sends a new round of
    heartbeats; each carries the read's context so the answers can be matched to the read."""
    replica = make_committed_leader((1, 2, 3, 4, 5))
    node = replica.node

    node.read_index(b"r")
    messages = messages_of(replica)

    assert messages == [
        Heartbeat(node.term, 1, peer, commit=0 if peer > 3 else 1, round=0, context=b"r")
        for peer in (2, 3, 4, 5)
    ]


def test_read_is_confirmed_only_once_a_majority_answered_the_round() -> None:
    """Thesis §6.4 step 3: once heartbeats were acknowledged by a majority of the cluster, the
    leader knows it was still leader when the read began; not before."""
    replica = make_committed_leader((1, 2, 3, 4, 5))
    reads = record_reads(replica)
    node = replica.node
    node.read_index(b"r")
    beats = heartbeats_in(messages_of(replica))

    answer(replica, beats, 2)
    messages_of(replica)
    assert reads == [], "the leader and one follower are two of five"
    answer(replica, beats, 3)
    messages_of(replica)

    assert reads == [ReadState(node.commit_index, b"r")]


def test_read_index_is_the_commit_index_when_the_read_was_requested() -> None:
    """Thesis §6.4 steps 1, 4: the leader records its commit index as the read index; entries
    committed while the round is out do not move it (the read is linearized at its start)."""
    replica = make_committed_leader()
    reads = record_reads(replica)
    node = replica.node
    at_request = node.commit_index
    node.read_index(b"r")
    beats = heartbeats_in(messages_of(replica))

    later = commit_one_more(replica)
    answer(replica, beats, 2)
    messages_of(replica)

    assert later > at_request
    assert reads == [ReadState(at_request, b"r")]


def test_round_answered_by_a_minority_confirms_nothing() -> None:
    """Thesis §6.4: a minority answering proves nothing (a newer leader may exist on the
    majority side), however often it answers."""
    replica = make_committed_leader((1, 2, 3, 4, 5), check_quorum=False)
    reads = record_reads(replica)
    node = replica.node
    node.read_index(b"r")
    beats = heartbeats_in(messages_of(replica))

    answer(replica, beats, 2)
    for _ in range(3 * ELECTION_TICKS):
        node.tick()
        answer(replica, heartbeats_in(messages_of(replica)), 2)
    messages_of(replica)

    assert reads == []
    assert node.role is Role.LEADER


def test_heartbeats_repeat_the_newest_pending_context_so_a_lost_round_is_retried() -> None:
    """Thesis §6.4: the round rides on heartbeats; if its messages are lost, the next regular
    heartbeat carries the context again and its answers confirm the read."""
    replica = make_committed_leader()
    reads = record_reads(replica)
    node = replica.node
    node.read_index(b"r")
    messages_of(replica)  # the round is lost

    node.tick()
    beats = heartbeats_in(messages_of(replica))
    assert [(b.recipient, b.context) for b in beats] == [(2, b"r"), (3, b"r")]
    answer(replica, beats, 3)
    messages_of(replica)

    assert reads == [ReadState(node.commit_index, b"r")]


def test_reads_queued_in_order_are_confirmed_together_by_a_later_round() -> None:
    """Thesis §6.4: a majority answering a later round also proves leadership for every read
    requested before it; each keeps its own read index, and they come out in request order."""
    replica = make_committed_leader()
    reads = record_reads(replica)
    node = replica.node
    first_index = node.commit_index
    node.read_index(b"a")
    node.read_index(b"b")
    second_index = commit_one_more(replica)
    node.read_index(b"c")
    rounds = heartbeats_in(messages_of(replica))

    answer(replica, [beat for beat in rounds if beat.context == b"c"], 2)
    messages_of(replica)
    answer(replica, rounds, 2, 3)  # late answers to the older rounds change nothing
    messages_of(replica)

    assert reads == [
        ReadState(first_index, b"a"),
        ReadState(first_index, b"b"),
        ReadState(second_index, b"c"),
    ]


def test_read_with_a_context_already_waiting_joins_it_once() -> None:
    """A context names one read in flight: asking again while it waits starts no second round
    and yields one `ReadState`."""
    replica = make_committed_leader()
    reads = record_reads(replica)
    node = replica.node
    node.read_index(b"r")
    beats = heartbeats_in(messages_of(replica))

    node.read_index(b"r")
    assert heartbeats_in(messages_of(replica)) == []
    answer(replica, beats, 2)
    messages_of(replica)

    assert reads == [ReadState(node.commit_index, b"r")]


def test_new_leader_holds_reads_until_its_noop_commits() -> None:
    """Thesis §6.4 step 1: a leader that has not yet committed an entry of its term does not
    know the latest commit index, so it holds reads until its no-op commits, then confirms
    them with a round at the new commit index (etcd once answered such reads too early)."""
    replica = make_leader(1, terms=[1, 1], term=1, commit=1)
    reads = record_reads(replica)
    node = replica.node
    assert (node.term, node.commit_index, node.last_index) == (2, 1, 3)

    node.read_index(b"r")
    held = messages_of(replica)
    node.tick()
    answer(replica, heartbeats_in(messages_of(replica)), 2, 3)
    messages_of(replica)
    assert (held, reads) == ([], [])

    node.step(AppendEntriesResponse(2, 2, 1, True, 3))
    beats = heartbeats_in(messages_of(replica))
    assert [b.context for b in beats] == [b"r", b"r"]
    answer(replica, beats, 2)
    messages_of(replica)

    assert reads == [ReadState(3, b"r")]


@pytest.mark.parametrize("committed", [True, False], ids=["pending", "held"])
def test_deposed_leader_drops_its_waiting_reads(committed: bool) -> None:
    """Thesis §6.4: a leader that steps down can no longer confirm anything, so its waiting
    reads (in a round, or held until its no-op commits) are dropped: their clients time out
    and retry. None comes back when it is elected again."""
    replicas = make_group(3, check_quorum=False)
    leader = replicas[1]
    leader.node.campaign()
    deliver_all(replicas, messages_of(leader), drop=None if committed else acknowledgements)
    assert leader.node.role is Role.LEADER
    assert (leader.node.commit_index == leader.node.last_index) is committed
    reads = record_reads(leader)
    leader.node.read_index(b"r")
    messages_of(leader)  # the round, if any, is lost

    elect(replicas, 2)
    assert leader.node.role is Role.FOLLOWER
    elect(replicas, 1)
    leader.node.tick()
    sent = deliver_all(replicas, messages_of(leader))

    assert reads == []
    assert [b.context for b in heartbeats_in(sent)] == [b"", b""]


# ---- followers -----------------------------------------------------------------------------


def test_follower_forwards_a_read_and_gets_the_leaders_read_index() -> None:
    """Thesis §6.4: a follower asks the leader for the current read index; the leader
    confirms it with a round as for its own reads and replies, and the follower hands it out as
    a `ReadState` (served once the follower has applied that far)."""
    replicas = make_group(3)
    elect(replicas, 1)
    follower = replicas[2]
    follower_reads = record_reads(follower)
    leader_reads = record_reads(replicas[1])
    index = replicas[1].node.commit_index
    term = replicas[1].node.term

    follower.node.read_index(b"f")
    request = messages_of(follower)
    sent = deliver_all(replicas, request)

    assert request == [ReadIndexRequest(term, 2, 1, b"f")]
    assert ReadIndexResponse(term, 1, 2, b"f", index) in sent
    assert follower_reads == [ReadState(index, b"f")]
    assert leader_reads == []


@pytest.mark.parametrize("size", [3, 5])
def test_follower_read_completes_with_only_a_bare_majority_up(size: int) -> None:
    """Thesis §6.4: the leader and a bare majority suffice for a read, whoever asked for it.
    (Regression: the leader counted the requesting follower in place of itself, so a read
    forwarded by one of a bare majority waited forever for one more follower.)"""
    replicas = make_group(size)
    elect(replicas, 1)
    for node_id in range(size // 2 + 2, size + 1):
        replicas[node_id].crash()
    follower_reads = record_reads(replicas[2])

    replicas[2].node.read_index(b"f")
    deliver_all(replicas, messages_of(replicas[2]))

    assert follower_reads == [ReadState(replicas[1].node.commit_index, b"f")]


def test_read_forwarded_to_a_new_leader_waits_for_its_noop() -> None:
    """Thesis §6.4 step 1 holds for forwarded reads too: the new leader answers the follower
    only once an entry of its term is committed, with that commit index."""
    replicas = make_group(3)
    leader = replicas[1]
    leader.node.campaign()
    held_back = deliver_all(replicas, messages_of(leader), acknowledgements)
    follower_reads = record_reads(replicas[2])
    replicas[2].node.read_index(b"f")
    deliver_all(replicas, messages_of(replicas[2]))
    assert follower_reads == []

    deliver_all(replicas, [m for m in held_back if acknowledgements(m)])

    assert leader.node.commit_index == 1
    assert follower_reads == [ReadState(1, b"f")]


def test_read_without_a_known_leader_raises_not_leader() -> None:
    """Thesis §6.4: only a leader can establish a read index; a node that knows none cannot
    even forward the read."""
    follower = make_replica(1)
    candidate = make_replica(2, pre_vote=False)
    candidate.node.campaign()
    messages_of(candidate)

    for replica in (follower, candidate):
        with pytest.raises(NotLeader) as raised:
            replica.node.read_index(b"r")
        assert raised.value.leader_id is None
        assert messages_of(replica) == []


@pytest.mark.parametrize(
    "context",
    [b"", "r", bytearray(b"r"), None, 7],
    ids=["empty", "str", "bytearray", "None", "int"],
)
def test_bad_read_context_raises_usage_error_and_leaves_the_node_usable(context: Any) -> None:
    """A context must be non-empty bytes: it is what matches a `ReadState` to its read, and
    b"" already means "no read" on a heartbeat."""
    replica = make_committed_leader()

    with pytest.raises(UsageError):
        replica.node.read_index(context)

    assert messages_of(replica) == []
    replica.node.read_index(b"ok")
    assert len(heartbeats_in(messages_of(replica))) == 2


def test_single_node_cluster_answers_reads_at_once() -> None:
    """Thesis §6.4: a single node is its own majority, so no round is needed."""
    replica = make_replica(1, voters=(1,))
    node = replica.node
    node.campaign()
    messages_of(replica)

    node.read_index(b"r")
    ready = node.ready()

    assert ready.read_states == (ReadState(1, b"r"),)
    assert ready.messages == ()


# ---- lease reads ---------------------------------------------------------------------------


def make_lease_leader(voters: Sequence[int] = (1, 2, 3)) -> Replica:
    """`make_committed_leader` with lease reads on (election timeout 10, drift bound 2)."""
    return make_committed_leader(
        voters,
        lease_reads=True,
        election_ticks=ELECTION_TICKS,
        max_clock_drift_ticks=DRIFT_TICKS,
    )


def heartbeat_round(replica: Replica, *peers: int) -> int:
    """Tick the leader once and let `peers` answer its heartbeats; returns their round."""
    replica.node.tick()
    beats = heartbeats_in(messages_of(replica))
    answer(replica, beats, *peers)
    messages_of(replica)
    return beats[0].round


def test_lease_read_is_answered_at_once_while_the_lease_holds() -> None:
    """Thesis §6.4.1: once a majority acknowledged a heartbeat round, the leader answers reads
    from its lease without a round of its own, for its reads and forwarded ones alike."""
    replica = make_lease_leader()
    reads = record_reads(replica)
    node = replica.node
    heartbeat_round(replica, 2)

    node.read_index(b"r")
    node.step(ReadIndexRequest(node.term, 3, 1, b"f"))
    messages = messages_of(replica)

    assert reads == [ReadState(node.commit_index, b"r")]
    assert messages == [ReadIndexResponse(node.term, 1, 3, b"f", node.commit_index)]


def test_lease_runs_out_election_ticks_minus_drift_after_the_acknowledged_round() -> None:
    """Thesis §6.4.1: followers that answered the round at leader time T ignore vote requests
    until T + election_ticks on their clocks; allowing for drift the leader trusts its lease
    until T + election_ticks - max_clock_drift_ticks, then falls back to a round, whose answer
    renews the lease."""
    replica = make_lease_leader()
    reads = record_reads(replica)
    node = replica.node
    start = heartbeat_round(replica, 2)

    tick_quietly(replica, LEASE_TICKS - 1)
    node.read_index(b"last in lease")
    assert messages_of(replica) == []
    tick_quietly(replica, 1)
    node.read_index(b"lease ran out")
    beats = heartbeats_in(messages_of(replica))
    assert beats[0].round == start + LEASE_TICKS
    answer(replica, beats, 3)
    node.read_index(b"lease renewed")

    assert heartbeats_in(messages_of(replica)) == []
    index = node.commit_index
    assert reads == [
        ReadState(index, b"last in lease"),
        ReadState(index, b"lease ran out"),
        ReadState(index, b"lease renewed"),
    ]


def test_lease_needs_a_majority_to_acknowledge_the_round() -> None:
    """Thesis §6.4.1: the lease starts at the newest round a majority acknowledged; rounds
    answered by a minority extend nothing."""
    replica = make_lease_leader((1, 2, 3, 4, 5))
    reads = record_reads(replica)
    node = replica.node
    heartbeat_round(replica, 2)

    node.read_index(b"r")

    assert len(heartbeats_in(messages_of(replica))) == 4
    assert reads == []


def test_new_leader_has_no_lease_before_its_first_acknowledged_round() -> None:
    """Thesis §6.4.1: a new leader's lease starts with its first heartbeat round a majority
    acknowledged; acknowledged appends (its no-op committed) carry no round and prove nothing
    about followers' timers."""
    replica = make_lease_leader()
    reads = record_reads(replica)
    node = replica.node

    node.read_index(b"r")
    beats = heartbeats_in(messages_of(replica))

    assert [b.context for b in beats] == [b"r", b"r"]
    assert reads == []


def test_no_lease_reads_during_a_leadership_transfer() -> None:
    """Thesis §3.10, §6.4.1: the transfer's vote is granted by voters that promised the lease,
    so a transferring leader confirms reads with a round; if the transfer is abandoned before
    any `TimeoutNow` went out, the lease is good again."""
    replica = make_lease_leader()
    reads = record_reads(replica)
    node = replica.node
    heartbeat_round(replica, 2)
    node.transfer_leadership(3)  # 3 lags: the leader replicates to it first
    assert not any(isinstance(m, TimeoutNow) for m in messages_of(replica))

    node.read_index(b"during")
    assert [b.context for b in heartbeats_in(messages_of(replica))] == [b"during", b"during"]
    for _ in range(ELECTION_TICKS):
        heartbeat_round(replica, 2)
    node.read_index(b"after")

    assert heartbeats_in(messages_of(replica)) == []
    assert [read.context for read in reads] == [b"during", b"after"]


def test_leader_that_sent_timeout_now_has_no_lease_for_the_rest_of_its_term() -> None:
    """Thesis §3.10 against §6.4.1: voters grant the transfer's vote despite their lease
    promise, and a `TimeoutNow` may arrive late, so once one went out the leader's lease is
    void for the rest of its term, even after it abandoned the transfer. (Regression: it went
    back to lease reads and, cut off from a successor that had committed a write, served the
    write's absence.)"""
    replicas = make_group(3, lease_reads=True, max_clock_drift_ticks=DRIFT_TICKS)
    elect(replicas, 1)
    old = replicas[1]
    reads = record_reads(old)
    old.node.transfer_leadership(2)
    (timeout_now,) = messages_of(old)  # delayed in the network
    for _ in range(5):
        old.node.tick()
        deliver_all(replicas, messages_of(old))
    majority = {2: replicas[2], 3: replicas[3]}
    deliver_all(majority, [timeout_now])
    _, write = replicas[2].node.propose(b"w")
    deliver_all(majority, messages_of(replicas[2]))
    assert replicas[2].node.commit_index == write
    tick_quietly(old, ELECTION_TICKS - 5)

    old.node.read_index(b"after the write")
    messages = messages_of(old)

    assert isinstance(timeout_now, TimeoutNow)
    assert old.node.role is Role.LEADER
    assert old.node.propose(b"transfer abandoned")
    assert [b.context for b in heartbeats_in(messages)] == [b"after the write"] * 2
    assert reads == []


def test_restarted_follower_keeps_its_lease_promise() -> None:
    """Thesis §6.4.1: the lease relies on every follower that answered a round ignoring vote
    requests for an election timeout, and a crash must not void that promise. (Regression: a
    follower restarted right after answering knew no leader, voted at once for a node cut off
    from the leader, and the old leader, still within its lease, served a read that missed the
    new leader's committed write.)"""
    replicas = make_group(3, lease_reads=True, max_clock_drift_ticks=DRIFT_TICKS)
    elect(replicas, 1)
    old = replicas[1]
    reads = record_reads(old)
    link_1_3 = {1, 3}
    for _ in range(3):
        old.node.tick()
        deliver_all(replicas, messages_of(old), lambda m: {m.sender, m.recipient} == link_1_3)
    replicas[2].crash()
    replicas[2].restart()
    majority = {2: replicas[2], 3: replicas[3]}

    replicas[3].node.campaign()
    deliver_all(majority, messages_of(replicas[3]))
    old.node.read_index(b"r")
    messages_of(old)

    assert replicas[3].node.role is not Role.LEADER
    assert reads == [ReadState(old.node.commit_index, b"r")]


@pytest.mark.parametrize(
    ("restarted", "lease_reads", "ignored"),
    [(True, True, True), (False, True, False), (True, False, False)],
    ids=["restarted-with-leases", "fresh-with-leases", "restarted-without-leases"],
)
def test_only_a_restarted_node_with_lease_reads_ignores_votes_for_its_first_timeout(
    restarted: bool, lease_reads: bool, ignored: bool
) -> None:
    """Thesis §6.4.1, §4.2.3: the promise outlives a restart only where leases rely on it, and
    only for an election timeout; a node that never joined a term promised nothing, so the
    first election of a new cluster is not delayed."""
    replica = make_replica(
        2, terms=[1] if restarted else [], term=int(restarted), lease_reads=lease_reads
    )
    request = VoteRequest(2, 3, 2, last_log_index=1, last_log_term=1, pre_vote=True)

    replica.node.step(request)
    first = messages_of(replica)
    for _ in range(ELECTION_TICKS):
        replica.node.tick()
    messages_of(replica)
    replica.node.step(request)
    later = messages_of(replica)

    grant = [VoteResponse(2, 2, 3, True, pre_vote=True)]
    assert (first, later) == ([] if ignored else grant, grant)


def test_config_rejects_lease_reads_without_check_quorum() -> None:
    """Thesis §6.4.1: the lease rests on followers ignoring vote requests while they hear from
    the leader, which is check-quorum's rule; without it a lease is no promise at all."""
    with pytest.raises(ValueError, match=r"lease_reads needs Config\.check_quorum"):
        Config(node_id=1, voters=(1, 2, 3), lease_reads=True, check_quorum=False)


@pytest.mark.parametrize("drift", [ELECTION_TICKS, ELECTION_TICKS + 1])
def test_config_rejects_a_drift_bound_that_leaves_no_lease(drift: int) -> None:
    """Thesis §6.4.1: the lease lasts election_ticks - max_clock_drift_ticks ticks."""
    with pytest.raises(ValueError, match=r"max_clock_drift_ticks \(\d+\) must be below"):
        Config(
            node_id=1,
            voters=(1, 2, 3),
            lease_reads=True,
            election_ticks=ELECTION_TICKS,
            max_clock_drift_ticks=drift,
        )
    config = Config(node_id=1, voters=(1, 2, 3), lease_reads=True, max_clock_drift_ticks=9)
    assert config.max_clock_drift_ticks == ELECTION_TICKS - 1


# ---- linearizability in the simulator ------------------------------------------------------


def read_at_partitioned_old_leader(seed: int) -> tuple[Cluster, int, list[ReadState], int]:
    """Five nodes; the leader is cut off, the other four elect a new leader and commit a write;
    only then does a client read at the old leader, which still believes it leads
    (check-quorum off). Returns the cluster, the old leader, its `ReadState`s over the next
    two seconds, and the index of the write the read must see."""
    cluster = make_cluster(5, seed=seed, check_quorum=False)
    old = cluster.elect()
    cluster.propose(old, b"before")
    cluster.run_for(SECOND // 2)
    cluster.network.partition([old], [i for i in cluster.replicas if i != old])
    assert cluster.run_until(lambda: cluster.leader() not in (None, old), 10 * SECOND)
    new = cluster.leader()
    assert new is not None
    _, write = cluster.propose(new, b"write")
    assert cluster.run_until(lambda: cluster.replicas[new].node.commit_index >= write, SECOND)
    reads = record_reads(cluster.replicas[old])
    assert cluster.replicas[old].node.role is Role.LEADER, f"seed {seed}"

    cluster.replicas[old].node.read_index(b"after the write")
    cluster.flush(old)
    cluster.run_for(2 * SECOND)
    return cluster, old, reads, write


@pytest.mark.parametrize("seed", range(5))
def test_partitioned_old_leader_never_confirms_a_read(seed: int) -> None:
    """Thesis §6.4: a leader on the minority side cannot gather a majority for its round, so a
    read issued after the majority committed a write never completes there (a stale answer
    would break linearizability); once the partition heals it steps down and drops it."""
    cluster, old, reads, _ = read_at_partitioned_old_leader(seed)
    assert reads == [], f"seed {seed}: stale read {reads}"

    cluster.network.heal()
    cluster.run_for(2 * SECOND)

    assert cluster.replicas[old].node.role is not Role.LEADER, f"seed {seed}"
    assert reads == [], f"seed {seed}: stale read {reads}"


def test_old_leader_that_skipped_the_round_would_serve_a_stale_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scenario above can fail: plant a leader that trusts a lease it never had, and the
    cut-off old leader answers the read at an index before the acknowledged write."""
    monkeypatch.setattr(raft.core._reads, "lease_holds", lambda state: True)

    _, _, reads, write = read_at_partitioned_old_leader(seed=0)

    assert [read.context for read in reads] == [b"after the write"]
    assert reads[0].index < write
