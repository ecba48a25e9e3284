"""Paper tests for leader election (§5.1, §5.2, §5.4.1), pre-vote (thesis §9.6) and
check-quorum (thesis §6.2, §4.2.3).

Each test paraphrases one rule; message-level tests drive a single node by hand (set up → step
→ check the messages and state), cluster tests drive the seeded simulator.
"""

from __future__ import annotations

import random

import pytest

from raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    Message,
    Role,
    VoteRequest,
    VoteResponse,
)
from sim._cluster import Cluster
from sim._network import LinkFaults
from sim._replica import Replica
from tests.builders import make_cluster, make_leader, make_replica, messages_of

MS = 1_000_000
"""Simulated nanoseconds in a millisecond; the default tick is 10 ms."""
TICK_NS = 10 * MS
ELECTION_TICKS = 10


def votes_in(messages: list[Message]) -> list[VoteResponse]:
    return [m for m in messages if isinstance(m, VoteResponse)]


def make_candidate(node_id: int = 1, voters: tuple[int, ...] = (1, 2, 3), **options) -> Replica:
    """A replica that campaigned without pre-vote and asked for votes (requests dropped)."""
    replica = make_replica(node_id, voters, pre_vote=False, **options)
    replica.node.campaign()
    messages_of(replica)
    return replica


def assert_one_leader_per_term(cluster: Cluster) -> None:
    doubled = {term: ids for term, ids in cluster.leaders_by_term.items() if len(ids) > 1}
    assert not doubled, f"seed {cluster.seed}: two leaders in one term: {doubled}"


def assert_agreed_leader(cluster: Cluster) -> int:
    """Every live node follows one leader in one term; return the leader."""
    leader = cluster.leader()
    assert leader is not None, f"seed {cluster.seed}: no leader"
    term = cluster.replicas[leader].node.term
    for node_id in cluster.live():
        node = cluster.replicas[node_id].node
        assert (node.leader_id, node.term) == (leader, term), f"seed {cluster.seed}: {node!r}"
    leaders = [i for i in cluster.live() if cluster.replicas[i].node.role is Role.LEADER]
    assert leaders == [leader], f"seed {cluster.seed}"
    return leader


# ---- roles and timeouts --------------------------------------------------------------------


def test_nodes_start_as_followers_without_a_leader() -> None:
    """§5.2: when servers start up, they begin as followers."""
    replica = make_replica(1)

    assert replica.node.role is Role.FOLLOWER
    assert replica.node.leader_id is None
    assert (replica.node.term, replica.node.vote) == (0, None)


def test_restarted_node_starts_as_follower_in_its_persisted_term() -> None:
    """§5.2, Figure 2: term and vote survive a restart; the role does not."""
    replica = make_leader(1, terms=[1], term=1)
    term = replica.node.term

    replica.crash()
    replica.restart()

    assert replica.node.role is Role.FOLLOWER
    assert (replica.node.term, replica.node.vote) == (term, 1)


def ticks_until_campaign(replica: Replica, limit: int) -> int:
    node = replica.node
    for elapsed in range(1, limit + 1):
        node.tick()
        if node.role is not Role.FOLLOWER:
            return elapsed
    raise AssertionError(f"no campaign within {limit} ticks")


def ticks_until_term(replica: Replica, term: int, limit: int) -> None:
    for _ in range(limit):
        replica.node.tick()
        if replica.node.term == term:
            return
    raise AssertionError(f"not in term {term} after {limit} ticks: {replica.node!r}")


@pytest.mark.parametrize("election_ticks", [2, 5, 10, 17])
def test_election_timeout_is_randomized_within_one_to_two_election_ticks(
    election_ticks: int,
) -> None:
    """§5.2: election timeouts are chosen randomly from a fixed interval, here
    [election_ticks, 2 * election_ticks), so that split votes are rare."""
    timeouts = {}
    for seed in range(200):
        replica = make_replica(1, seed=seed, election_ticks=election_ticks)
        timeouts[seed] = ticks_until_campaign(replica, 4 * election_ticks)

    outside = {s: t for s, t in timeouts.items() if not election_ticks <= t < 2 * election_ticks}
    assert not outside, f"timeouts outside the range, by seed: {outside}"
    assert set(timeouts.values()) == set(range(election_ticks, 2 * election_ticks))


