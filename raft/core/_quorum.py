"""Majority arithmetic: which index a majority holds, and whether an election is decided.

Kept apart from the node so membership changes (joint consensus, thesis §4.3) can combine two
majority configurations without touching the role logic.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs


class VoteResult(enum.Enum):
    """The state of a vote count."""

    PENDING = 1
    WON = 2
    LOST = 3


@attrs.frozen
class MajorityConfig:
    """A set of voters whose decisions need more than half of them (§5.2, §5.3)."""

    voters: tuple[int, ...]

    @property
    def quorum(self) -> int:
        """The smallest number of voters that is a majority."""
        return len(self.voters) // 2 + 1

    def committed_index(self, match_index: Mapping[int, int]) -> int:
        """The highest log index that a majority of voters hold (missing voters hold 0)."""
        held = sorted((match_index.get(voter, 0) for voter in self.voters), reverse=True)
        return held[self.quorum - 1]

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        """Won once a majority granted, lost once a majority can no longer grant."""
        granted = rejected = 0
        for voter in self.voters:
            answer = votes.get(voter)
            if answer is True:
                granted += 1
            elif answer is False:
                rejected += 1
        if granted >= self.quorum:
            return VoteResult.WON
        if len(self.voters) - rejected < self.quorum:
            return VoteResult.LOST
        return VoteResult.PENDING

    def has_quorum(self, active: Mapping[int, bool]) -> bool:
        """Whether a majority of voters is marked active."""
        return sum(1 for voter in self.voters if active.get(voter)) >= self.quorum


class JointQuorum:
    """The quorum of a configuration that may be joint (thesis §4.3): while voters change,
    every decision needs a majority of the incoming voters *and* of the outgoing ones.

    With no outgoing voters it is a plain majority of the incoming ones. A committed index is
    the smaller of the two majorities'; a vote is won only when won in both halves and lost as
    soon as it is lost in either; a quorum is active only when both halves are.
    """

    __slots__ = ("incoming", "outgoing", "voters")

    def __init__(self, incoming: tuple[int, ...], outgoing: tuple[int, ...] = ()) -> None:
        self.incoming = MajorityConfig(incoming)
        self.outgoing = MajorityConfig(outgoing) if outgoing else None
        self.voters: tuple[int, ...] = tuple(sorted({*incoming, *outgoing}))
        """Every voter of either half, sorted."""

    def __repr__(self) -> str:
        outgoing = self.outgoing.voters if self.outgoing is not None else ()
        return f"JointQuorum(incoming={self.incoming.voters}, outgoing={outgoing})"

    def committed_index(self, match_index: Mapping[int, int]) -> int:
        """The highest log index held by a majority of each half (missing voters hold 0)."""
        index = self.incoming.committed_index(match_index)
        if self.outgoing is None:
            return index
        return min(index, self.outgoing.committed_index(match_index))

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        """WON once won in both halves, LOST once lost in either, PENDING otherwise."""
        result = self.incoming.vote_result(votes)
        if self.outgoing is None:
            return result
        other = self.outgoing.vote_result(votes)
        if result is VoteResult.LOST or other is VoteResult.LOST:
            return VoteResult.LOST
        if result is VoteResult.WON and other is VoteResult.WON:
            return VoteResult.WON
        return VoteResult.PENDING

    def has_quorum(self, active: Mapping[int, bool]) -> bool:
        """Whether a majority of each half is marked active."""
        if not self.incoming.has_quorum(active):
            return False
        return self.outgoing is None or self.outgoing.has_quorum(active)
