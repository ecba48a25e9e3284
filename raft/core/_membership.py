"""Cluster membership: who votes, who only learns (thesis ch. 4).

A `Membership` is one configuration as the log records it. While a change of voters is under
way it is *joint* (thesis §4.3): `voters` is the new set and `outgoing` the old one, and every
decision (election, commitment) needs a majority of each. `learners` receive the log but never
vote or count for commitment.
"""

from __future__ import annotations

import attrs


def _node_ids(instance: object, attribute: attrs.Attribute[tuple[int, ...]], value: object) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"Membership.{attribute.name} must be a tuple of node ids, got {value!r}")
    for node_id in value:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id < 1:
            raise ValueError(
                f"Membership.{attribute.name}: node ids must be integers >= 1, got {node_id!r}"
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
    outgoing: tuple[int, ...] = attrs.field(
        default=(), converter=_sorted_ids, validator=_node_ids
    )
    """The voters being replaced, while a joint change is under way; empty otherwise."""
    learners: tuple[int, ...] = attrs.field(
        default=(), converter=_sorted_ids, validator=_node_ids
    )
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
