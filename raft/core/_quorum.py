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
