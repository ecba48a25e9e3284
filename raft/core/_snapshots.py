"""Sending and installing snapshots (paper §7, thesis §5.1-5.3), in chunks.

A leader whose log no longer holds the entries a follower needs sends its latest snapshot
instead, one chunk of at most `Config.snapshot_chunk_bytes()` at a time: the follower answers
each chunk with the offset it wants next, and a lost chunk or answer is re-sent after the next
heartbeat response, from where the follower's last answer said (as a probe is). A follower
keeps one partial snapshot; a chunk of another snapshot, or from another leader, starts it over
at offset 0, and a chunk that does not continue it is answered with the offset it wants.

Once it has the last chunk, the follower installs the snapshot unless it is no newer than its
commit index (it would roll back committed state: it answers with its commit index so the
leader moves on); if its log holds the snapshot's last entry, it keeps its log and commits up
to it (paper §7), else its whole log is replaced. An install reaches the caller in `Ready`
with the success answer in the same `Ready`: persisted before acknowledged.
"""

from __future__ import annotations

from raft.core._membership import Membership
from raft.core._messages import AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse
from raft.core._progress import Progress, ProgressState
from raft.core._snapshot import PartialSnapshot, Snapshot, SnapshotMetadata
from raft.core._state import NodeState


def send_chunk(state: NodeState, peer: int, progress: Progress) -> bool:
    """Leader: send `peer` the next chunk of the latest snapshot; True if sent."""
    snapshot = state.log.snapshot()
    if snapshot is None:
        return False
    metadata = snapshot.metadata
    if progress.state is not ProgressState.SNAPSHOT or progress.snapshot_index != metadata.index:
        progress.become_snapshot(metadata.index)
    offset = max(0, min(progress.snapshot_offset, len(snapshot.data)))
    end = offset + state.config.snapshot_chunk_bytes()
    state.send(
        InstallSnapshot(
            state.term,
            state.node_id,
            peer,
            metadata.index,
            metadata.term,
            metadata.membership,
            offset,
            snapshot.data[offset:end],
            end >= len(snapshot.data),
        )
    )
    progress.probe_sent = True
    return True


def handle_install_snapshot_response(state: NodeState, message: InstallSnapshotResponse) -> None:
    """Leader: a follower took a chunk (or wants another); send the chunk it asks for."""
    progress = state.progress.get(message.sender)
    if progress is None:
        return
    progress.recent_active = True
    if progress.state is not ProgressState.SNAPSHOT or progress.snapshot_index != message.index:
        return  # an answer about a snapshot we are no longer sending
    progress.snapshot_offset = message.next_offset
    progress.probe_sent = False
    send_chunk(state, message.sender, progress)


def is_older_than_commit(state: NodeState, message: InstallSnapshot) -> bool:
    """Whether the snapshot covers no more than what this follower already committed: the
    guard that keeps an old, delayed snapshot from rolling back committed state."""
    return message.index <= state.log.committed


def handle_install_snapshot(state: NodeState, message: InstallSnapshot) -> None:
    """Follower: take one chunk; install the snapshot once it is complete."""
    log = state.log
    reply_to = message.sender
    if is_older_than_commit(state, message):
        state.receiving_snapshot = None
        state.send(AppendEntriesResponse(state.term, state.node_id, reply_to, True, log.committed))
        return
    if not 0 < message.snapshot_term <= message.term or not isinstance(
        message.membership, Membership
    ):
        return  # no leader sends this: ignore it
    partial = state.receiving_snapshot
    if (
        partial is None
        or partial.leader_term != message.term
        or partial.metadata.index != message.index
        or partial.metadata.term != message.snapshot_term
    ):
        partial = None
        if message.offset == 0:
            metadata = SnapshotMetadata(message.index, message.snapshot_term, message.membership)
            partial = PartialSnapshot(message.term, metadata)
        state.receiving_snapshot = partial
    received = 0 if partial is None else len(partial.data)
    if partial is None or message.offset != received:
        state.send(
            InstallSnapshotResponse(state.term, state.node_id, reply_to, message.index, received)
        )
        return
    partial.data += message.data
    if not message.done:
        state.send(
            InstallSnapshotResponse(
                state.term, state.node_id, reply_to, message.index, len(partial.data)
            )
        )
        return
    state.receiving_snapshot = None
    metadata = partial.metadata
    if log.matches(metadata.index, metadata.term):
        # Our log already holds the snapshot's last entry, so every entry up to it (log
        # matching): keep the log and what follows, and just commit (paper §7).
        log.commit_to(metadata.index)
    else:
        log.restore(Snapshot(metadata, bytes(partial.data)))
        state.memberships.restart_from(metadata.membership)
        state.adopt_membership()
    state.send(AppendEntriesResponse(state.term, state.node_id, reply_to, True, metadata.index))
