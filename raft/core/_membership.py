"""Cluster membership: who votes, who only learns (thesis ch. 4).

A `Membership` is one configuration as the log records it. While a change of voters is under
way it is *joint* (thesis §4.3): `voters` is the new set and `outgoing` the old one, and every
decision (election, commitment) needs a majority of each. `learners` receive the log but never
vote or count for commitment.
"""

from __future__ import annotations

import struct

import attrs

_LARGEST_ID = 2**64 - 1


def _node_ids(instance: object, attribute: attrs.Attribute[tuple[int, ...]], value: object) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"Membership.{attribute.name} must be a tuple of node ids, got {value!r}")
    for node_id in value:
        if (
            isinstance(node_id, bool)
            or not isinstance(node_id, int)
            or not 1 <= node_id <= _LARGEST_ID
        ):
            raise ValueError(
                f"Membership.{attribute.name}: node ids must be integers from 1 to 2**64 - 1 "
                f"(what a CONFIG entry can hold), got {node_id!r}"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"Membership.{attribute.name}: node ids must be unique, got {value!r}")


def _sorted_ids(value: object) -> object:
    if isinstance(value, list | tuple | set | frozenset):
        try:
            return tuple(sorted(value))
        except TypeError:
            return tuple(value)
    return value


@attrs.frozen
class Membership:
    """One cluster configuration: voters, the outgoing voters of a joint change, learners.

    Ids are kept sorted, so two equal memberships compare equal and iterate in one order.
    """

    voters: tuple[int, ...] = attrs.field(converter=_sorted_ids, validator=_node_ids)
    """The voters (the incoming ones, while joint)."""
    outgoing: tuple[int, ...] = attrs.field(default=(), converter=_sorted_ids, validator=_node_ids)
    """The voters being replaced, while a joint change is under way; empty otherwise."""
    learners: tuple[int, ...] = attrs.field(default=(), converter=_sorted_ids, validator=_node_ids)
    """Members that receive the log but never vote."""

    def __attrs_post_init__(self) -> None:
        if not self.voters:
            raise ValueError("Membership.voters must not be empty: a cluster needs a voter")
        overlap = set(self.learners) & (set(self.voters) | set(self.outgoing))
        if overlap:
            raise ValueError(f"Membership: {sorted(overlap)} cannot be both voter and learner")

    @property
    def joint(self) -> bool:
        """Whether a change of voters is under way (decisions need both majorities)."""
        return bool(self.outgoing)

    def members(self) -> tuple[int, ...]:
        """Every node that receives the log: voters old and new, and learners, sorted."""
        return tuple(sorted({*self.voters, *self.outgoing, *self.learners}))

    def is_voter(self, node_id: int) -> bool:
        """Whether `node_id` votes in either half of this configuration."""
        return node_id in self.voters or node_id in self.outgoing


class MembershipDecodeError(ValueError):
    """A CONFIG entry's data is not a membership this version can read: the log is corrupt."""


_CODEC_VERSION = 1
_HEADER = struct.Struct(">BHHH")


def encode_membership(membership: Membership) -> bytes:
    """The data of a CONFIG entry holding `membership`: a version byte, the three group sizes,
    then the ids as unsigned 64-bit integers (voters, outgoing, learners)."""
    groups = (membership.voters, membership.outgoing, membership.learners)
    ids = [*membership.voters, *membership.outgoing, *membership.learners]
    return _HEADER.pack(_CODEC_VERSION, *map(len, groups)) + struct.pack(f">{len(ids)}Q", *ids)


def decode_membership(data: bytes) -> Membership:
    """Read back what `encode_membership` wrote; raises `MembershipDecodeError` otherwise."""
    try:
        version, voters, outgoing, learners = _HEADER.unpack_from(data)
        if version != _CODEC_VERSION:
            raise MembershipDecodeError(f"unknown membership encoding version {version}")
        count = voters + outgoing + learners
        ids = struct.unpack(f">{count}Q", data[_HEADER.size :])
        return Membership(
            voters=ids[:voters],
            outgoing=ids[voters : voters + outgoing],
            learners=ids[voters + outgoing :],
        )
    except (struct.error, ValueError) as error:
        if isinstance(error, MembershipDecodeError):
            raise
        raise MembershipDecodeError(f"corrupt membership entry {data!r}: {error}") from error


class MembershipHistory:
    """The configurations a node's log holds: a base (what the cluster started with, or what a
    snapshot recorded) and every CONFIG entry above it, oldest first.

    A configuration takes effect as soon as its entry is in the log, committed or not (thesis
    §4.1), so the current one is simply the last; a truncated suffix drops its entries and the
    previous configuration is back in effect.
    """

    __slots__ = ("base", "changes")

    def __init__(self, base: Membership | None) -> None:
        self.base = base
        """In effect when the log holds no CONFIG entry (None: a joining node, no membership)."""
        self.changes: list[tuple[int, Membership]] = []
        """(index, membership) of each CONFIG entry in the log, by index."""

    @property
    def current(self) -> Membership | None:
        """The configuration in effect: the latest in the log, else the base."""
        return self.changes[-1][1] if self.changes else self.base

    @property
    def index(self) -> int:
        """The log index of the configuration in effect (0 for the base)."""
        return self.changes[-1][0] if self.changes else 0

    def at(self, index: int) -> Membership | None:
        """The configuration in effect once the log up to `index` is applied: what a snapshot
        at `index` records."""
        for change_index, membership in reversed(self.changes):
            if change_index <= index:
                return membership
        return self.base

    def restart_from(self, base: Membership | None) -> None:
        """The log was replaced by a snapshot recording `base`: no CONFIG entry is left."""
        self.base = base
        self.changes = []

    def record(self, index: int, membership: Membership) -> None:
        """A CONFIG entry holding `membership` is now at `index`, above every recorded one."""
        self.changes.append((index, membership))

    def any_between(self, low: int, high: int) -> bool:
        """Whether a CONFIG entry lies at an index in `low..high`."""
        for index, _ in reversed(self.changes):
            if index < low:
                return False
            if index <= high:
                return True
        return False

    def truncate_from(self, index: int) -> bool:
        """The log lost its entries from `index` on; True if the configuration changed."""
        changes = self.changes
        if not changes or changes[-1][0] < index:
            return False
        while changes and changes[-1][0] >= index:
            changes.pop()
        return True
