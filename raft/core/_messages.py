"""Log entries, hard state and the messages Raft nodes exchange (Figure 2).

Every message carries the sender's `term`, its `sender` id and its `recipient` id. Classes are
frozen and slotted: the simulator and the runtime hand the very same objects between nodes, and
nothing may change them on the way.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import attrs

from raft.core._membership import Membership


class EntryKind(enum.IntEnum):
    """What a log entry carries; `Entry.kind` holds one of these values as a plain int."""

    COMMAND = 0
    """A client command for the state machine."""
    NOOP = 1
    """The empty entry a new leader appends to commit its predecessors' entries (§5.4.2, §8)."""
    CONFIG = 2
    """A cluster configuration (an encoded `Membership`), in effect once in a log (thesis §4.1)."""


class Entry(NamedTuple):
    """One log entry: the `term` it was created in, its `index`, its opaque `data`, and its
    `kind` (an `EntryKind` value; compare with `==`).

    Unlike the messages this is a `NamedTuple` of plain ints and bytes, not an attrs class: a
    leader creates one per proposed command and every node keeps it. A frozen attrs instance
    costs about five times as much to build, and a tuple of atoms is untracked by Python's
    cyclic garbage collector, so a long log costs no collector time; together they are the
    difference between about 0.5 and 1 million entries per second.
    """

    term: int
    index: int  # type: ignore[assignment]  # a field named like tuple.index, on purpose
    data: bytes
    kind: int = EntryKind.COMMAND.value

    def __repr__(self) -> str:
        return (
            f"Entry(term={self.term}, index={self.index}, data={self.data!r}, "
            f"kind={EntryKind(self.kind).name})"
        )


@attrs.frozen
class HardState:
    """What a node must persist before it sends anything (Figure 2, "persistent state").

    `vote` is the candidate voted for in `term` (None: no vote yet); persisting it before the
    vote reply leaves the node is what keeps it to one vote per term after a crash (§5.2).
    `commit` is persisted too so a restarted node can re-apply without waiting for a leader.
    """

    term: int = 0
    vote: int | None = None
    commit: int = 0


@attrs.frozen
class VoteRequest:
    """RequestVote (§5.2), or a pre-vote probe (thesis §9.6) when `pre_vote` is set.

    A pre-vote carries the term the sender *would* campaign in; it changes no one's term.
    """

    term: int
    sender: int
    recipient: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False
    """Sent because the leader handed over leadership (`TimeoutNow`): voters grant it even
    while they still hear from that leader (thesis §3.10)."""


@attrs.frozen
class VoteResponse:
    """The answer to a `VoteRequest` of the same `pre_vote` kind."""

    term: int
    sender: int
    recipient: int
    granted: bool
    pre_vote: bool = False


@attrs.frozen
class AppendEntries:
    """AppendEntries (§5.3): entries after (`prev_log_index`, `prev_log_term`) and the leader's
    commit index."""

    term: int
    sender: int
    recipient: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    carries_config: bool = False
    """Whether `entries` holds a CONFIG entry: the leader knows where its configurations are,
    so followers need not look at the kind of every entry it sends."""


@attrs.frozen
class AppendEntriesResponse:
    """The answer to `AppendEntries`.

    On success, `match_index` is the last index the follower now holds in agreement with the
    leader. On rejection, `rejected_index` is the `prev_log_index` that did not match, and
    (`conflict_term`, `conflict_index`) is the fast-backtracking hint (§5.3, last paragraphs):
    the follower's term at that index (0 when its log is shorter) and the first index it holds
    of that term, so the leader skips a whole term per round trip instead of one entry.
    """

    term: int
    sender: int
    recipient: int
    success: bool
    match_index: int = 0
    rejected_index: int = 0
    conflict_term: int = 0
    conflict_index: int = 0


@attrs.frozen
class Heartbeat:
    """An empty AppendEntries that asserts leadership (§5.2) and carries a safe commit index:
    the smaller of the leader's commit and what this follower is known to hold.

    `round` is the leader's tick count when it sent this (its lease clock) and `context` the
    latest ReadIndex request it wants confirmed (thesis §6.4); both come back in the response.
    """

    term: int
    sender: int
    recipient: int
    commit: int
    round: int = 0
    context: bytes = b""


@attrs.frozen
class HeartbeatResponse:
    """The answer to a `Heartbeat`: the follower is alive (check-quorum) and still follows the
    leader as of the heartbeat's `round` and read `context`."""

    term: int
    sender: int
    recipient: int
    round: int = 0
    context: bytes = b""


@attrs.frozen
class ReadIndexRequest:
    """A follower asks the leader for a read index on behalf of its client (thesis §6.4)."""

    term: int
    sender: int
    recipient: int
    context: bytes


@attrs.frozen
class ReadIndexResponse:
    """The leader's answer: a read for `context` may be served once `index` is applied."""

    term: int
    sender: int
    recipient: int
    context: bytes
    index: int


@attrs.frozen
class TimeoutNow:
    """The leader hands over leadership: the recipient campaigns at once (thesis §3.10)."""

    term: int
    sender: int
    recipient: int


@attrs.frozen
class InstallSnapshot:
    """One chunk of the leader's snapshot for a follower that needs entries the leader
    compacted away (paper §7, thesis §5.1): the bytes of the snapshot's data from `offset` on,
    `done` on the last chunk. (`index`, `snapshot_term`, `membership`) are the snapshot's
    metadata; they name the snapshot, so a follower can tell chunks of another one apart."""

    term: int
    sender: int
    recipient: int
    index: int
    snapshot_term: int
    membership: Membership
    offset: int
    data: bytes
    done: bool


@attrs.frozen
class InstallSnapshotResponse:
    """A follower's answer to an `InstallSnapshot` chunk it did not finish on: it holds the
    first `next_offset` bytes of the snapshot at `index` and wants the chunk from there (0:
    start again). A finished install is answered by an `AppendEntriesResponse` instead."""

    term: int
    sender: int
    recipient: int
    index: int
    next_offset: int


Message = (
    VoteRequest
    | VoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | Heartbeat
    | HeartbeatResponse
    | ReadIndexRequest
    | ReadIndexResponse
    | TimeoutNow
    | InstallSnapshot
    | InstallSnapshotResponse
)
"""Any message one node sends another."""
