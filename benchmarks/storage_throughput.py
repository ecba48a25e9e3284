"""Throughput of FileStorage with real fsync: one `save` per simulated `Ready` of B 16-byte
entries, B in 1, 16, 256.

Two modes per batch size: `append` (entries only: one fsync of the log per Ready, as a
follower's Ready often is) and `save` (entries plus a hard state whose commit index moved,
as a leader's is: the log fsync plus the state file's atomic replacement). First a line with
the cost of one bare fsync on the same disk, for scale. Prints one JSON line per case,
medians of `--repeat` runs of `--seconds` each:

    {"mode": "append", "batch": B, "entries_per_s": ..., "readies_per_s": ...,
     "fsyncs_per_s": ..., "fsyncs_per_ready": ...}

Usage: python benchmarks/storage_throughput.py [--repeat 5] [--seconds 1] [--dir PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from raft import Entry, FileStorage, HardState

COMMAND = b"0123456789abcdef"
BATCHES = (1, 16, 256)


class FsyncCounter:
    """Counts the fsyncs made while installed in place of `os.fsync`."""

    def __init__(self) -> None:
        self.count = 0
        self._real = os.fsync

    def __call__(self, fd: int) -> None:
        self.count += 1
        self._real(fd)

    def install(self) -> None:
        os.fsync = self

    def remove(self) -> None:
        os.fsync = self._real


def fsync_ms(directory: str, rounds: int = 50) -> float:
    """The median time of one append-and-fsync of 16 bytes, in milliseconds."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    times = []
    try:
        for _ in range(rounds):
            os.write(fd, COMMAND)
            start = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(times) * 1000


def run(
    directory: str, mode: str, batch: int, seconds: float, counter: FsyncCounter
) -> dict[str, float]:
    """Readies of `batch` entries for `seconds`; rates per second."""
    with tempfile.TemporaryDirectory(dir=directory) as node_dir, FileStorage(node_dir) as storage:
        persist: Callable[[HardState, list[Entry]], None] = (
            storage.save if mode == "save" else lambda _, entries: storage.append(entries)
        )
        readies = 0
        index = 1
        counter.count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            entries = [Entry(1, i, COMMAND) for i in range(index, index + batch)]
            index += batch
            persist(HardState(1, 1, index - 1), entries)
            readies += 1
        elapsed = time.perf_counter() - start
        return {
            "entries_per_s": readies * batch / elapsed,
            "readies_per_s": readies / elapsed,
            "fsyncs_per_s": counter.count / elapsed,
            "fsyncs_per_ready": counter.count / readies,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to put the storage (default: $TMPDIR)")
    args = parser.parse_args()
    directory = args.dir or tempfile.gettempdir()
    print(json.dumps({"fsync_ms": round(fsync_ms(directory), 3)}), flush=True)
    counter = FsyncCounter()
    counter.install()
    cases = [(mode, batch) for mode in ("append", "save") for batch in BATCHES]
    runs: dict[tuple[str, int], list[dict[str, float]]] = {case: [] for case in cases}
    try:
        # Round-robin over the cases, so a disk that speeds up or slows down mid-run (a shared
        # one does) weighs on every case alike.
        for _ in range(args.repeat):
            for mode, batch in cases:
                runs[mode, batch].append(run(directory, mode, batch, args.seconds, counter))
    finally:
        counter.remove()
    for (mode, batch), results in runs.items():
        line: dict[str, object] = {"mode": mode, "batch": batch}
        for key in results[0]:
            line[key] = round(statistics.median(r[key] for r in results), 2)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
