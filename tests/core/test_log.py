"""RaftLog: stable entries plus the unstable tail, the commit and apply positions (§5.3, §5.4)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from raft import Entry, HardState
from raft.core._log import LogCorrupted, RaftLog
from raft.storage import MemoryStorage
from tests.builders import make_storage


def make_log(terms: Sequence[int] = (), commit: int = 0) -> tuple[RaftLog, MemoryStorage]:
    """A log whose storage holds entries 1..len(terms) with those terms."""
    storage = make_storage(terms, HardState(term=max(terms, default=0), commit=commit))
    return RaftLog(storage), storage


def run(term: int, first: int, count: int = 1) -> list[Entry]:
    """`count` entries of `term` from index `first` on."""
    return [Entry(term, index, b"t%d/%d" % (term, index)) for index in range(first, first + count)]


def terms(log: RaftLog) -> list[int]:
    return [entry.term for entry in log.slice(1, log.last_index() + 1)]


def persist(log: RaftLog, storage: MemoryStorage) -> list[Entry]:
    """Do what a caller does with a Ready's entries: write them, then report them durable."""
    entries = log.unpersisted()
    if entries:
        storage.append(entries)
        log.persisted(entries[-1].index, entries[-1].term)
    return entries


# ---- reading --------------------------------------------------------------------------------


def test_empty_log_has_index_zero_of_term_zero() -> None:
    log, _ = make_log()

    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 0, 0)
    assert log.term(0) == 0
    assert log.slice(1, 1) == []


def test_log_built_from_storage_starts_committed_at_the_stored_commit_and_applied_at_zero() -> None:
    log, _ = make_log([1, 1, 2], commit=2)

    assert log.committed == 2
    assert log.applied == 0
    assert log.unapplied() == log.slice(1, 3), "a restarted node re-applies its committed log"


def test_term_is_zero_outside_the_log_and_reads_storage_and_the_unstable_tail() -> None:
    log, _ = make_log([1, 1, 2])
    log.append(run(3, 4, 2))

    assert [log.term(index) for index in range(8)] == [0, 1, 1, 2, 3, 3, 0, 0]


def test_slice_spans_storage_and_the_unstable_tail() -> None:
    log, storage = make_log([1, 1])
    tail = run(2, 3, 2)
    log.append(tail)

    assert log.slice(1, 5) == [*storage.entries(1, 3), *tail]
    assert log.slice(2, 4) == [storage.entries(2, 3)[0], tail[0]]
    assert log.slice(3, 5) == tail


def test_matches_needs_the_same_term_at_the_index_and_index_zero_always_matches() -> None:
    log, _ = make_log([1, 2, 2])

    assert log.matches(0, 0)
    assert log.matches(3, 2)
    assert not log.matches(3, 1)
    assert not log.matches(4, 0), "beyond the end nothing matches, though term() answers 0"
    assert not log.matches(9, 2)


@pytest.mark.parametrize(
    ("last_index", "last_term", "up_to_date"),
    [
        (3, 3, True),  # same last entry
        (4, 3, True),  # same last term, longer
        (2, 3, False),  # same last term, shorter
        (1, 4, True),  # later last term wins though much shorter
        (9, 2, False),  # earlier last term loses though much longer
        (0, 0, False),  # an empty log is behind any non-empty one
    ],
)
def test_is_up_to_date_compares_last_terms_then_lengths(
    last_index: int, last_term: int, up_to_date: bool
) -> None:
    """§5.4.1: the log with the later last term is more up-to-date; with equal last terms, the
    longer log is."""
    log, _ = make_log([1, 3, 3])

    assert log.is_up_to_date(last_index, last_term) is up_to_date


def test_an_empty_log_grants_is_up_to_date_to_an_empty_log() -> None:
    """§5.4.1: equal (empty) logs are up-to-date with each other."""
    log, _ = make_log()

    assert log.is_up_to_date(0, 0)


def test_find_conflict_returns_the_first_entry_missing_or_of_another_term() -> None:
    log, _ = make_log([1, 1, 2, 2])

    assert log.find_conflict(run(1, 1, 2)) == 2, "all present"
    assert log.find_conflict([*run(1, 2), *run(2, 3, 2), *run(2, 5)]) == 3, "entry 5 missing"
    assert log.find_conflict([*run(1, 2), *run(3, 3, 3)]) == 1, "entry 3 of another term"
    assert log.find_conflict(run(1, 5, 2)) == 0, "beyond the end"