def test_each_new_election_draws_a_new_timeout() -> None:
    """§5.2: each candidate restarts its randomized timer at the start of an election; the
    draws come from the node's own seeded generator, so they vary yet replay exactly."""
    replica = make_replica(1, seed=7)
    timeouts: list[int] = []
    elapsed = 0
    while len(timeouts) < 30:
        replica.node.tick()
        elapsed += 1
        if messages_of(replica):  # each unanswered (pre-)campaign asks for votes again
            timeouts.append(elapsed)
            elapsed = 0

    assert all(ELECTION_TICKS <= t < 2 * ELECTION_TICKS for t in timeouts), timeouts
    assert len(set(timeouts)) > 3, timeouts
    again = make_replica(1, seed=7)
    assert ticks_until_campaign(again, 20) == timeouts[0]


def test_follower_that_times_out_asks_for_pre_votes_first() -> None:
    """Thesis §9.6: before disturbing anyone, a follower whose timer fires asks whether it
    could win, carrying the term it would campaign in, without changing its own term or vote."""
    replica = make_replica(1, terms=[1, 1], term=1)

    ticks_until_campaign(replica, 2 * ELECTION_TICKS)
    ready = replica.node.ready()

    assert replica.node.role is Role.PRE_CANDIDATE
    assert (replica.node.term, replica.node.vote) == (1, None)
    assert ready.hard_state is None
    assert list(ready.messages) == [
        VoteRequest(2, 1, peer, last_log_index=2, last_log_term=1, pre_vote=True) for peer in (2, 3)
    ]


def test_follower_that_times_out_without_pre_vote_campaigns_in_the_next_term() -> None:
    """§5.2: to begin an election, a follower increments its current term, transitions to
    candidate, votes for itself and issues RequestVote to each of the other servers."""
    replica = make_replica(1, terms=[1, 1], term=1, pre_vote=False)

    ticks_until_campaign(replica, 2 * ELECTION_TICKS)
    ready = replica.node.ready()

    assert replica.node.role is Role.CANDIDATE
    assert (replica.node.term, replica.node.vote) == (2, 1)
    assert ready.hard_state == HardState(term=2, vote=1, commit=0)
    assert list(ready.messages) == [
        VoteRequest(2, 1, peer, last_log_index=2, last_log_term=1) for peer in (2, 3)
    ]


def test_candidate_whose_election_times_out_starts_another_term() -> None:
    """§5.2: a candidate that neither wins nor loses times out and starts a new election by
    incrementing its term."""
    replica = make_candidate(1)

    ticks_until_term(replica, 2, limit=2 * ELECTION_TICKS)

    assert replica.node.role is Role.CANDIDATE
    assert replica.node.vote == 1


# ---- winning and losing --------------------------------------------------------------------


@pytest.mark.parametrize("voters", [(1, 2, 3), (1, 2, 3, 4, 5)], ids=["3-nodes", "5-nodes"])
def test_candidate_with_a_majority_becomes_leader_and_appends_a_noop(
    voters: tuple[int, ...],
) -> None:
    """§5.2: a candidate wins once it has votes from a majority, then sends AppendEntries to
    establish its authority; §8: it starts its term with a no-op entry so that committing it
    commits everything before it."""
    replica = make_candidate(1, voters, terms=[1, 1], term=1)
    node = replica.node
    majority = len(voters) // 2 + 1

    for voter in voters[1 : majority - 1]:
        node.step(VoteResponse(2, voter, 1, True))
        assert node.role is Role.CANDIDATE, f"won with {voter} of {len(voters)}"
    node.step(VoteResponse(2, voters[majority - 1], 1, True))
    messages = messages_of(replica)

    assert node.role is Role.LEADER
    assert node.leader_id == 1
    assert node.log_entries(3, 4) == [Entry(2, 3, b"", EntryKind.NOOP.value)]
    appends = [m for m in messages if isinstance(m, AppendEntries)]
    assert [m.recipient for m in appends] == list(voters[1:])
    for append in appends:
        assert (append.term, append.prev_log_index, append.prev_log_term) == (2, 2, 1)
        assert append.entries == (Entry(2, 3, b"", EntryKind.NOOP.value),)


