"""Snapshots (paper §7, thesis ch. 5): the state machine's state at one log index.

A snapshot replaces the log up to and including its `index`: a node keeps the snapshot instead
of those entries (log compaction), and a leader sends it to a follower that needs entries it no
longer has. Its metadata records where it sits in the log (`index`, `term`) and the cluster
configuration in effect at that index, which the log entries it replaces no longer carry.
"""

from __future__ import annotations

import attrs

from raft.core._config import Config
from raft.core._membership import Membership


def _non_negative(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"SnapshotMetadata.{attribute.name} must be an integer >= 0, got {value!r}"
        )


def _membership(instance: object, attribute: attrs.Attribute[Membership], value: object) -> None:
    if not isinstance(value, Membership):
        raise ValueError(f"SnapshotMetadata.membership must be a Membership, got {value!r}")


@attrs.frozen
class SnapshotMetadata:
    """Where a snapshot sits: the `index` and `term` of the last entry it covers, and the
    `membership` in effect at that index (paper §7: "last included index", "last included
    term", "last config")."""

    index: int = attrs.field(validator=_non_negative)
    term: int = attrs.field(validator=_non_negative)
    membership: Membership = attrs.field(validator=_membership)


@attrs.frozen
class Snapshot:
    """A snapshot's metadata and the state machine's serialized state (`StateMachine.snapshot`)
    after applying exactly the entries up to `metadata.index`."""

    metadata: SnapshotMetadata
    data: bytes


def base_membership(config: Config, snapshot: Snapshot | None) -> Membership | None:
    """The configuration in effect before the log's first CONFIG entry: the one the latest
    snapshot recorded, else the voters the cluster started with (None for a joining node,
    `Config.voters == ()`, until a leader sends it a configuration). The one place that decides
    it; CONFIG entries in the log after it apply on top (thesis §4.1)."""
    if snapshot is not None:
        return snapshot.metadata.membership
    return Membership(config.voters) if config.voters else None


class PartialSnapshot:
    """The chunks of a snapshot a follower received so far, from the leader of `leader_term`."""

    __slots__ = ("data", "leader_term", "metadata")

    def __init__(self, leader_term: int, metadata: SnapshotMetadata) -> None:
        self.leader_term = leader_term
        self.metadata = metadata
        self.data = bytearray()
