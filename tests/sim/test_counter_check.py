"""The counter check: the final value is explained by the adds, through leader pauses; a client
that counts timeouts as failures (planted) is caught."""

from __future__ import annotations

import pytest

from sim._counter_check import CounterCheckOptions, counter_bounds, run_counter_check

SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_counter_holds_what_the_adds_explain(seed: int) -> None:
    report = run_counter_check(seed)
    assert report.clean, report.violation
    assert report.acknowledged > 100 and report.unknown > 0 and report.leader_pauses > 0


def test_a_client_counting_timeouts_as_failures_is_caught_within_a_few_seeds() -> None:
    planted = CounterCheckOptions(timeouts_failed=True)
    caught = [seed for seed in SEEDS if not run_counter_check(seed, planted).clean]
    assert caught and caught[0] <= 1, caught


def test_the_same_seed_gives_the_same_run() -> None:
    assert run_counter_check(1) == run_counter_check(1)


def test_the_bounds_checker() -> None:
    assert counter_bounds([5, 5, 5], 3, 6) is None
    assert counter_bounds([5, 4, 5], 3, 6) == "replicas hold different values: [5, 4, 5]"
    assert counter_bounds([7, 7], 3, 6) == (
        "the counter holds 7, outside [3, 6] that the adds explain"
    )
