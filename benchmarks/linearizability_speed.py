"""How fast the linearizability checker gets through a large correct history.

Generates, from a fixed seed, 30 clients against 10 atomic registers (about 2,000 ops per key,
every written value unique as in the simulator's workload, 10% of ops with their outcome lost),
then times ``check_linearizability`` on it five times and prints one JSON line with the median::

    python benchmarks/linearizability_speed.py
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

from sim._history import Outcome, history_from_records
from sim._linearizability import check_linearizability

SEED = 20240601
KEYS = tuple(f"k{i}" for i in range(10))
OPS_PER_KEY = 2000
PROCESSES = 30
INFO_RATE = 0.1
RUNS = 5


def correct_history(rng: random.Random) -> list[dict[str, Any]]:
    """Jepsen records of clients whose every op takes effect atomically within its window.

    An info op's outcome is lost: it takes effect at some instant after its invocation, possibly
    long after, or never.
    """
    ops: list[dict[str, Any]] = []
    for process in range(PROCESSES):
        now = rng.randrange(5)
        for _ in range(OPS_PER_KEY * len(KEYS) // PROCESSES):
            start = now
            end = start + rng.randint(0, 20)
            point = rng.randint(start, end)
            outcome, applies = "ok", True
            if rng.random() < INFO_RATE:
                outcome, applies = "info", rng.random() < 0.5
                point = start + rng.randint(0, 200)
            f = rng.choice(("read", "read", "write", "cas"))
            ops.append({"process": process, "f": f, "key": rng.choice(KEYS), "start": start})
            ops[-1].update(point=point, end=end, outcome=outcome, applies=applies)
            now = end + rng.randint(0, 5)
    register: dict[str, Any] = dict.fromkeys(KEYS)
    for written, op in enumerate(sorted(ops, key=lambda op: op["point"])):
        key = op["key"]
        if op["f"] == "write":
            op["value"] = written
        elif op["f"] == "cas":
            op["value"] = [register[key] if rng.random() < 0.7 else -1, written]
        if not op["applies"]:
            continue
        if op["f"] == "read":
            op["result"] = register[key]
        elif op["f"] == "write" or register[key] == op["value"][0]:
            register[key] = written
        elif op["outcome"] == "ok":
            op["outcome"] = "fail"
    events = []
    for op in ops:
        common = {"process": op["process"], "f": op["f"], "key": op["key"]}
        value = op.get("value")
        events.append((op["start"], {**common, "type": "invoke", "value": value}))
        result = op.get("result") if op["f"] == "read" else value
        events.append((op["end"], {**common, "type": op["outcome"], "value": result}))
    events.sort(key=lambda event: event[0])  # stable: keeps each process's own order
    return [{**record, "time": at} for at, record in events]


def main() -> None:
    """Generate the history, check it ``RUNS`` times, print the median rate as JSON."""
    ops = history_from_records(correct_history(random.Random(SEED)))
    seconds = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = check_linearizability(ops)
        seconds.append(time.perf_counter() - started)
        if not result.ok:
            raise SystemExit(f"a correct history was judged not linearizable:\n{result}")
    median = statistics.median(seconds)
    print(
        json.dumps(
            {
                "benchmark": "linearizability_speed",
                "ops": len(ops),
                "keys": len(KEYS),
                "processes": PROCESSES,
                "info_ops": sum(op.outcome is Outcome.INFO for op in ops),
                "seed": SEED,
                "median_seconds": round(median, 4),
                "ops_per_second": round(len(ops) / median),
            }
        )
    )


if __name__ == "__main__":
    main()
