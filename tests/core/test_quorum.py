"""Majority arithmetic checked against a naive brute-force version (as etcd's quorum/quick_test.go).

The naive versions below count, for every candidate answer, how many voters support it; they
are slow and obviously right, which is the point.
"""

from __future__ import annotations

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from raft.core._quorum import JointQuorum, MajorityConfig, VoteResult

# Derandomized: the same examples every run, so a failure replays exactly (STYLE 14).
deterministic = settings(derandomize=True, max_examples=500, deadline=None)

voter_ids = st.lists(st.integers(1, 30), min_size=1, max_size=9, unique=True).map(tuple)


def naive_committed_index(voters: tuple[int, ...], match_index: dict[int, int]) -> int:
    """The largest index that more than half of the voters hold (0 when none is)."""
    held = [match_index.get(voter, 0) for voter in voters]
    best = 0
    for candidate in held:
        supporters = sum(1 for index in held if index >= candidate)
        if 2 * supporters > len(voters):
            best = max(best, candidate)
    return best


def naive_vote_result(voters: tuple[int, ...], votes: dict[int, bool]) -> VoteResult:
    """Won if more than half granted; lost if even every missing answer granting would not be
    more than half; pending otherwise."""
    granted = sum(1 for voter in voters if votes.get(voter) is True)
    missing = sum(1 for voter in voters if voter not in votes)
    if 2 * granted > len(voters):
        return VoteResult.WON
    if 2 * (granted + missing) <= len(voters):
        return VoteResult.LOST
    return VoteResult.PENDING


@st.composite
def voters_and_match_indexes(draw: st.DrawFn) -> tuple[tuple[int, ...], dict[int, int]]:
    voters = draw(voter_ids)
    # Some voters have not answered yet (they count as holding 0), and some answers come from
    # ids outside the configuration (a removed node): neither may sway the result.
    reporting = draw(st.lists(st.sampled_from(voters), unique=True))
    match_index = {voter: draw(st.integers(0, 20)) for voter in reporting}
    strangers = draw(st.dictionaries(st.integers(31, 40), st.integers(0, 1000), max_size=3))
    return voters, {**match_index, **strangers}


@st.composite
def voters_and_votes(draw: st.DrawFn) -> tuple[tuple[int, ...], dict[int, bool]]:
    voters = draw(voter_ids)
    answered = draw(st.lists(st.sampled_from(voters), unique=True))
    votes = {voter: draw(st.booleans()) for voter in answered}
    strangers = draw(st.dictionaries(st.integers(31, 40), st.booleans(), max_size=3))
    return voters, {**votes, **strangers}


@deterministic
@given(voters_and_match_indexes())
@example(((1,), {}))
@example(((1, 2), {1: 5}))
@example(((1, 2, 3, 4), {1: 5, 2: 5, 3: 1, 4: 1}))
def test_committed_index_is_the_highest_index_a_majority_holds(
    case: tuple[tuple[int, ...], dict[int, int]],
) -> None:
    """§5.3: an entry is committed once a majority of voters store it; missing voters hold 0."""
    voters, match_index = case
    assert MajorityConfig(voters).committed_index(match_index) == naive_committed_index(
        voters, match_index
    )


@deterministic
@given(voters_and_votes())
@example(((1,), {}))
@example(((1, 2), {1: True}))
@example(((1, 2), {1: True, 2: False}))
@example(((1, 2, 3, 4), {1: True, 2: True, 3: False}))
@example(((1, 2, 3, 4), {1: False, 2: False}))
def test_vote_result_matches_counting_every_possible_outcome(
    case: tuple[tuple[int, ...], dict[int, bool]],
) -> None:
    """§5.2: a candidate wins with votes from a majority, and has lost once a majority can no
    longer grant; votes from outside the configuration do not count."""
    voters, votes = case
    assert MajorityConfig(voters).vote_result(votes) is naive_vote_result(voters, votes)


@deterministic
@given(voters_and_votes())
def test_has_quorum_means_a_majority_is_marked_active(
    case: tuple[tuple[int, ...], dict[int, bool]],
) -> None:
    """Thesis §6.2 (check-quorum): a leader stays only while more than half are active."""
    voters, active = case
    expected = 2 * sum(1 for voter in voters if active.get(voter)) > len(voters)
    assert MajorityConfig(voters).has_quorum(active) is expected


@deterministic
@given(voters_and_match_indexes())
def test_committed_index_never_exceeds_what_a_majority_acknowledged(
    case: tuple[tuple[int, ...], dict[int, int]],
) -> None:
    """§5.4.2: raising any one voter's match index never lowers the committed index, and the
    committed index is held by some majority (monotonic and supported)."""
    voters, match_index = case
    quorum = MajorityConfig(voters)
    committed = quorum.committed_index(match_index)
    holders = sum(1 for voter in voters if match_index.get(voter, 0) >= committed)
    assert 2 * holders > len(voters)
    for voter in voters:
        raised = {**match_index, voter: match_index.get(voter, 0) + 1}
        assert quorum.committed_index(raised) >= committed


