"""Linearizable reads without a log write: ReadIndex and leases (thesis §6.4, §6.4.1).

ReadIndex: the leader notes its commit index, confirms with a heartbeat round that a majority
still follows it (so no newer leader can have committed anything it does not know), and then
the read may be served once that index is applied. A leader that has not yet committed an
entry of its own term does not know the latest commit index, so it holds reads until it has
(etcd once served such reads too early). Followers ask the leader for a read index.

Lease reads skip the round: every follower that acknowledged a heartbeat sent at leader time T
ignores vote requests until its election timeout passes after T (check-quorum's rule), so no
other leader can exist before T + election_ticks on their clocks; the leader answers until
T + election_ticks - max_clock_drift_ticks on its own. Voters grant a transfer's vote despite
that promise (thesis §3.10), so a leader that sent `TimeoutNow` has no lease for the rest of
its term, even after abandoning the transfer: the message may still arrive.
"""

from __future__ import annotations

from raft.core._messages import Heartbeat, HeartbeatResponse, ReadIndexRequest, ReadIndexResponse
from raft.core._read_only import ReadState
from raft.core._state import NodeState, Role


def committed_in_own_term(state: NodeState) -> bool:
    """Whether the leader knows the latest commit index: an entry of its term is committed."""
    return state.log.term(state.log.committed) == state.term


def lease_holds(state: NodeState) -> bool:
    """Whether a lease read is safe now (see the module docstring)."""
    config = state.config
    if not config.lease_reads or state.transfer_target is not None or state.timeout_now_sent:
        return False
    rounds = dict(state.acked_rounds)
    rounds[state.node_id] = state.clock
    start = state.quorum.committed_index(rounds)
    return start > 0 and state.clock < start + config.election_ticks - config.max_clock_drift_ticks


def request_read(state: NodeState, context: bytes, requester: int) -> None:
    """Leader: start (or hold, or answer at once) a read for `requester`."""
    if not committed_in_own_term(state):
        state.held_reads.append((context, requester))
        return
    index = state.log.committed
    if state.quorum.voters == (state.node_id,) or lease_holds(state):
        _answer(state, index, context, requester)
        return
    if state.read_only.add(index, context, requester, state.node_id):
        for peer in state.peers:
            state.send(
                Heartbeat(
                    state.term,
                    state.node_id,
                    peer,
                    min(state.progress[peer].match_index, index),
                    state.clock,
                    context,
                )
            )


def release_held_reads(state: NodeState) -> None:
    """Leader: an entry of its term committed; start the reads held until then."""
    if state.held_reads and committed_in_own_term(state):
        held, state.held_reads = state.held_reads, []
        for context, requester in held:
            request_read(state, context, requester)


def acknowledge_round(state: NodeState, message: HeartbeatResponse) -> None:
    """Leader: a follower answered a heartbeat; advance its lease round and any read round."""
    sender = message.sender
    if message.round > state.acked_rounds.get(sender, 0):
        state.acked_rounds[sender] = message.round
    if not message.context:
        return
    acks = state.read_only.acknowledge(message.context, sender)
    if state.quorum.has_quorum(dict.fromkeys(acks, True)):
        for read in state.read_only.confirm(message.context):
            _answer(state, read.index, read.context, read.requester)


def _answer(state: NodeState, index: int, context: bytes, requester: int) -> None:
    if requester == state.node_id:
        state.read_states.append(ReadState(index, context))
    else:
        state.send(ReadIndexResponse(state.term, state.node_id, requester, context, index))


def handle_read_index_request(state: NodeState, message: ReadIndexRequest) -> None:
    """Leader: a follower asks for a read index on behalf of its client."""
    request_read(state, message.context, message.sender)


def handle_read_index_response(state: NodeState, message: ReadIndexResponse) -> None:
    """Follower: the leader's read index for our client's read."""
    state.read_states.append(ReadState(message.index, message.context))


def forward_read(state: NodeState, context: bytes) -> bool:
    """Follower: ask the known leader for a read index; False if no leader is known."""
    if state.leader_id is None or state.role is Role.LEADER:
        return False
    state.send(ReadIndexRequest(state.term, state.node_id, state.leader_id, context))
    return True