def test_duplicate_votes_from_one_voter_count_once() -> None:
    """§5.2: a majority means a majority of distinct servers."""
    replica = make_candidate(1, (1, 2, 3, 4, 5))

    for _ in range(3):
        replica.node.step(VoteResponse(1, 2, 1, True))

    assert replica.node.role is Role.CANDIDATE


def test_candidate_rejected_by_a_majority_returns_to_follower() -> None:
    """§5.2: a candidate that cannot win any more stops campaigning (it stays in its term)."""
    replica = make_candidate(1, (1, 2, 3))

    replica.node.step(VoteResponse(1, 2, 1, False))
    replica.node.step(VoteResponse(1, 3, 1, False))

    assert replica.node.role is Role.FOLLOWER
    assert replica.node.term == 1


def test_pre_candidate_with_a_majority_of_pre_votes_campaigns_for_real() -> None:
    """Thesis §9.6: only once a majority would vote does the node bump its term."""
    replica = make_replica(1)
    node = replica.node
    node.campaign()
    messages_of(replica)

    node.step(VoteResponse(1, 2, 1, True, pre_vote=True))
    ready = node.ready()

    assert node.role is Role.CANDIDATE
    assert (node.term, node.vote) == (1, 1)
    assert ready.hard_state == HardState(term=1, vote=1, commit=0)
    assert [m for m in ready.messages if isinstance(m, VoteRequest)] == [
        VoteRequest(1, 1, peer, 0, 0, pre_vote=False) for peer in (2, 3)
    ]


def test_pre_candidate_that_loses_keeps_its_term() -> None:
    """Thesis §9.6: a lost pre-vote leaves no trace in anyone's term."""
    replica = make_replica(1, term=4)
    node = replica.node
    node.campaign()
    messages_of(replica)

    node.step(VoteResponse(4, 2, 1, False, pre_vote=True))
    node.step(VoteResponse(4, 3, 1, False, pre_vote=True))

    assert node.role is Role.FOLLOWER
    assert (node.term, node.vote) == (4, None)


def test_pre_vote_responses_do_not_count_as_votes_and_vice_versa() -> None:
    """Thesis §9.6: a pre-vote grants no real vote; only votes of the kind asked for count."""
    candidate = make_candidate(1)
    candidate.node.step(VoteResponse(1, 2, 1, True, pre_vote=True))
    assert candidate.node.role is Role.CANDIDATE

    pre_candidate = make_replica(1)
    pre_candidate.node.campaign()
    pre_candidate.node.step(VoteResponse(0, 2, 1, True))
    assert pre_candidate.node.role is Role.PRE_CANDIDATE


@pytest.mark.parametrize("seed", range(10))
def test_split_vote_resolves_to_exactly_one_leader(seed: int) -> None:
    """§5.2: when votes split and no candidate wins, each times out after a random interval
    and a new election follows; randomization makes one candidate win soon."""
    cluster = make_cluster(5, seed=seed, pre_vote=False)
    # Two candidates in term 1, each reaching one voter: two votes each of five, no winner.
    cluster.network.partition([1, 3], [2, 4], [5])
    cluster.replicas[1].node.campaign()
    cluster.replicas[2].node.campaign()
    cluster.settle()
    assert [cluster.replicas[i].node.vote for i in (1, 2, 3, 4, 5)] == [1, 2, 1, 2, None]
    assert cluster.leader() is None

    cluster.network.heal()
    cluster.elect()
    cluster.run_for(1_000 * MS)

    assert_agreed_leader(cluster)
    assert 1 not in cluster.leaders_by_term, f"seed {seed}: term 1 had a winner"
    assert_one_leader_per_term(cluster)


# ---- §5.1 term rules -----------------------------------------------------------------------

