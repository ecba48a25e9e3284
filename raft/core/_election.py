"""Leader election (§5.2, §5.4.1), pre-vote (thesis §9.6) and check-quorum (thesis §6.2).

Every role change happens in one `become_*` function here.
"""

from __future__ import annotations

from raft.core._membership import Membership, encode_membership
from raft.core._messages import Entry, EntryKind, TimeoutNow, VoteRequest, VoteResponse
from raft.core._quorum import VoteResult
from raft.core._replication import (
    append_noop,
    broadcast_append,
    broadcast_heartbeat,
    reset_progress,
    send_append,
    send_timeout_now_if_caught_up,
)
from raft.core._state import NodeState, Role


def become_follower(state: NodeState, term: int, leader_id: int | None) -> None:
    """Follow `leader_id` (None: unknown) in `term`; a new term clears the vote (§5.1)."""
    if term != state.term:
        state.term = term
        state.vote = None
    state.role = Role.FOLLOWER
    state.leader_id = leader_id
    state.votes = {}
    state.forget_leadership()
    state.heartbeat_elapsed = 0
    state.reset_election_timer()


def become_pre_candidate(state: NodeState) -> None:
    """Ask whether an election could be won before disturbing anyone's term (thesis §9.6)."""
    state.role = Role.PRE_CANDIDATE
    state.leader_id = None
    state.votes = {}
    state.forget_leadership()
    state.reset_election_timer()


def become_candidate(state: NodeState) -> None:
    """Start an election: a new term, a vote for ourselves (§5.2)."""
    state.term += 1
    state.vote = state.node_id
    state.role = Role.CANDIDATE
    state.leader_id = None
    state.votes = {}
    state.forget_leadership()
    state.reset_election_timer()


def become_leader(state: NodeState) -> None:
    """Take office: track followers, append a no-op of our term and send it (§5.3, §8)."""
    state.role = Role.LEADER
    state.leader_id = state.node_id
    state.votes = {}
    state.heartbeat_elapsed = 0
    state.reset_election_timer()
    reset_progress(state)
    append_noop(state)
    broadcast_append(state, send_if_empty=True)


def campaign(state: NodeState, pre_vote: bool, transfer: bool = False) -> None:
    """Start a (pre-)election and ask every other voter for its vote (`transfer`: because the
    leader handed over, so voters still hearing from it grant anyway)."""
    if pre_vote:
        become_pre_candidate(state)
        term = state.term + 1
    else:
        become_candidate(state)
        term = state.term
    _request_votes(state, term, pre_vote, transfer)


def _request_votes(state: NodeState, term: int, pre_vote: bool, transfer: bool) -> None:
    """Vote for ourselves and ask every other voter of the configuration in effect."""
    state.votes[state.node_id] = True
    if _tally(state, pre_vote):
        return
    log = state.log
    last_index, last_term = log.last_index(), log.last_term()
    for peer in state.voting_peers:
        state.send(
            VoteRequest(term, state.node_id, peer, last_index, last_term, pre_vote, transfer)
        )


def start_election(state: NodeState) -> None:
    """The election timer fired, or the caller asked: campaign if we may vote at all (a
    learner, a removed node or a joining one never does)."""
    if not state.is_voter or state.role is Role.LEADER:
        return
    campaign(state, pre_vote=state.config.pre_vote)


def force_membership(state: NodeState, membership: Membership) -> None:
    """Disaster recovery: start a term of our own, put `membership` in our log at its head
    (in effect at once, thesis §4.1) and campaign under it without pre-vote. Our last term is
    then higher than any survivor's, so every survivor with no live leader grants its vote."""
    become_candidate(state)
    log = state.log
    index = log.last_index() + 1
    log.append([Entry(state.term, index, encode_membership(membership), EntryKind.CONFIG.value)])
    state.memberships.record(index, membership)
    state.adopt_membership()
    _request_votes(state, state.term, pre_vote=False, transfer=False)


def step_down_if_removed(state: NodeState) -> None:
    """Leader: once a configuration that does not count us as a voter commits, hand the
    cluster over: step down and stop heartbeating (thesis §4.2.2). Until then we keep
    replicating, without counting ourselves toward its majorities."""
    if not state.is_voter and state.memberships.index <= state.log.committed:
        become_follower(state, state.term, None)


