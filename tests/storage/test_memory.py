"""MemoryStorage: the log and hard state a simulated node persists, and the errors that guard it."""

from __future__ import annotations

import pytest

from raft import Entry, HardState
from raft.storage import MemoryStorage
from tests.builders import make_storage


def entries(*terms_from: tuple[int, int]) -> list[Entry]:
    """Entries with (term, index) pairs, data naming both so replacements are visible."""
    return [Entry(term, index, b"%d@%d" % (index, term)) for term, index in terms_from]


def test_new_storage_is_empty_with_a_zero_hard_state() -> None:
    storage = MemoryStorage()

    assert storage.first_index() == 1
    assert storage.last_index() == 0
    assert storage.term(0) == 0
    assert storage.initial_state() == HardState(0, None, 0)
    assert list(storage.entries(1, 1)) == []


def test_appended_entries_are_read_back_with_their_terms() -> None:
    storage = MemoryStorage()
    written = entries((1, 1), (1, 2), (2, 3))

    storage.append(written)

    assert storage.last_index() == 3
    assert list(storage.entries(1, 4)) == written
    assert list(storage.entries(2, 3)) == written[1:2]
    assert [storage.term(index) for index in range(4)] == [0, 1, 1, 2]


def test_appending_at_the_end_extends_the_log() -> None:
    storage = make_storage([1, 1])

    storage.append(entries((2, 3), (2, 4)))

    assert [storage.term(index) for index in range(1, 5)] == [1, 1, 2, 2]


def test_append_inside_the_log_replaces_the_suffix_from_its_first_index() -> None:
    storage = make_storage([1, 1, 1, 1, 1])
    replacement = entries((3, 3), (3, 4))

    storage.append(replacement)

    assert storage.last_index() == 4, "entry 5 of the replaced suffix must be gone"
    assert list(storage.entries(3, 5)) == replacement
    assert [storage.term(index) for index in range(1, 5)] == [1, 1, 3, 3]


def test_append_may_shorten_the_log_when_the_replacement_is_shorter() -> None:
    storage = make_storage([1, 1, 2, 2, 2])

    storage.append(entries((4, 2)))

    assert storage.last_index() == 2
    assert storage.term(2) == 4


def test_append_of_nothing_changes_nothing() -> None:
    storage = make_storage([1, 2])

    storage.append([])

    assert storage.last_index() == 2
    assert storage.term(2) == 2


def test_append_leaving_a_gap_is_refused_and_changes_nothing() -> None:
    storage = make_storage([1, 1])

    with pytest.raises(ValueError, match="gap: appending at 4 after last index 2"):
        storage.append(entries((1, 4)))

    assert storage.last_index() == 2


def test_append_at_index_zero_is_refused() -> None:
    storage = make_storage([1])

    with pytest.raises(ValueError, match="at or before the log's start"):
        storage.append(entries((1, 0)))

    assert storage.last_index() == 1


@pytest.mark.parametrize("index", [-1, 4, 10])
def test_term_outside_the_log_is_an_index_error(index: int) -> None:
    storage = make_storage([1, 1, 2])

    with pytest.raises(IndexError, match=f"term of {index} outside the log"):
        storage.term(index)


@pytest.mark.parametrize(("low", "high"), [(0, 2), (1, 5), (3, 5), (-1, 1)])
def test_entries_outside_the_log_are_an_index_error(low: int, high: int) -> None:
    storage = make_storage([1, 1, 2])

    with pytest.raises(IndexError, match=r"outside the log \(1\.\.3\)"):
        storage.entries(low, high)


def test_entries_read_before_a_replacement_keep_what_they_held() -> None:
    storage = make_storage([1, 1, 1])
    before = list(storage.entries(1, 4))

    storage.append(entries((2, 2)))

    assert [entry.term for entry in before] == [1, 1, 1]
    assert [entry.term for entry in storage.entries(1, 3)] == [1, 2]


def test_hard_state_set_is_the_initial_state_read_back() -> None:
    storage = MemoryStorage()
    hard_state = HardState(term=5, vote=2, commit=3)

    storage.set_hard_state(hard_state)

    assert storage.initial_state() == hard_state


def test_hard_state_is_independent_of_the_entries() -> None:
    storage = make_storage([1, 1], HardState(term=2, vote=1, commit=1))

    storage.append(entries((2, 2)))

    assert storage.initial_state() == HardState(term=2, vote=1, commit=1)