# ---- joint quorums (thesis §4.3) ------------------------------------------------------

half = st.lists(st.integers(1, 10), min_size=1, max_size=5, unique=True).map(tuple)
maybe_half = st.one_of(st.just(()), half)


def majority_holds(voters: tuple[int, ...], holders: set[int]) -> bool:
    """More than half of `voters` are in `holders` (an empty half agrees to anything)."""
    return not voters or 2 * sum(1 for voter in voters if voter in holders) > len(voters)


def naive_joint_committed_index(
    incoming: tuple[int, ...], outgoing: tuple[int, ...], match_index: dict[int, int]
) -> int:
    """The largest index that a majority of each half holds, trying every index there is."""
    best = 0
    for candidate in {0, *match_index.values()}:
        holders = {voter for voter, index in match_index.items() if index >= candidate}
        if majority_holds(incoming, holders) and majority_holds(outgoing, holders):
            best = max(best, candidate)
    return best


def naive_joint_vote_result(
    incoming: tuple[int, ...], outgoing: tuple[int, ...], votes: dict[int, bool]
) -> VoteResult:
    """Try every way the missing voters could still answer: won if a majority of both halves
    grants whatever they say, lost if it never does, pending otherwise."""
    voters = sorted({*incoming, *outgoing})
    missing = [voter for voter in voters if voter not in votes]
    outcomes = set()
    for answers in itertools.product((True, False), repeat=len(missing)):
        complete = {**votes, **dict(zip(missing, answers, strict=True))}
        granted = {voter for voter in voters if complete.get(voter)}
        outcomes.add(majority_holds(incoming, granted) and majority_holds(outgoing, granted))
    if outcomes == {True}:
        return VoteResult.WON
    if outcomes == {False}:
        return VoteResult.LOST
    return VoteResult.PENDING


@st.composite
def joint_and_match_indexes(
    draw: st.DrawFn,
) -> tuple[tuple[int, ...], tuple[int, ...], dict[int, int]]:
    incoming, outgoing = draw(half), draw(maybe_half)
    known = draw(st.lists(st.sampled_from(sorted({*incoming, *outgoing})), unique=True))
    return incoming, outgoing, {voter: draw(st.integers(0, 6)) for voter in known}


@st.composite
def joint_and_votes(
    draw: st.DrawFn,
) -> tuple[tuple[int, ...], tuple[int, ...], dict[int, bool]]:
    incoming, outgoing = draw(half), draw(maybe_half)
    known = draw(st.lists(st.sampled_from(sorted({*incoming, *outgoing})), unique=True))
    return incoming, outgoing, {voter: draw(st.booleans()) for voter in known}


@deterministic
@given(joint_and_match_indexes())
def test_joint_committed_index_is_what_a_majority_of_both_halves_holds(
    case: tuple[tuple[int, ...], tuple[int, ...], dict[int, int]],
) -> None:
    incoming, outgoing, match_index = case
    expected = naive_joint_committed_index(incoming, outgoing, match_index)
    assert JointQuorum(incoming, outgoing).committed_index(match_index) == expected


@deterministic
@given(joint_and_votes())
def test_joint_vote_result_matches_every_possible_outcome(
    case: tuple[tuple[int, ...], tuple[int, ...], dict[int, bool]],
) -> None:
    incoming, outgoing, votes = case
    expected = naive_joint_vote_result(incoming, outgoing, votes)
    assert JointQuorum(incoming, outgoing).vote_result(votes) is expected


@deterministic
@given(joint_and_votes())
def test_joint_has_quorum_needs_a_majority_of_each_half(
    case: tuple[tuple[int, ...], tuple[int, ...], dict[int, bool]],
) -> None:
    incoming, outgoing, marks = case
    active = {voter for voter, mark in marks.items() if mark}
    expected = majority_holds(incoming, active) and majority_holds(outgoing, active)
    assert JointQuorum(incoming, outgoing).has_quorum(marks) is expected


@deterministic
@given(half, half, st.data())
def test_any_two_joint_quorums_of_one_configuration_intersect_in_each_half(
    incoming: tuple[int, ...], outgoing: tuple[int, ...], data: st.DataObject
) -> None:
    """Why joint consensus is safe (§4.3): two sets that each win a joint vote share a voter
    of the old configuration and one of the new, so no two leaders of one term, and a
    committed entry reaches every later winner."""
    quorum = JointQuorum(incoming, outgoing)
    voters = sorted({*incoming, *outgoing})
    first = set(data.draw(st.lists(st.sampled_from(voters), unique=True)))
    second = set(data.draw(st.lists(st.sampled_from(voters), unique=True)))
    if all(
        quorum.vote_result(dict.fromkeys(group, True)) is VoteResult.WON
        for group in (first, second)
    ):
        assert first & second & set(incoming)
        assert first & second & set(outgoing)
