"""Progress (§5.3 nextIndex/matchIndex, probe and replicate) and its Inflights window."""

from __future__ import annotations

import pytest

from raft import Progress, ProgressState
from raft.core._inflights import Inflights


def replicating(match_index: int, capacity: int = 3) -> Progress:
    """A follower known to hold everything up to `match_index`, being streamed to."""
    progress = Progress(match_index + 1, capacity)
    progress.acknowledged(match_index)
    progress.become_replicate()
    return progress


# ---- probe ----------------------------------------------------------------------------------


def test_new_progress_probes_from_the_given_next_index_knowing_no_match() -> None:
    """§5.3: a new leader sets nextIndex just past its own log and knows no matchIndex."""
    progress = Progress(7, 4)

    assert progress.state is ProgressState.PROBE
    assert (progress.match_index, progress.next_index) == (0, 7)
    assert not progress.is_paused()


def test_probe_pauses_after_one_message_until_an_answer_arrives() -> None:
    progress = Progress(5, 4)

    progress.sent_entries(6)

    assert progress.is_paused()
    assert progress.next_index == 5, "a probe does not move next_index optimistically"
    assert len(progress.inflights) == 0


def test_acknowledged_probe_unpauses_and_moves_match_and_next() -> None:
    progress = Progress(5, 4)
    progress.sent_entries(6)

    assert progress.acknowledged(6)

    assert (progress.match_index, progress.next_index) == (6, 7)
    assert not progress.is_paused()


def test_rejected_probe_backs_next_index_off_to_the_hint_and_unpauses() -> None:
    """§5.3: on rejection the leader retries with a lower nextIndex; the follower's conflict
    index lets it skip a whole divergent term in one round trip."""
    progress = Progress(11, 4)
    progress.sent_entries(11)

    assert progress.rejected(10, 7)

    assert progress.next_index == 7
    assert not progress.is_paused()
    assert progress.state is ProgressState.PROBE


def test_rejected_probe_for_another_index_is_stale_and_ignored() -> None:
    progress = Progress(11, 4)
    progress.sent_entries(11)

    assert not progress.rejected(8, 3)

    assert progress.next_index == 11
    assert progress.is_paused(), "the probe that is really outstanding is still unanswered"


def test_rejection_never_moves_next_index_to_or_below_the_match_index() -> None:
    """Entries up to matchIndex are known to agree, so probing below it would be wasted."""
    progress = Progress(11, 4)
    progress.acknowledged(5)

    assert progress.rejected(10, 2)

    assert progress.next_index == 6


# ---- replicate ------------------------------------------------------------------------------


def test_become_replicate_streams_from_just_after_the_match() -> None:
    progress = Progress(9, 4)
    progress.acknowledged(4)
    progress.sent_entries(9)

    progress.become_replicate()

    assert progress.state is ProgressState.REPLICATE
    assert progress.next_index == 5
    assert not progress.is_paused()


def test_replicate_moves_next_index_optimistically_and_pauses_when_the_window_is_full() -> None:
    progress = replicating(4, capacity=2)

    progress.sent_entries(6)
    assert (progress.next_index, progress.is_paused()) == (7, False)
    progress.sent_entries(9)

    assert progress.next_index == 10
    assert progress.is_paused()
    assert progress.match_index == 4


def test_acknowledged_ignores_stale_news() -> None:
    progress = replicating(6)
    progress.sent_entries(9)

    assert not progress.acknowledged(5)
    assert not progress.acknowledged(6)

    assert (progress.match_index, progress.next_index) == (6, 10)


def test_acknowledged_never_moves_next_index_back() -> None:
    progress = replicating(4)
    progress.sent_entries(9)

    assert progress.acknowledged(6)

    assert (progress.match_index, progress.next_index) == (6, 10)


def test_replicate_rejection_falls_back_to_probe_from_the_hint() -> None:
    progress = replicating(4)
    progress.sent_entries(6)
    progress.sent_entries(8)

    assert progress.rejected(6, 6)

    assert progress.state is ProgressState.PROBE
    assert progress.next_index == 6
    assert len(progress.inflights) == 0
    assert not progress.is_paused()


def test_replicate_rejection_at_or_below_the_match_is_stale_and_ignored() -> None:
    progress = replicating(6)
    progress.sent_entries(9)

    assert not progress.rejected(6, 3)
    assert not progress.rejected(2, 1)

    assert progress.state is ProgressState.REPLICATE
    assert (progress.match_index, progress.next_index) == (6, 10)
    assert len(progress.inflights) == 1


def test_replicate_rejection_never_probes_below_the_match() -> None:
    progress = replicating(6)
    progress.sent_entries(9)

    assert progress.rejected(8, 2)

    assert progress.next_index == 7


def test_become_probe_restarts_just_after_the_match_with_nothing_in_flight() -> None:
    progress = replicating(3)
    progress.sent_entries(5)

    progress.become_probe()

    assert progress.state is ProgressState.PROBE
    assert (progress.match_index, progress.next_index) == (3, 4)
    assert len(progress.inflights) == 0
    assert not progress.is_paused()


# ---- inflights ------------------------------------------------------------------------------


def test_inflights_is_full_at_capacity() -> None:
    inflights = Inflights(3)

    for last_index in (2, 4):
        inflights.add(last_index)
        assert not inflights.full()
    inflights.add(7)

    assert inflights.full()
    assert len(inflights) == 3


def test_free_up_to_forgets_every_message_acknowledged_in_full() -> None:
    inflights = Inflights(4)
    for last_index in (2, 4, 7, 9):
        inflights.add(last_index)

    inflights.free_up_to(5)

    assert len(inflights) == 2, "messages ending at 2 and 4 are acknowledged; 7 is not"
    inflights.free_up_to(7)
    assert len(inflights) == 1
    inflights.free_up_to(1)
    assert len(inflights) == 1


def test_free_up_to_frees_a_full_window() -> None:
    inflights = Inflights(2)
    inflights.add(3)
    inflights.add(6)

    inflights.free_up_to(3)

    assert not inflights.full()


def test_free_first_forgets_only_the_oldest_message() -> None:
    inflights = Inflights(2)
    inflights.add(3)
    inflights.add(6)

    inflights.free_first()

    assert len(inflights) == 1
    inflights.free_up_to(5)
    assert len(inflights) == 1, "the message ending at 6 is still in flight"


def test_free_first_of_an_empty_window_does_nothing() -> None:
    inflights = Inflights(2)

    inflights.free_first()

    assert len(inflights) == 0


def test_clear_empties_the_window() -> None:
    inflights = Inflights(2)
    inflights.add(3)
    inflights.add(6)

    inflights.clear()

    assert len(inflights) == 0
    assert not inflights.full()


@pytest.mark.parametrize("capacity", [1, 2, 5])
def test_replicate_pauses_after_exactly_capacity_messages(capacity: int) -> None:
    progress = replicating(0, capacity=capacity)

    sent = 0
    while not progress.is_paused():
        progress.sent_entries(progress.next_index)
        sent += 1

    assert sent == capacity
    progress.acknowledged(1)
    progress.inflights.free_up_to(1)
    assert not progress.is_paused()
