"""The Figure 3 checkers pass on safe inputs and fail on violating ones."""

from __future__ import annotations

from raft import Entry
from sim._invariants import election_safety, log_matching, state_machine_safety


def log(*terms: int) -> list[Entry]:
    return [Entry(term, index, b"%d-%d" % (index, term)) for index, term in enumerate(terms, 1)]


def test_election_safety_holds_with_one_leader_per_term() -> None:
    assert election_safety({1: {2}, 2: {3}, 5: {1}}) is None


def test_election_safety_fails_on_two_leaders_in_a_term() -> None:
    violation = election_safety({1: {2}, 2: {1, 3}})
    assert violation is not None
    assert violation.property == "election safety"
    assert "term 2" in violation.detail and "[1, 3]" in violation.detail


def test_log_matching_holds_for_prefixes_and_divergent_suffixes() -> None:
    # Figure 7-style: agreement up to index 3, then different terms: allowed.
    assert log_matching({1: log(1, 1, 2, 3), 2: log(1, 1, 2, 4, 4), 3: log(1)}) is None


def test_log_matching_fails_when_equal_entries_have_different_histories() -> None:
    first = log(1, 1, 2)
    second = [Entry(1, 1, b"other"), *log(1, 1, 2)[1:]]
    violation = log_matching({1: first, 2: second})
    assert violation is not None
    assert violation.property == "log matching"
    assert "index 1" in violation.detail


def test_state_machine_safety_holds_when_applied_prefixes_agree() -> None:
    assert state_machine_safety({1: [(1, b"a"), (2, b"b")], 2: [(1, b"a")]}) is None


def test_state_machine_safety_fails_on_different_commands_at_one_index() -> None:
    violation = state_machine_safety({1: [(1, b"a"), (2, b"b")], 2: [(1, b"a"), (2, b"c")]})
    assert violation is not None
    assert "index 2" in violation.detail
