"""Static configuration of one Raft node, validated where it enters."""

from __future__ import annotations

from typing import Any

import attrs


def _positive_int(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Config.{attribute.name} must be an integer >= 1, got {value!r}")


def _non_negative_int(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Config.{attribute.name} must be an integer >= 0, got {value!r}")


def _optional_positive_int(
    instance: Any, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None:
        _positive_int(instance, attribute, value)  # type: ignore[arg-type]


def _boolean(instance: Any, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"Config.{attribute.name} must be True or False, got {value!r}")


def _voter_ids(instance: Any, attribute: attrs.Attribute[tuple[int, ...]], value: Any) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"Config.voters must be a tuple of node ids, got {value!r}")
    for node_id in value:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id < 1:
            raise ValueError(f"Config.voters: node ids must be integers >= 1, got {node_id!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"Config.voters: node ids must be unique, got {value!r}")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen
class Config:
    """How one node takes part in a cluster. Every node of a cluster must agree on the timing
    (`election_ticks`, `heartbeat_ticks`) and message limits.

    Invalid values raise `ValueError` naming the field and the allowed range.
    """

    node_id: int = attrs.field(validator=_positive_int)
    """This node's id; must be one of `voters` unless `voters` is empty."""
    voters: tuple[int, ...] = attrs.field(converter=_as_tuple, validator=_voter_ids)
    """Ids of the voting members the cluster starts with, this node included. Empty for a node
    *joining* a running cluster: it starts with no membership, never campaigns, and waits for a
    leader to send it the log, whose CONFIG entries tell it the configuration (thesis §4.1)."""
    election_ticks: int = attrs.field(default=10, validator=_positive_int)
    """A follower that hears no leader for a random number of ticks in
    [election_ticks, 2*election_ticks) starts an election (§5.2, §9.3)."""
    heartbeat_ticks: int = attrs.field(default=1, validator=_positive_int)
    """A leader sends heartbeats every this many ticks; must be below `election_ticks`."""
    pre_vote: bool = attrs.field(default=True, validator=_boolean)
    """Ask for a pre-vote before bumping the term, so a node back from a partition does not
    disrupt a healthy majority (thesis §9.6)."""
    check_quorum: bool = attrs.field(default=True, validator=_boolean)
    """A leader that hears from no majority within an election timeout steps down, and a
    follower that heard from a live leader within it ignores vote requests (thesis §6.2, §4.2.3)."""
    max_entries_per_message: int = attrs.field(default=4096, validator=_positive_int)
    """At most this many entries ride in one AppendEntries."""
    max_bytes_per_message: int = attrs.field(default=1 << 20, validator=_positive_int)
    """At most this many command bytes ride in one AppendEntries; also the largest command."""
    max_inflight_messages: int = attrs.field(default=256, validator=_positive_int)
    """At most this many AppendEntries may be unacknowledged per follower (pipelining)."""
    lease_reads: bool = attrs.field(default=False, validator=_boolean)
    """Answer reads without a heartbeat round while the leader's lease holds (thesis §6.4.1).
    Needs `check_quorum`; safe only while clocks drift apart by less than
    `max_clock_drift_ticks` over an election timeout."""
    max_clock_drift_ticks: int = attrs.field(default=2, validator=_positive_int)
    """How many ticks a follower's clock may gain on the leader's within one election timeout;
    the lease is `election_ticks - max_clock_drift_ticks` ticks from its confirmation."""

    auto_leave: bool = attrs.field(default=True, validator=_boolean)
    """A leader leaves a joint configuration by itself once it commits (thesis §4.3); without
    it the cluster stays joint until `RaftNode.leave_joint()` is called."""
    snapshot_threshold_entries: int = attrs.field(default=0, validator=_non_negative_int)
    """`RaftNode.snapshot_due()` says yes once this many entries were applied since the latest
    snapshot (paper §7: each server snapshots independently); 0 never does."""
    snapshot_threshold_bytes: int = attrs.field(default=0, validator=_non_negative_int)
    """`RaftNode.snapshot_due()` also says yes once this many command bytes were applied since
    the latest snapshot; 0 never does."""
    max_snapshot_chunk_bytes: int | None = attrs.field(
        default=None, validator=_optional_positive_int
    )
    """A leader sends a snapshot in chunks of at most this many bytes (paper §7's
    InstallSnapshot `offset`/`done`); None means `max_bytes_per_message`."""

    def snapshot_chunk_bytes(self) -> int:
        """The largest snapshot chunk to send."""
        if self.max_snapshot_chunk_bytes is None:
            return self.max_bytes_per_message
        return self.max_snapshot_chunk_bytes

    def __attrs_post_init__(self) -> None:
        if self.voters and self.node_id not in self.voters:
            raise ValueError(
                f"Config.node_id {self.node_id} must be one of Config.voters {self.voters}"
            )
        if self.lease_reads and not self.check_quorum:
            raise ValueError(
                "Config.lease_reads needs Config.check_quorum: without it a deposed leader "
                "would go on answering reads from its lease"
            )
        if self.lease_reads and self.max_clock_drift_ticks >= self.election_ticks:
            raise ValueError(
                f"Config.max_clock_drift_ticks ({self.max_clock_drift_ticks}) must be below "
                f"Config.election_ticks ({self.election_ticks}), or no lease is left"
            )
        if self.heartbeat_ticks >= self.election_ticks:
            raise ValueError(
                f"Config.election_ticks ({self.election_ticks}) must be greater than "
                f"Config.heartbeat_ticks ({self.heartbeat_ticks})"
            )