def tick(state: NodeState) -> None:
    """Advance the election timer; as leader, also check quorum, time out a leadership
    transfer and send heartbeats."""
    state.clock += 1
    state.election_elapsed += 1
    if state.role is not Role.LEADER:
        if state.election_elapsed >= state.randomized_election_timeout:
            start_election(state)
        return
    if state.transfer_target is not None:
        state.transfer_elapsed += 1
        if state.transfer_elapsed >= state.config.election_ticks:
            state.transfer_target = None  # the target did not take over: take proposals again
    if state.election_elapsed >= state.config.election_ticks:
        state.election_elapsed = 0
        if state.config.check_quorum and not _quorum_active(state):
            become_follower(state, state.term, None)
            return
    state.heartbeat_elapsed += 1
    if state.heartbeat_elapsed >= state.config.heartbeat_ticks:
        state.heartbeat_elapsed = 0
        broadcast_heartbeat(state)


def _quorum_active(state: NodeState) -> bool:
    """Whether a majority was heard from since the last check; resets the marks (§6.2)."""
    active = {voter: progress.recent_active for voter, progress in state.progress.items()}
    active[state.node_id] = True
    for progress in state.progress.values():
        progress.recent_active = False
    return state.quorum.has_quorum(active)


def in_leader_lease(state: NodeState) -> bool:
    """Whether we heard from a live leader within the minimum election timeout, in which case
    a vote request is ignored: the requester is disruptive, not needed (thesis §4.2.3). With
    lease reads, a restarted node also counts its first election timeout: before it went down
    it may have answered a heartbeat, which a leader's lease relies on (thesis §6.4.1)."""
    config = state.config
    if not config.check_quorum:
        return False
    if state.leader_id is not None and state.election_elapsed < config.election_ticks:
        return True
    return state.restarted_with_lease_promise and state.clock < config.election_ticks


def handle_vote_request(state: NodeState, message: VoteRequest) -> None:
    """Grant at most one vote per term, only to an up-to-date log (§5.2, §5.4.1); a pre-vote
    is granted on the same log test without changing our term or vote."""
    candidate = message.sender
    may_vote = (
        state.vote == candidate
        or (state.vote is None and state.leader_id is None)
        or (message.pre_vote and message.term > state.term)
    )
    granted = may_vote and state.log.is_up_to_date(message.last_log_index, message.last_log_term)
    if granted and not message.pre_vote:
        state.vote = candidate
        state.reset_election_timer()
    term = message.term if granted else state.term
    state.send(VoteResponse(term, state.node_id, candidate, granted, message.pre_vote))


def handle_timeout_now(state: NodeState, message: TimeoutNow) -> None:
    """Follower: the leader hands over leadership; campaign at once, skipping pre-vote, which
    the voters would refuse while they still hear from that leader (thesis §3.10)."""
    if state.is_voter:
        campaign(state, pre_vote=False, transfer=True)


def transfer_leadership(state: NodeState, target: int) -> None:
    """Leader: hand over to `target`: stop taking proposals, bring it up to date, then tell it
    to campaign; abandoned after an election timeout (thesis §3.10)."""
    state.transfer_target = target
    state.transfer_elapsed = 0
    # Even with nothing new for it: if appends to the target were lost, the empty one's
    # rejection starts the catch-up now rather than at the next heartbeat's answer.
    behind = state.progress[target].match_index < state.log.last_index()
    send_append(state, target, send_if_empty=behind)
    send_timeout_now_if_caught_up(state)


def handle_vote_response(state: NodeState, message: VoteResponse) -> None:
    """Candidate or pre-candidate: count a vote of the kind we asked for."""
    pre_vote = state.role is Role.PRE_CANDIDATE
    if message.pre_vote != pre_vote:
        return
    state.votes.setdefault(message.sender, message.granted)
    _tally(state, pre_vote)


def _tally(state: NodeState, pre_vote: bool) -> bool:
    """Act on a decided vote; True if it was decided."""
    result = state.quorum.vote_result(state.votes)
    if result is VoteResult.WON:
        if pre_vote:
            campaign(state, pre_vote=False)
        else:
            become_leader(state)
        return True
    if result is VoteResult.LOST:
        become_follower(state, state.term, None)
        return True
    return False
