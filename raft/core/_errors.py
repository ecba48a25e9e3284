"""Errors the core raises, split by who must act on them.

`RaftError` is the base of everything this library raises on purpose. A caller that gets
`NotLeader` or `CommandTooLarge` did nothing wrong to the node and may go on using it; a
`NodeFailed` means an earlier call raised something unexpected and the node refuses to be
stepped again (h11's ERROR rule): its in-memory state can no longer be trusted, so the caller
must rebuild it from storage.
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error trio-raft raises deliberately."""


class NotLeader(RaftError):
    """A proposal reached a node that is not the leader.

    `leader_id` is the leader this node last heard from in its current term, or None when it
    knows of none (an election is under way); retry there, or later.
    """

    def __init__(self, node_id: int, leader_id: int | None) -> None:
        self.node_id = node_id
        self.leader_id = leader_id
        hint = f"try node {leader_id}" if leader_id is not None else "no leader is known yet; retry"
        super().__init__(f"node {node_id} is not the leader: {hint}")


class CommandTooLarge(RaftError):
    """A command is larger than one AppendEntries message may carry.

    Split the command, or raise `Config.max_bytes_per_message` on every node.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"command of {size} bytes exceeds max_bytes_per_message={limit}; "
            "split it or raise the limit"
        )


class LeadershipTransferInProgress(RaftError):
    """The leader is handing over to another node and takes no proposals until that ends
    (within an election timeout); retry at the new leader, or here if the transfer fails."""

    def __init__(self, node_id: int, target: int) -> None:
        self.node_id = node_id
        self.target = target
        super().__init__(
            f"node {node_id} is transferring leadership to node {target}; retry there shortly"
        )


class MembershipChangeError(RaftError):
    """A membership change was refused: it would be unsafe now (another change is pending, the
    leader has not committed in its term yet), or it makes no sense (removing the last voter,
    an id that is not what the call needs). Nothing changed; fix the request or retry later."""


class UsageError(RaftError):
    """The caller broke the core's contract (for example `advance` without a `ready`)."""


class NodeFailed(RaftError):
    """The node raised an unexpected error earlier and refuses further calls.

    Build a new node from durable storage; the original error is the `__cause__`.
    """