HIGHER_TERM_MESSAGES = {
    "AppendEntries": AppendEntries(5, 2, 1, 0, 0, (), 0),
    "Heartbeat": Heartbeat(5, 2, 1, 0),
    "AppendEntriesResponse": AppendEntriesResponse(5, 2, 1, False),
    "HeartbeatResponse": HeartbeatResponse(5, 2, 1),
    "VoteRequest": VoteRequest(5, 2, 1, 0, 0),
    "VoteResponse": VoteResponse(5, 2, 1, False),
    "rejected PreVoteResponse": VoteResponse(5, 2, 1, False, pre_vote=True),
}
FROM_LEADER = (AppendEntries, Heartbeat)


@pytest.mark.parametrize("kind", HIGHER_TERM_MESSAGES)
@pytest.mark.parametrize("role", [Role.PRE_CANDIDATE, Role.CANDIDATE, Role.LEADER])
def test_any_message_with_a_higher_term_makes_a_node_follower_of_that_term(
    role: Role, kind: str
) -> None:
    """§5.1: if a server learns of a term larger than its own, it updates its term; a
    candidate or leader reverts to follower. (Check-quorum is off: its lease would make a
    leader ignore the vote request, which a separate test covers.)"""
    if role is Role.LEADER:
        replica = make_leader(1, check_quorum=False)
    else:
        replica = make_replica(1, pre_vote=role is Role.PRE_CANDIDATE, check_quorum=False)
        replica.node.campaign()
        messages_of(replica)
    assert replica.node.role is role
    message = HIGHER_TERM_MESSAGES[kind]

    replica.node.step(message)
    ready = replica.node.ready()

    node = replica.node
    assert node.role is Role.FOLLOWER
    assert node.term == 5
    assert node.leader_id == (2 if isinstance(message, FROM_LEADER) else None)
    assert ready.hard_state is not None
    assert ready.hard_state.term == 5


def test_campaign_on_a_leader_changes_nothing() -> None:
    """§5.2: elections are for finding a leader; a leader already is one."""
    replica = make_leader(1)
    term = replica.node.term

    replica.node.campaign()

    assert (replica.node.role, replica.node.term) == (Role.LEADER, term)
    assert messages_of(replica) == []


def test_candidate_that_hears_from_a_leader_of_its_own_term_follows_it() -> None:
    """§5.2: if the AppendEntries comes from a leader whose term is at least as large as the
    candidate's, the candidate recognizes it as legitimate and returns to follower."""
    replica = make_candidate(1)

    replica.node.step(Heartbeat(1, 2, 1, 0))

    assert replica.node.role is Role.FOLLOWER
    assert (replica.node.term, replica.node.leader_id, replica.node.vote) == (1, 2, 1)


@pytest.mark.parametrize(
    "stale", [AppendEntries(2, 2, 1, 0, 0, (), 0), Heartbeat(2, 2, 1, 0)], ids=["append", "beat"]
)
def test_stale_leader_messages_are_answered_with_the_current_term(stale: Message) -> None:
    """§5.1: if a server receives a request with a stale term number, it rejects the request;
    the reply carries the current term, so the stale leader learns it has been deposed."""
    replica = make_replica(1, term=3)

    replica.node.step(stale)
    messages = messages_of(replica)

    assert messages == [AppendEntriesResponse(3, 1, 2, False)]
    assert (replica.node.term, replica.node.leader_id) == (3, None)


def test_stale_leader_steps_down_on_the_answer() -> None:
    """§5.1: a leader that learns of a later term from a reply reverts to follower."""
    stale_leader = make_leader(1, term=1)
    follower = make_replica(2, term=3)
    follower.node.step(Heartbeat(stale_leader.node.term, 1, 2, 0))

    (answer,) = messages_of(follower)
    stale_leader.node.step(answer)

    assert stale_leader.node.role is Role.FOLLOWER
    assert stale_leader.node.term == 3


