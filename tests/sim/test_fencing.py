"""The fencing check: a storage service that checks fencing tokens stays consistent while
clients stall past their leases; one that trusts the lock alone is corrupted within a few seeds."""

from __future__ import annotations

import attrs
import pytest

from sim._fencing import RECIPES, FencedStorage, FencingOptions, first_interleaving, run_fencing

SEEDS = range(6)


@attrs.define
class TrustingStorage:
    """PLANTED: takes every write from anyone who believes it holds the lock (the token is only
    recorded, for the checker): a lease without fencing."""

    accepted: list[tuple[int, int, int]] = attrs.Factory(list)

    def write(self, token: int, client: int, record: int) -> bool:
        self.accepted.append((token, client, record))
        return True


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_fenced_storage_never_takes_interleaved_writes(seed: int, recipe: str) -> None:
    report = run_fencing(seed, FencingOptions(recipe=recipe))
    assert report.clean, report
    # Not vacuous: clients stalled past their leases, the storage refused the stale writes,
    # and the leader was paused underneath.
    assert report.grants > 50
    assert report.client_pauses > 0
    assert report.writes_refused > 0
    assert report.leader_pauses > 0


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_storage_without_fencing_is_corrupted_within_a_few_seeds(recipe: str) -> None:
    caught = []
    for seed in SEEDS:
        report = run_fencing(seed, FencingOptions(recipe=recipe), storage=TrustingStorage())
        assert report.lock_violation is None  # the lock kept its promises; the storage did not
        if report.storage_violation is not None:
            caught.append(seed)
    assert caught and caught[0] <= 2, caught
    assert len(caught) >= len(SEEDS) // 2


def test_replicas_install_snapshots_of_the_lock_table_mid_run() -> None:
    assert run_fencing(1).snapshots_installed > 0


def test_the_same_seed_gives_the_same_run() -> None:
    first, second = run_fencing(3), run_fencing(3)
    assert first == second
    assert first.trace_sha256 != run_fencing(4).trace_sha256


def test_without_stalls_even_a_trusting_storage_stays_consistent() -> None:
    # The corruption needs a client that stalls between its lease check and its write.
    options = FencingOptions(pause_probability=0.0, duration_ns=5_000_000_000)
    report = run_fencing(0, options, storage=TrustingStorage())
    assert report.clean, report


@pytest.mark.parametrize(
    ("accepted", "problem"),
    [
        ([(1, 0, 0), (1, 0, 1), (2, 1, 0), (1, 0, 2)], "write #3 (client 0, record 2, token 1)"),
        ([(2, 1, 0), (1, 0, 0)], "is stale: token 2 had already written"),
        ([(1, 0, 0), (2, 1, 0), (1, 0, 1)], "resumed after another holder wrote"),
    ],
)
def test_the_checker_catches_interleaved_writes(
    accepted: list[tuple[int, int, int]], problem: str
) -> None:
    found = first_interleaving(accepted)
    assert found is not None and problem in found, found


def test_the_checker_passes_contiguous_increasing_blocks() -> None:
    assert first_interleaving([]) is None
    assert first_interleaving([(1, 0, 0), (1, 0, 1), (3, 2, 0), (4, 0, 0), (4, 0, 1)]) is None


def test_fenced_storage_refuses_only_lower_tokens() -> None:
    storage = FencedStorage()
    assert storage.write(2, 0, 0)
    assert storage.write(2, 0, 1)
    assert not storage.write(1, 1, 0)
    assert storage.write(5, 1, 0)
    assert storage.accepted == [(2, 0, 0), (2, 0, 1), (5, 1, 0)]
