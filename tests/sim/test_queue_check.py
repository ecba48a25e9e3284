"""The work-queue check: workers die and stall, the leader pauses, and still no item is lost or
acked twice; an effectively endless visibility timeout (planted) loses dead workers' items."""

from __future__ import annotations

import pytest

from sim._queue_check import QueueCheckOptions, queue_violations, run_queue_check
from statemachines import QueueResult

SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_no_item_is_lost_or_acked_twice(seed: int) -> None:
    report = run_queue_check(seed)
    assert report.clean, report.violations
    assert report.enqueued >= QueueCheckOptions().items
    assert report.acked == report.enqueued
    # Not vacuous: items were reclaimed from dead and stalled workers, whose acks were refused.
    assert report.worker_deaths > 0 and report.worker_stalls > 0
    assert report.claims > report.acked
    assert report.stale_acks_refused > 0
    assert report.leader_pauses > 0


def test_replicas_install_snapshots_of_the_queue_mid_run() -> None:
    assert run_queue_check(1).snapshots_installed > 0


def test_claims_that_never_time_out_strand_a_dead_workers_item() -> None:
    report = run_queue_check(0, QueueCheckOptions(visibility_ns=10**12))
    assert not report.clean
    assert any("never acked (still queued)" in violation for violation in report.violations)


def test_the_same_seed_gives_the_same_run() -> None:
    assert run_queue_check(2) == run_queue_check(2)


def ok(item: int, **fields: object) -> QueueResult:
    return QueueResult(ok=True, item=item, **fields)  # type: ignore[arg-type]


def test_the_checker_reports_double_acks_lost_and_stranded_items() -> None:
    log = [
        ("enqueue", ok(1)),
        ("enqueue", ok(2)),
        ("enqueue", ok(3)),
        ("claim", ok(1, payload=b"", token=1, deadline_ns=5)),
        ("ack", ok(1, token=1)),
        ("ack", ok(1, token=2)),
        ("ack", QueueResult(ok=False)),
    ]
    assert queue_violations(log, remaining=[3]) == [
        "item 1 acked 2 times",
        "item 2 never acked (lost: neither acked nor queued)",
        "item 3 never acked (still queued)",
    ]
    assert queue_violations(log[:1] + log[3:5], remaining=[]) == []
