"""Errors a `RaftServer` gives its callers, split by what the caller should do next.

| error | the command took effect? | what to do |
|---|---|---|
| `NotLeader` | no | retry at `leader_id` / `leader_address` (or later when None) |
| `CommandTooLarge` (from `raft.core`) | no | split the command |
| `Overloaded` | no | back off, retry |
| `StorageFull` (from `raft.storage`) | no | the disk is full: retry once space returns |
| `Timeout` / `NoQuorum` | unknown | retry with the same session sequence number |
| `SessionExpired` | unknown | the session's memory of that command is gone: start a new one |
| `ServerStopped` | unknown | the server is closed or failed; go elsewhere |
"""

from __future__ import annotations

from raft.core import NotLeader as CoreNotLeader
from raft.core import RaftError


class NotLeader(CoreNotLeader):
    """This server cannot take the request: it is not the leader, or the write it took was
    replaced in the log by another leader's entry (so it certainly did not take effect).

    `leader_id` is the leader this node knows of (None while an election runs) and
    `leader_address` that leader's address when the server was given one. A `raft.NotLeader`
    too, so `except raft.NotLeader` catches the core's and the server's alike.
    """

    def __init__(
        self,
        node_id: int,
        leader_id: int | None,
        leader_address: object | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(node_id, leader_id)
        self.leader_address = leader_address
        if reason is not None or leader_address is not None:
            detail = str(self.args[0])
            if leader_address is not None:
                detail += f" at {leader_address}"
            if reason is not None:
                detail += f" ({reason})"
            self.args = (detail,)


class Overloaded(RaftError):
    """Too many proposal bytes are waiting to commit (`RaftServer`'s `max_uncommitted_bytes`):
    the command was refused without being proposed. Back off and retry."""

    def __init__(self, pending: int, limit: int) -> None:
        self.pending = pending
        self.limit = limit
        super().__init__(
            f"{pending} proposal bytes are waiting to commit (limit {limit}); back off and retry"
        )


class Timeout(RaftError, TimeoutError):
    """The request did not complete in time. For a write the outcome is unknown: it may still
    commit. Retry it in the same session with the same sequence number, and it is applied at
    most once. A read that timed out had no effect."""


class NoQuorum(Timeout):
    """Timed out while this node knew of no leader (an election could not be won, or the
    node is cut off from a majority). Like `Timeout`, a write's outcome is unknown."""


class SessionExpired(RaftError):
    """A session command whose sequence number is older than the last one the cluster applied
    for that client, or whose client was evicted from the session table: its result is no
    longer known, and applying it again could apply it twice. Start a new session."""


class ServerStopped(RaftError):
    """The server closed, or failed (its `__cause__` says why), before the request completed;
    the outcome of a write is unknown."""
