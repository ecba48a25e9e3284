"""Real crashes: a child process appends and acknowledges, and is SIGKILLed at a random moment
(often in the middle of a write). Every acknowledged append, and the acknowledged commit index,
must be there when the directory is opened again, cycle after cycle."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from raft import Entry, FileStorage

WRITER = """
import sys
from raft import Entry, FileStorage, HardState

storage = FileStorage(sys.argv[1], segment_bytes=4096)
index = storage.last_index() + 1
size = 1
while True:
    entries = [Entry(1, i, b"%d" % i) for i in range(index, index + size)]
    storage.save(HardState(1, 1, index - 1), entries)
    print(index + size - 1, index - 1, flush=True)
    index += size
    size = size % 40 + 1
"""


def entry(index: int) -> Entry:
    return Entry(1, index, b"%d" % index)


def test_every_acknowledged_append_survives_sigkill(tmp_path: Path) -> None:
    rng = random.Random(6)
    acknowledged, committed = 0, 0
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        try:
            assert child.stdout is not None
            for _ in range(rng.randint(5, 60)):
                acknowledged, committed = map(int, child.stdout.readline().split())
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()

        with FileStorage(tmp_path, segment_bytes=4096) as storage:
            assert storage.last_index() >= acknowledged
            assert list(storage.entries(1, storage.last_index() + 1)) == [
                entry(index) for index in range(1, storage.last_index() + 1)
            ]
            assert storage.initial_state().commit >= committed
    assert len(list(tmp_path.glob("log-*.seg"))) > 1
