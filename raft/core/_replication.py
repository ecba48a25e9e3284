"""Log replication (§5.3) and commitment (§5.4.2): the leader's side and the follower's side."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from itertools import count, repeat

from raft.core._membership import Membership, decode_membership, encode_membership
from raft.core._messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    TimeoutNow,
)
from raft.core._progress import Progress, ProgressState
from raft.core._reads import acknowledge_round, release_held_reads
from raft.core._snapshots import send_chunk
from raft.core._state import NodeState

# Building entries straight from tuples keeps the per-command cost of a proposal at C speed.
_new_entry = partial(tuple.__new__, Entry)
_COMMAND_KINDS = repeat(EntryKind.COMMAND.value)
_CONFIG = EntryKind.CONFIG.value


def reset_progress(state: NodeState) -> None:
    """A new leader assumes every follower is caught up and probes from its own last index
    (§5.3: nextIndex initialised to the leader's last log index + 1)."""
    next_index = state.log.last_index() + 1
    capacity = state.config.max_inflight_messages
    state.progress = {
        member: Progress(next_index, capacity) for member in sorted((*state.peers, state.node_id))
    }
    own = state.progress[state.node_id]
    own.match_index = next_index - 1
    own.become_replicate()


def sync_progress(state: NodeState) -> None:
    """Leader: the configuration changed; track every new member (probing from our last index,
    as for a new leader) and forget those that left (thesis §4.1: replicate to all members)."""
    progress = state.progress
    members = {*state.peers, state.node_id}
    for gone in [node for node in progress if node not in members]:
        del progress[gone]
        state.acked_rounds.pop(gone, None)
        if gone == state.transfer_target:
            state.transfer_target = None
    next_index = state.log.last_index() + 1
    for member in state.peers:
        if member not in progress:
            progress[member] = Progress(next_index, state.config.max_inflight_messages)


def append_config(state: NodeState, membership: Membership) -> int:
    """Leader: append a CONFIG entry; it takes effect at once, being in our log (thesis §4.1),
    and goes to every member of the new configuration. Returns its index."""
    log = state.log
    index = log.last_index() + 1
    log.append([Entry(state.term, index, encode_membership(membership), _CONFIG)])
    state.memberships.record(index, membership)
    state.adopt_membership()
    sync_progress(state)
    state.progress[state.node_id].acknowledged(index)
    maybe_commit(state)
    broadcast_append(state)
    return index


def leave_joint(state: NodeState) -> int:
    """Leader: the joint configuration committed; append its incoming half alone (§4.3)."""
    membership = state.membership
    assert membership is not None and membership.joint
    return append_config(state, Membership(membership.voters, (), membership.learners))


def append_entries(state: NodeState, entries: Sequence[Entry]) -> None:
    """Append new entries to the leader's own log and count them for commitment."""
    log = state.log
    log.append(entries)
    state.progress[state.node_id].acknowledged(log.last_index())
    maybe_commit(state)


def append_commands(state: NodeState, commands: Sequence[bytes]) -> int:
    """Append `commands` as entries of the current term and send them; returns the first index."""
    first = state.log.last_index() + 1
    append_entries(
        state,
        list(map(_new_entry, zip(repeat(state.term), count(first), commands, _COMMAND_KINDS))),
    )
    broadcast_append(state)
    return first


def append_noop(state: NodeState) -> None:
    """A new leader's empty entry: committing it commits every earlier entry (§5.4.2, §8)."""
    index = state.log.last_index() + 1
    append_entries(state, [Entry(state.term, index, b"", EntryKind.NOOP.value)])


def maybe_commit(state: NodeState) -> bool:
    """Advance the commit index to what a majority holds, but only by counting replicas of an
    entry of the leader's own term (§5.4.2, Figure 8); True if it moved."""
    progress = state.progress
    index = state.quorum.committed_index(
        {voter: progress[voter].match_index for voter in state.quorum.voters}
    )
    log = state.log
    if index > log.committed and log.term(index) == state.term:
        log.commit_to(index)
        release_held_reads(state)
        if state.memberships.index <= index and state.config.auto_leave:
            membership = state.membership
            if membership is not None and membership.joint:
                leave_joint(state)
        return True
    return False


def send_append(state: NodeState, peer: int, send_if_empty: bool) -> bool:
    """Send `peer` the entries it is missing, if its progress allows; True if sent. When
    they were compacted away, send the next chunk of the snapshot instead (paper §7)."""
    progress = state.progress[peer]
    if progress.is_paused():
        return False
    config = state.config
    log = state.log
    if progress.next_index < log.first_index() or progress.state is ProgressState.SNAPSHOT:
        return send_chunk(state, peer, progress)
    entries = log.entries_for_message(
        progress.next_index, config.max_entries_per_message, config.max_bytes_per_message
    )
    if not entries and not send_if_empty:
        return False
    prev_index = progress.next_index - 1
    state.send(
        AppendEntries(
            state.term,
            state.node_id,
            peer,
            prev_index,
            log.term(prev_index),
            tuple(entries),
            log.committed,
            bool(entries) and state.memberships.any_between(prev_index + 1, entries[-1].index),
        )
    )
    if entries:
        progress.sent_entries(entries[-1].index)
    elif progress.state is ProgressState.PROBE:
        progress.probe_sent = True
    return True


def send_all_possible(state: NodeState, peer: int) -> None:
    """Stream to a replicating follower until its window fills or it has everything."""
    while send_append(state, peer, send_if_empty=False):
        pass


def broadcast_append(state: NodeState, send_if_empty: bool = False) -> None:
    """Send every follower what it is missing (with `send_if_empty`, at least the commit)."""
    for peer in state.peers:
        if send_if_empty:
            send_append(state, peer, send_if_empty=True)
        send_all_possible(state, peer)


def broadcast_heartbeat(state: NodeState) -> None:
    """Assert leadership to every follower (§5.2) and give each the commit index it can safely
    take: no further than what it is known to hold, whatever is still in flight to it."""
    committed = state.log.committed
    context = state.read_only.newest_context()
    for peer in state.peers:
        commit = min(state.progress[peer].match_index, committed)
        state.send(Heartbeat(state.term, state.node_id, peer, commit, state.clock, context))


def handle_append_response(state: NodeState, message: AppendEntriesResponse) -> None:
    """Leader: a follower accepted or rejected entries."""
    progress = state.progress.get(message.sender)
    if progress is None or message.match_index > state.log.last_index():
        return  # not a follower of ours, or an acknowledgement of entries we never had
    progress.recent_active = True
    if not message.success:
        next_probe = _next_probe_index(state, message)
        if progress.rejected(message.rejected_index, next_probe):
            send_append(state, message.sender, send_if_empty=True)
        return
    if not progress.acknowledged(message.match_index):
        return
    if progress.state is ProgressState.REPLICATE:
        progress.inflights.free_up_to(message.match_index)
    elif progress.state is ProgressState.PROBE or progress.next_index >= state.log.first_index():
        # A probe matched, or the follower holds (or just installed) everything up to where
        # our log starts: stream entries from its match on.
        progress.become_replicate()
    # A new commit index reaches the followers with their next append or heartbeat, as in the
    # paper (§5.3), not in a message of its own: that would double the messages per command.
    if maybe_commit(state) and message.sender not in state.progress:
        return  # the commit left a joint configuration without the sender
    send_all_possible(state, message.sender)
    if message.sender == state.transfer_target:
        send_timeout_now_if_caught_up(state)


def _next_probe_index(state: NodeState, message: AppendEntriesResponse) -> int:
    """Where to probe next after a rejection (§5.3's optimization): if our log holds entries of
    the follower's conflicting term, the follower's entries of that term up to our last one
    match ours (log matching), so probe just after it; otherwise skip the follower's whole run
    of that term."""
    if message.conflict_term == 0:
        return message.conflict_index
    log = state.log
    index = min(message.rejected_index, log.last_index())
    while index > message.conflict_index and log.term(index) > message.conflict_term:
        index -= 1
    if log.term(index) == message.conflict_term:
        return index + 1
    return message.conflict_index


def handle_heartbeat_response(state: NodeState, message: HeartbeatResponse) -> None:
    """Leader: a follower is alive; resume a stalled probe or window."""
    progress = state.progress.get(message.sender)
    if progress is None:
        return
    progress.recent_active = True
    progress.probe_sent = False
    acknowledge_round(state, message)
    if progress.state is ProgressState.REPLICATE and progress.inflights.full():
        progress.inflights.free_first()
    if progress.match_index < state.log.last_index():
        # Even with nothing new to send: if entries to it were lost, this append's previous
        # index is one it lacks, and the rejection starts a probe that resends them.
        send_append(state, message.sender, send_if_empty=True)


def handle_append_entries(state: NodeState, message: AppendEntries) -> None:
    """Follower: accept entries that extend a matching prefix, truncating only a conflicting
    uncommitted suffix (§5.3, Figure 2 receiver rules 2-5)."""
    log = state.log
    prev_index = message.prev_log_index
    reply_to = message.sender
    if prev_index < log.committed:
        # Everything up to our commit index agrees with any leader (§5.4); say where we are.
        state.send(AppendEntriesResponse(state.term, state.node_id, reply_to, True, log.committed))
        return
    if not log.matches(prev_index, message.prev_log_term):
        if prev_index > log.last_index():
            conflict_term, conflict_index = 0, log.last_index() + 1
        else:
            conflict_term = log.term(prev_index)
            conflict_index = log.first_index_of_term_at(prev_index)
        state.send(
            AppendEntriesResponse(
                state.term,
                state.node_id,
                reply_to,
                False,
                rejected_index=prev_index,
                conflict_term=conflict_term,
                conflict_index=conflict_index,
            )
        )
        return
    entries = message.entries
    last_new = prev_index + len(entries)
    if entries:
        # Only the first entry that differs and what follows replace our log: a duplicate or
        # reordered older append must not truncate entries we already acknowledged (§5.3).
        position = log.find_conflict(entries)
        if position < len(entries):
            new = entries[position:] if position else entries
            log.append(new)
            if message.carries_config or new[0].index <= state.memberships.index:
                _track_configs(state, new)
    log.commit_to(min(message.leader_commit, last_new))
    state.send(AppendEntriesResponse(state.term, state.node_id, reply_to, True, last_new))


def _track_configs(state: NodeState, new: Sequence[Entry]) -> None:
    """Follower: `new` replaced our log from its first index on, bringing CONFIG entries or
    cutting some off: those cut off are no longer in effect, those in `new` are (§4.1)."""
    memberships = state.memberships
    changed = memberships.truncate_from(new[0].index)
    for entry in new:
        if entry.kind == _CONFIG:
            memberships.record(entry.index, decode_membership(entry.data))
            changed = True
    if changed:
        state.adopt_membership()


def handle_heartbeat(state: NodeState, message: Heartbeat) -> None:
    """Follower: take the leader's commit index (capped by the leader at what we hold)."""
    if message.commit <= state.log.last_index():
        state.log.commit_to(message.commit)
    state.send(
        HeartbeatResponse(state.term, state.node_id, message.sender, message.round, message.context)
    )


def send_timeout_now_if_caught_up(state: NodeState) -> None:
    """Leadership transfer: once the target holds our whole log, tell it to campaign now
    (thesis §3.10); it then wins, its log being as up-to-date as any."""
    target = state.transfer_target
    if target is not None and state.progress[target].match_index == state.log.last_index():
        state.timeout_now_sent = True
        state.send(TimeoutNow(state.term, state.node_id, target))