@pytest.mark.parametrize("seed", range(5))
def test_partitioned_leader_steps_down_once_it_hears_the_new_term(seed: int) -> None:
    """§5.1: a leader cut off while the others elected a new one learns of the new term when
    the partition heals, and steps down. (Check-quorum is off so that only §5.1 applies.)"""
    cluster = make_cluster(3, seed=seed, check_quorum=False)
    old_leader = cluster.elect()
    cluster.settle()
    old_term = cluster.replicas[old_leader].node.term
    cluster.network.partition([old_leader], [i for i in (1, 2, 3) if i != old_leader])
    cluster.run_for(2_000 * MS)
    assert cluster.replicas[old_leader].node.role is Role.LEADER, f"seed {seed}"

    cluster.network.heal()
    cluster.run_for(1_000 * MS)

    leader = assert_agreed_leader(cluster)
    assert leader != old_leader, f"seed {seed}"
    assert cluster.replicas[old_leader].node.term > old_term
    assert_one_leader_per_term(cluster)


@pytest.mark.parametrize("pre_vote", [False, True], ids=["vote", "pre-vote"])
def test_stale_term_vote_requests_are_rejected(pre_vote: bool) -> None:
    """§5.1: a request with a stale term is rejected (a stale pre-vote gets an explicit no,
    so the pre-candidate learns of the later term, thesis §9.6)."""
    replica = make_replica(1, term=3)

    replica.node.step(VoteRequest(2, 2, 1, 10, 2, pre_vote=pre_vote))
    messages = messages_of(replica)

    assert (replica.node.term, replica.node.vote) == (3, None)
    assert not any(m.granted for m in votes_in(messages))
    if pre_vote:
        assert messages == [VoteResponse(3, 1, 2, False, pre_vote=True)]


# ---- §5.2 one vote per term ----------------------------------------------------------------


def test_a_node_votes_for_at_most_one_candidate_per_term() -> None:
    """§5.2: each server votes for at most one candidate in a given term, first-come-first-
    served."""
    replica = make_replica(1, term=1)
    node = replica.node

    node.step(VoteRequest(2, 2, 1, 0, 0))
    first = votes_in(messages_of(replica))
    node.step(VoteRequest(2, 3, 1, 0, 0))
    second = votes_in(messages_of(replica))

    assert first == [VoteResponse(2, 1, 2, True)]
    assert second == [VoteResponse(2, 1, 3, False)]
    assert (node.term, node.vote) == (2, 2)


def test_the_same_candidate_asking_again_is_granted_again() -> None:
    """§5.2: a retried RequestVote (its reply was lost) gets the same answer."""
    replica = make_replica(1, term=1)
    node = replica.node
    node.step(VoteRequest(2, 2, 1, 0, 0))
    messages_of(replica)

    node.step(VoteRequest(2, 2, 1, 0, 0))

    assert votes_in(messages_of(replica)) == [VoteResponse(2, 1, 2, True)]
    assert node.vote == 2


def test_a_vote_is_persisted_in_the_ready_that_sends_it() -> None:
    """§5.2, Figure 2: currentTerm and votedFor are updated on stable storage before
    responding to RPCs, so the vote's hard state rides in the same Ready as the reply."""
    replica = make_replica(1, term=1)

    replica.node.step(VoteRequest(2, 2, 1, 0, 0))
    ready = replica.node.ready()

    assert ready.hard_state == HardState(term=2, vote=2, commit=0)
    assert votes_in(list(ready.messages)) == [VoteResponse(2, 1, 2, True)]


def test_a_restarted_node_still_refuses_a_second_vote_in_its_term() -> None:
    """§5.2: the vote survives a crash, so a node cannot vote twice in one term by
    restarting in between."""
    replica = make_replica(1, term=1)
    replica.node.step(VoteRequest(2, 2, 1, 0, 0))
    messages_of(replica)

    replica.crash()
    replica.restart()
    replica.node.step(VoteRequest(2, 3, 1, 0, 0))

    assert votes_in(messages_of(replica)) == [VoteResponse(2, 1, 3, False)]
    assert (replica.node.term, replica.node.vote) == (2, 2)


def test_a_follower_of_a_known_leader_grants_no_vote_in_that_term() -> None:
    """§5.2: a follower that already accepts a leader for the term has nobody to elect."""
    replica = make_replica(1, term=1)
    replica.node.step(Heartbeat(1, 2, 1, 0))
    messages_of(replica)

    replica.node.step(VoteRequest(1, 3, 1, 0, 0))

    assert votes_in(messages_of(replica)) == [VoteResponse(1, 1, 3, False)]
    assert replica.node.vote is None


