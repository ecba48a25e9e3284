"""How many seeds the simulator needs to find each planted bug (issue #4 §6).

For every bug of the catalogue in `tests/sim/test_planted_bugs.py`, sweeps seeds 0..N-1 with the
default scenario (`RunOptions()`: 5 nodes, every nemesis, 30 simulated seconds) and with the
bug's tuned scenario, over a process pool whose workers plant the bug (the parent never does),
and prints one JSON line per bug and scenario:

    {"bug": ..., "scenario": "default" | "tuned", "options": "--nodes 5 ...",
     "first_violating_seed": S or null, "violating_seeds": k, "seeds_run": n,
     "properties": [every property violated in the sweep], "timed_out_seeds": [...],
     "wall_seconds": ...}

Some bugs make the cluster spin (a leader re-sending to a follower that lost entries it had
acknowledged can loop forever at network speed); a run still going after `--run-timeout` wall
seconds is stopped and listed under `timed_out_seeds`, neither violating nor clean.

Usage:
    python benchmarks/planted_bugs.py [--seeds 300] [--jobs 2] [--bugs a,b] [--scenarios tuned]
    python benchmarks/planted_bugs.py --bugs double-vote --scenarios tuned --replay 1
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from sim._run import RunOptions, run_simulation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
catalogue: Any = importlib.import_module("tests.sim.test_planted_bugs")

SCENARIOS = ("default", "tuned")
_planted = pytest.MonkeyPatch()
_worker_settings = {"run_timeout": 30}


class _RunTimedOut(Exception):
    pass


def _options(bug: Any, scenario: str) -> RunOptions:
    return bug.scenario if scenario == "tuned" else RunOptions()


def _plant(name: str, run_timeout: int) -> None:
    """Pool initializer: plant the bug in this worker for good (the worker dies with it)."""
    catalogue.BUGS_BY_NAME[name].plant(_planted)
    _worker_settings["run_timeout"] = run_timeout


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _RunTimedOut


def _run(task: tuple[int, RunOptions]) -> tuple[int, list[str] | None]:
    """One seed in a worker: the violated properties ([] if none; None if it timed out)."""
    seed, options = task
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(_worker_settings["run_timeout"])
    try:
        result = run_simulation(seed, options)
    except _RunTimedOut:
        return seed, None
    finally:
        signal.alarm(0)
    return seed, [violation.property for violation in result.violations]


def sweep(name: str, scenario: str, seeds: int, jobs: int, run_timeout: int) -> dict[str, Any]:
    """Run seeds 0..seeds-1 of one bug's scenario with the bug planted; the JSON-ready line."""
    options = _options(catalogue.BUGS_BY_NAME[name], scenario)
    started = time.perf_counter()
    violating: list[int] = []
    timed_out: list[int] = []
    properties: set[str] = set()
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    tasks = [(seed, options) for seed in range(seeds)]
    with context.Pool(jobs, initializer=_plant, initargs=(name, run_timeout)) as pool:
        for done, (seed, violated) in enumerate(pool.imap_unordered(_run, tasks), 1):
            if violated is None:
                timed_out.append(seed)
            elif violated:
                violating.append(seed)
                properties.update(violated)
            print(f"\r{name} {scenario}: {done}/{seeds}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {
        "bug": name,
        "scenario": scenario,
        "options": " ".join(options.arguments()),
        "first_violating_seed": min(violating, default=None),
        "violating_seeds": len(violating),
        "seeds_run": seeds,
        "properties": sorted(properties),
        "timed_out_seeds": sorted(timed_out),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def replay(name: str, scenario: str, seed: int) -> dict[str, Any]:
    """One seed with the bug planted, in this process: its verdict."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        catalogue.BUGS_BY_NAME[name].plant(monkeypatch)
        result = run_simulation(seed, _options(catalogue.BUGS_BY_NAME[name], scenario))
    return {
        "bug": name,
        "scenario": scenario,
        "seed": seed,
        "violations": [str(violation) for violation in result.violations],
        "faults": list(result.faults),
    }


def main() -> None:
    names = [bug.name for bug in catalogue.PLANTED_BUGS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=300, help="sweep seeds 0..N-1 (300)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--bugs", default=",".join(names), help=f"comma-separated: {names}")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="default,tuned")
    parser.add_argument("--run-timeout", type=int, default=30, help="wall seconds per run (30)")
    parser.add_argument("--replay", type=int, metavar="SEED", help="run one seed, bug planted")
    args = parser.parse_args()
    bugs = [name.strip() for name in args.bugs.split(",") if name.strip()]
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(bugs) - set(names)) + sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown bug or scenario {unknown}; bugs: {names}, scenarios: {SCENARIOS}")
    for name in bugs:
        for scenario in scenarios:
            if args.replay is not None:
                line = replay(name, scenario, args.replay)
            else:
                line = sweep(name, scenario, args.seeds, args.jobs, args.run_timeout)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
