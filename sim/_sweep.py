"""Many seeds of one scenario over a process pool, added up into one report.

A sweep never stops early: it runs every seed and reports every violating one, because the
second bug is often hiding behind the first.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import attrs

from sim._run import RunOptions, RunResult, run_simulation


def _run_one(task: tuple[int, RunOptions]) -> RunResult:
    seed, options = task
    # The timeline stays in the worker: sweeps report figures, and it is large to pickle.
    return attrs.evolve(run_simulation(seed, options), timeline=None)


def _results(seeds: range, options: RunOptions, jobs: int) -> Iterator[RunResult]:
    tasks = [(seed, options) for seed in seeds]
    if jobs == 1:
        yield from map(_run_one, tasks)
        return
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(jobs) as pool:
        yield from pool.imap_unordered(_run_one, tasks, chunksize=4)


def sweep(
    seeds: range,
    options: RunOptions,
    jobs: int,
    progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every seed; return the sweep's JSON-ready report (violations sorted by seed)."""
    started = time.perf_counter()
    violations: list[dict[str, Any]] = []
    totals = {"ops": 0, "elections": 0, "events": 0}
    sim_seconds = 0.0
    max_recovery = 0.0
    done = 0
    for result in _results(seeds, options, jobs):
        done += 1
        totals["ops"] += result.ops
        totals["elections"] += result.elections
        totals["events"] += result.events
        sim_seconds += result.sim_seconds
        max_recovery = max(max_recovery, result.max_recovery_s)
        violations += [
            {
                "seed": result.seed,
                "property": v.property,
                "detail": v.detail,
                "replay": result.replay_command(),
            }
            for v in result.violations
        ]
        if progress is not None:
            progress(done, len(seeds), len({v["seed"] for v in violations}))
    violations.sort(key=lambda v: (v["seed"], v["property"]))
    return {
        "runs": done,
        "violations": violations,
        "violating_seeds": sorted({v["seed"] for v in violations}),
        **totals,
        "max_recovery_s": max_recovery,
        "sim_seconds": sim_seconds,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "options": {"seeds": f"{seeds.start}..{seeds.stop - 1}", **_option_fields(options)},
    }


def _option_fields(options: RunOptions) -> dict[str, Any]:
    return {
        "nodes": options.nodes,
        "nemesis": options.nemesis,
        "duration": options.duration,
        "read_mode": options.read_mode,
        "clients": options.clients,
        "max_entries_per_message": options.max_entries_per_message,
        "snapshot_chunk_bytes": options.snapshot_chunk_bytes,
    }


def progress_bar(out: TextIO) -> Callable[[int, int, int], None]:
    """A one-line progress bar for a terminal (or any stream)."""

    def show(done: int, total: int, bad: int) -> None:
        width = 30
        filled = width * done // total
        out.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} seeds, {bad} violating"
        )
        if done == total:
            out.write("\n")
        out.flush()

    return show