# ---- §5.4.1 election restriction -----------------------------------------------------------


@pytest.mark.parametrize(
    ("last_log_index", "last_log_term", "granted"),
    [
        (1, 3, True),  # later last term wins even with a shorter log
        (3, 2, True),  # same last entry
        (5, 2, True),  # same last term, longer log
        (2, 2, False),  # same last term, shorter log
        (10, 1, False),  # longer log but an earlier last term
        (0, 0, False),  # empty log
    ],
    ids=["later-term", "same", "longer", "shorter", "stale-term", "empty"],
)
def test_vote_only_for_a_log_at_least_as_up_to_date(
    last_log_index: int, last_log_term: int, granted: bool
) -> None:
    """§5.4.1: the voter denies its vote if its own log is more up-to-date than the
    candidate's: later last term wins; with equal last terms, the longer log wins."""
    replica = make_replica(1, terms=[1, 1, 2], term=2)

    replica.node.step(VoteRequest(3, 2, 1, last_log_index, last_log_term))

    assert [v.granted for v in votes_in(messages_of(replica))] == [granted]
    assert replica.node.term == 3, "the request's term is adopted either way (§5.1)"
    assert replica.node.vote == (2 if granted else None)


@pytest.mark.parametrize("pre_vote", [False, True], ids=["vote", "pre-vote"])
def test_a_stale_log_loses_the_election(pre_vote: bool) -> None:
    """§5.4.1: a candidate whose log lacks committed entries cannot win; it ends up follower
    while the others keep their logs."""
    replica = make_replica(1, terms=[1], term=1, pre_vote=pre_vote)
    voters = [make_replica(peer, terms=[1, 1], term=1) for peer in (2, 3)]

    replica.node.campaign()
    for request in messages_of(replica):
        voter = voters[request.recipient - 2]
        voter.node.step(request)
        for answer in messages_of(voter):
            replica.node.step(answer)

    assert replica.node.role is Role.FOLLOWER
    assert all(v.node.vote is None for v in voters)
    # A failed real election cost a term; a failed pre-vote costs nobody one (thesis §9.6).
    expected_term = 1 if pre_vote else 2
    assert [r.node.term for r in (replica, *voters)] == [expected_term] * 3


def test_refused_pre_vote_answers_with_the_voters_own_term() -> None:
    """Thesis §9.6: a refusal carries the voter's term, not the term the pre-candidate
    proposed, so refusing a pre-vote raises nobody's term."""
    replica = make_replica(2, terms=[1, 1], term=1)

    replica.node.step(VoteRequest(2, 1, 2, 1, 1, pre_vote=True))

    assert messages_of(replica) == [VoteResponse(1, 2, 1, False, pre_vote=True)]
    assert replica.node.term == 1


# ---- pre-vote (thesis §9.6) ----------------------------------------------------------------


def test_granting_a_pre_vote_changes_neither_term_nor_vote() -> None:
    """Thesis §9.6: a pre-vote asks "would you vote for me?"; saying yes commits to nothing."""
    replica = make_replica(1, term=2, vote=3)

    replica.node.step(VoteRequest(3, 2, 1, 0, 0, pre_vote=True))
    ready = replica.node.ready()

    assert list(ready.messages) == [VoteResponse(3, 1, 2, True, pre_vote=True)]
    assert ready.hard_state is None
    assert (replica.node.term, replica.node.vote) == (2, 3)


@pytest.mark.parametrize("seed", range(10))
def test_a_node_back_from_isolation_does_not_disturb_the_majority(seed: int) -> None:
    """Thesis §9.6: with pre-vote, a node partitioned away cannot win a pre-vote, so it never
    raises its term; when it returns, the healthy leader and term stay as they were."""
    cluster = make_cluster(3, seed=seed)
    leader = cluster.elect()
    cluster.run_for(200 * MS)
    term = cluster.replicas[leader].node.term
    isolated = next(i for i in (1, 2, 3) if i != leader)
    cluster.network.partition([isolated], [i for i in (1, 2, 3) if i != isolated])

    cluster.run_for(50 * ELECTION_TICKS * TICK_NS)
    assert cluster.replicas[isolated].node.term == term, f"seed {seed}"
    cluster.network.heal()
    cluster.run_for(2_000 * MS)

    assert assert_agreed_leader(cluster) == leader, f"seed {seed}"
    assert [r.node.term for r in cluster.replicas.values()] == [term] * 3, f"seed {seed}"
    assert list(cluster.leaders_by_term) == [term], f"seed {seed}"