@pytest.mark.parametrize(
    ("index", "commit", "first"),
    [(5, 0, 3), (6, 0, 6), (2, 0, 1), (3, 0, 3), (5, 3, 4), (5, 4, 5), (2, 1, 2)],
)
def test_first_index_of_term_at_walks_back_to_the_run_start_but_not_to_the_commit(
    index: int, commit: int, first: int
) -> None:
    """§5.3's fast backtracking hint: the first index holding the term at `index`, but never at
    or below the commit index, which agrees with any leader."""
    log, _ = make_log([1, 1, 2, 2, 2, 3], commit=commit)

    assert log.first_index_of_term_at(index) == first


def test_first_index_of_term_at_reads_across_the_unstable_tail() -> None:
    log, _ = make_log([1, 2, 2])
    log.append(run(2, 4, 2))

    assert log.first_index_of_term_at(5) == 2


# ---- appending ------------------------------------------------------------------------------


def test_append_at_the_end_goes_to_the_unstable_tail() -> None:
    log, storage = make_log([1, 1])

    log.append(run(2, 3, 2))

    assert log.last_index() == 4
    assert terms(log) == [1, 1, 2, 2]
    assert storage.last_index() == 2, "the core never writes storage itself"
    assert log.unpersisted() == run(2, 3, 2)


def test_append_into_the_unstable_tail_replaces_its_suffix_and_hands_out_the_replacement() -> None:
    log, _ = make_log([1])
    log.append(run(2, 2, 3))
    assert log.unpersisted() == run(2, 2, 3)

    log.append(run(3, 3, 1))

    assert terms(log) == [1, 2, 3]
    assert log.unpersisted() == run(3, 3, 1), "the replacement must be persisted in turn"


def test_append_conflicting_inside_storage_replaces_from_there_on() -> None:
    log, storage = make_log([1, 1, 1, 1, 1])

    log.append(run(2, 3, 2))

    assert log.last_index() == 4
    assert terms(log) == [1, 1, 2, 2]
    assert log.unpersisted() == run(2, 3, 2), "the Ready starts at an index storage holds"
    assert storage.last_index() == 5, "storage drops its suffix only when the caller persists"


def test_append_conflicting_inside_storage_is_durable_once_persisted() -> None:
    log, storage = make_log([1, 1, 1, 1, 1])
    log.append(run(2, 3, 2))

    persist(log, storage)

    assert [storage.term(index) for index in range(1, storage.last_index() + 1)] == [1, 1, 2, 2]
    assert log.unstable == []
    assert terms(log) == [1, 1, 2, 2]


@pytest.mark.parametrize("first", [1, 2, 3])
def test_append_refuses_to_overwrite_committed_entries(first: int) -> None:
    """§5.4 leader completeness: an entry at or below the commit index is never replaced."""
    log, _ = make_log([1, 1, 1], commit=3)

    with pytest.raises(LogCorrupted, match="refusing to overwrite committed entry"):
        log.append(run(2, first))

    assert terms(log) == [1, 1, 1]


def test_append_just_above_the_commit_index_is_allowed() -> None:
    log, _ = make_log([1, 1, 1], commit=2)

    log.append(run(2, 3))

    assert terms(log) == [1, 1, 2]


def test_append_leaving_a_gap_is_refused() -> None:
    log, _ = make_log([1])

    with pytest.raises(LogCorrupted, match="gap: appending at 3 after last index 1"):
        log.append(run(1, 3))


# ---- persisting -----------------------------------------------------------------------------


def test_unpersisted_hands_out_each_entry_once() -> None:
    log, _ = make_log()
    log.append(run(1, 1, 2))

    assert log.unpersisted() == run(1, 1, 2)
    assert log.unpersisted() == []
    log.append(run(1, 3))
    assert log.unpersisted() == run(1, 3), "only what is new since the last hand-out"


def test_persisted_drops_the_durable_prefix_of_the_tail_and_reads_go_to_storage() -> None:
    log, storage = make_log()
    log.append(run(1, 1, 3))
    storage.append(log.unpersisted())
    log.append(run(1, 4))

    log.persisted(3, 1)

    assert log.unstable == run(1, 4), "entry 4 was not handed out, so it stays"
    assert log.unstable_offset == 4
    assert terms(log) == [1, 1, 1, 1]


def test_persisted_is_ignored_when_the_tail_was_rewritten_meanwhile() -> None:
    """A newer leader replaced entries 2.. while the caller was persisting 1..3: reporting the
    old entry 3 durable must not drop the replacement, which storage does not hold yet."""
    log, storage = make_log()
    log.append(run(1, 1, 3))
    handed_out = log.unpersisted()
    log.append(run(2, 2))
    storage.append(handed_out)

    log.persisted(3, 1)

    assert terms(log) == [1, 2]
    assert log.unstable_offset == 1
    assert log.unpersisted() == run(2, 2), "the replacement is still to be persisted"


