"""Speed of the simulator on its default scenario (5 nodes, 30 simulated seconds, every
nemesis, ten clients at about 40-50 operations per simulated second, all checkers on).

Prints one JSON line: events per wall second, simulated seconds per wall second and seeds per
second of one process (medians over `--seeds` runs), and, with `--sweep N`, the wall time of a
`sweep` of N seeds over `--jobs` processes. Usage:

    python benchmarks/sim_speed.py [--seeds 20] [--sweep 1000 --jobs 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from sim import RunOptions, run_simulation, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="runs timed one by one")
    parser.add_argument("--sweep", type=int, default=0, help="also time a sweep of this many")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the sweep")
    args = parser.parse_args()
    options = RunOptions()
    walls, events, sim_seconds, ops = [], [], [], []
    for seed in range(args.seeds):
        started = time.perf_counter()
        result = run_simulation(seed, options)
        walls.append(time.perf_counter() - started)
        events.append(result.events)
        sim_seconds.append(result.sim_seconds)
        ops.append(result.ops)
    wall = statistics.median(walls)
    figures: dict[str, object] = {
        "scenario": " ".join(options.arguments()),
        "runs": args.seeds,
        "events_per_s": round(statistics.median(e / w for e, w in zip(events, walls, strict=True))),
        "sim_seconds_per_wall_second": round(statistics.median(sim_seconds) / wall, 1),
        "seeds_per_s_one_process": round(1 / wall, 2),
        "ops_per_sim_second": round(statistics.median(ops) / statistics.median(sim_seconds), 1),
    }
    if args.sweep:
        report = sweep(range(args.sweep), options, args.jobs)
        figures.update(
            sweep_seeds=args.sweep,
            sweep_jobs=args.jobs,
            sweep_wall_seconds=report["wall_seconds"],
            sweep_violations=len(report["violations"]),
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