@pytest.mark.parametrize("seed", range(3))
def test_without_pre_vote_a_node_back_from_isolation_forces_a_new_term(seed: int) -> None:
    """The control for the test above (thesis §9.6): without pre-vote the isolated node's
    term climbs, and its return deposes a healthy leader."""
    cluster = make_cluster(3, seed=seed, pre_vote=False)
    leader = cluster.elect()
    cluster.run_for(200 * MS)
    term = cluster.replicas[leader].node.term
    isolated = next(i for i in (1, 2, 3) if i != leader)
    cluster.network.partition([isolated], [i for i in (1, 2, 3) if i != isolated])

    cluster.run_for(50 * ELECTION_TICKS * TICK_NS)
    cluster.network.heal()
    cluster.run_for(2_000 * MS)

    new_leader = assert_agreed_leader(cluster)
    assert cluster.replicas[new_leader].node.term > term, f"seed {seed}"
    assert_one_leader_per_term(cluster)


# ---- check-quorum (thesis §6.2, §4.2.3) ----------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_leader_cut_off_in_a_minority_steps_down_within_an_election_timeout(seed: int) -> None:
    """Thesis §6.2: a leader that has not heard from a majority for an election timeout
    steps down, so clients of a minority leader are not left waiting forever. Its marks are
    checked once per election timeout, so stepping down takes at most two of them."""
    cluster = make_cluster(5, seed=seed)
    leader = cluster.elect()
    cluster.run_for(200 * MS)
    companion = next(i for i in cluster.replicas if i != leader)
    majority = [i for i in cluster.replicas if i not in (leader, companion)]
    cluster.network.partition([leader, companion], majority)

    stepped_down = cluster.run_until(
        lambda: cluster.replicas[leader].node.role is not Role.LEADER,
        timeout_ns=2 * ELECTION_TICKS * TICK_NS,
    )

    assert stepped_down, f"seed {seed}: still leader after two election timeouts"
    cluster.run_for(2_000 * MS)
    new_leader = cluster.leader()
    assert new_leader in majority, f"seed {seed}"
    assert_one_leader_per_term(cluster)


@pytest.mark.parametrize("seed", range(3))
def test_without_check_quorum_a_minority_leader_stays_leader(seed: int) -> None:
    """The control for the test above: with check-quorum off, nothing tells it to stop."""
    cluster = make_cluster(5, seed=seed, check_quorum=False)
    leader = cluster.elect()
    cluster.run_for(200 * MS)
    companion = next(i for i in cluster.replicas if i != leader)
    cluster.network.partition(
        [leader, companion], [i for i in cluster.replicas if i not in (leader, companion)]
    )

    cluster.run_for(20 * ELECTION_TICKS * TICK_NS)

    assert cluster.replicas[leader].node.role is Role.LEADER, f"seed {seed}"


def test_follower_in_a_live_leader_lease_ignores_a_higher_term_vote_request() -> None:
    """Thesis §4.2.3: a server that heard from a current leader within the minimum election
    timeout neither updates its term nor grants its vote on a RequestVote."""
    replica = make_replica(2, term=1)
    replica.node.step(Heartbeat(1, 1, 2, 0))
    messages_of(replica)

    replica.node.step(VoteRequest(2, 3, 2, 0, 0))

    assert messages_of(replica) == []
    assert (replica.node.term, replica.node.vote, replica.node.leader_id) == (1, None, 1)