def test_persisted_is_ignored_when_a_storage_conflict_rewrote_the_tail_meanwhile() -> None:
    log, storage = make_log([1, 1, 1])
    log.append(run(1, 4, 2))
    handed_out = log.unpersisted()
    log.append(run(2, 2, 2))
    storage.append(handed_out)

    log.persisted(5, 1)

    assert terms(log) == [1, 2, 2]
    persist(log, storage)
    assert [storage.term(index) for index in range(1, storage.last_index() + 1)] == [1, 2, 2]


@pytest.mark.parametrize(("index", "term"), [(0, 0), (9, 1), (2, 2)])
def test_persisted_for_entries_the_tail_does_not_hold_is_ignored(index: int, term: int) -> None:
    log, _ = make_log([1])
    log.append(run(1, 2, 2))

    log.persisted(index, term)

    assert log.unstable == run(1, 2, 2)


# ---- committing and applying ----------------------------------------------------------------


def test_commit_to_never_lowers_the_commit_index() -> None:
    log, _ = make_log([1, 1, 1], commit=2)

    assert not log.commit_to(1)
    assert not log.commit_to(2)
    assert log.committed == 2
    assert log.commit_to(3)
    assert log.committed == 3


def test_commit_beyond_the_last_entry_is_an_internal_error() -> None:
    log, _ = make_log([1, 1])

    with pytest.raises(LogCorrupted, match="commit index 3 beyond the last entry 2"):
        log.commit_to(3)


def test_unapplied_hands_out_committed_entries_once_and_in_order() -> None:
    log, _ = make_log([1, 1, 1, 2, 2])

    log.commit_to(3)
    assert log.unapplied() == log.slice(1, 4)
    assert log.unapplied() == []
    log.commit_to(5)
    assert log.unapplied() == log.slice(4, 6)


def test_unapplied_includes_committed_entries_still_in_the_unstable_tail() -> None:
    log, _ = make_log([1])
    log.append(run(1, 2))
    log.commit_to(2)

    assert [entry.index for entry in log.unapplied()] == [1, 2]


def test_applied_moves_only_when_the_caller_reports_and_never_back() -> None:
    log, _ = make_log([1, 1, 1])
    log.commit_to(3)
    log.unapplied()

    assert log.applied == 0
    log.applied_to(2)
    assert log.applied == 2
    log.applied_to(1)
    assert log.applied == 2


# ---- building messages ----------------------------------------------------------------------


def sized(sizes: Sequence[int]) -> tuple[RaftLog, MemoryStorage]:
    """A log whose entry i+1 carries `sizes[i]` bytes of data."""
    storage = MemoryStorage()
    storage.append([Entry(1, index, b"x" * size) for index, size in enumerate(sizes, 1)])
    return RaftLog(storage), storage


def test_entries_for_message_stops_at_the_count_limit() -> None:
    log, _ = make_log([1] * 10)

    assert [entry.index for entry in log.entries_for_message(2, 3, 1 << 20)] == [2, 3, 4]
    assert [entry.index for entry in log.entries_for_message(9, 3, 1 << 20)] == [9, 10]


def test_entries_for_message_stops_before_the_byte_limit() -> None:
    log, _ = sized([4, 4, 4, 4])

    assert [entry.index for entry in log.entries_for_message(1, 10, 8)] == [1, 2]
    assert [entry.index for entry in log.entries_for_message(1, 10, 11)] == [1, 2]
    assert [entry.index for entry in log.entries_for_message(1, 10, 16)] == [1, 2, 3, 4]


def test_entries_for_message_always_carries_at_least_one_entry() -> None:
    log, _ = sized([9, 1])

    assert [entry.index for entry in log.entries_for_message(1, 10, 4)] == [1]


def test_entries_for_message_counts_empty_entries_against_the_count_only() -> None:
    log, _ = sized([0, 0, 0, 5])

    assert [entry.index for entry in log.entries_for_message(1, 10, 4)] == [1, 2, 3]


def test_entries_for_message_beyond_the_end_is_empty() -> None:
    log, _ = make_log([1, 1])

    assert log.entries_for_message(3, 10, 100) == []


def test_entries_for_message_reads_across_storage_and_the_tail() -> None:
    log, _ = make_log([1, 1])
    log.append(run(2, 3, 2))

    assert [entry.term for entry in log.entries_for_message(2, 10, 100)] == [1, 2, 2]