def test_without_check_quorum_a_follower_grants_a_higher_term_vote_request() -> None:
    """§5.1, §5.2: the control for the lease test; without the lease the vote is granted."""
    replica = make_replica(2, term=1, check_quorum=False)
    replica.node.step(Heartbeat(1, 1, 2, 0))
    messages_of(replica)

    replica.node.step(VoteRequest(2, 3, 2, 0, 0))

    assert votes_in(messages_of(replica)) == [VoteResponse(2, 2, 3, True)]
    assert (replica.node.term, replica.node.vote) == (2, 3)


def test_the_lease_ends_an_election_timeout_after_the_leader_was_last_heard() -> None:
    """Thesis §4.2.3: only a leader heard within the minimum election timeout holds a lease."""
    replica = make_replica(2, term=1)
    replica.node.step(Heartbeat(1, 1, 2, 0))
    messages_of(replica)

    for _ in range(ELECTION_TICKS):
        replica.node.tick()
    messages_of(replica)
    replica.node.step(VoteRequest(2, 3, 2, 0, 0))

    assert votes_in(messages_of(replica)) == [VoteResponse(2, 2, 3, True)]


def test_leader_ignores_a_higher_term_vote_request_within_its_lease() -> None:
    """Thesis §4.2.3: the leader itself is not deposed by a disruptive candidate."""
    replica = make_leader(1)
    term = replica.node.term

    replica.node.step(VoteRequest(term + 1, 3, 1, 0, 0))

    assert replica.node.role is Role.LEADER
    assert replica.node.term == term


# ---- whole clusters ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("size", [3, 5])
def test_a_cluster_elects_exactly_one_leader(size: int, seed: int) -> None:
    """§5.2: from a cold start, one node wins and every other node follows it."""
    cluster = make_cluster(size, seed=seed)

    cluster.elect()
    cluster.run_for(1_000 * MS)

    assert_agreed_leader(cluster)
    assert_one_leader_per_term(cluster)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("size", [3, 5])
def test_no_term_ever_has_two_leaders_under_random_partitions(size: int, seed: int) -> None:
    """§5.2 election safety: at most one leader can be elected in a given term, whatever the
    network does; after it heals, the cluster agrees on one leader."""
    cluster = make_cluster(size, seed=seed, pre_vote=seed % 2 == 0, check_quorum=seed % 3 != 0)
    schedule = random.Random(f"{seed}/partitions")
    node_ids = list(cluster.replicas)

    for _ in range(15):
        schedule.shuffle(node_ids)
        cut = schedule.randrange(1, size)
        cluster.network.partition(node_ids[:cut], node_ids[cut:])
        cluster.run_for(schedule.randrange(50, 800) * MS)
        assert_one_leader_per_term(cluster)
    cluster.network.heal()
    cluster.elect()
    cluster.run_for(2_000 * MS)

    assert_agreed_leader(cluster)
    assert_one_leader_per_term(cluster)


@pytest.mark.parametrize("seed", range(20))
def test_no_term_ever_has_two_leaders_through_crashes_loss_and_one_way_links(seed: int) -> None:
    """§5.2 election safety, Figure 2 persistence: votes survive crashes, so even with lost,
    duplicated and one-way messages no term gets two leaders; once the faults stop, the
    cluster elects one leader that everyone follows."""
    faults = LinkFaults(loss=0.1, duplicate=0.1)
    cluster = make_cluster(5, seed=seed, faults=faults)
    schedule = random.Random(f"{seed}/chaos")
    node_ids = list(cluster.replicas)

    for _ in range(30):
        victim = schedule.choice(node_ids)
        action = schedule.choice(["crash", "restart", "block", "heal"])
        if action == "crash" and len(cluster.live()) > 2:
            cluster.crash(victim)
        elif action == "restart" and victim not in cluster.live():
            cluster.restart(victim)
        elif action == "block":
            cluster.network.block(victim, schedule.choice(node_ids))
        elif action == "heal":
            cluster.network.heal()
        cluster.run_for(schedule.randrange(20, 500) * MS)
        assert_one_leader_per_term(cluster)
    for node_id in node_ids:
        if node_id not in cluster.live():
            cluster.restart(node_id)
    cluster.network.heal()
    cluster.network.faults = LinkFaults()
    cluster.elect()
    cluster.run_for(2_000 * MS)

    assert_agreed_leader(cluster)
    assert_one_leader_per_term(cluster)
