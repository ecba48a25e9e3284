"""Helpers for the `trio-raft` tests: every process started is killed by its pid at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TRIO_RAFT = [sys.executable, "-m", "raft.cli"]


class Processes:
    """Started `trio-raft` processes, and the node pids they report."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []
        self.pids: list[int] = []

    def start(self, *arguments: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*TRIO_RAFT, *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=cwd,
        )
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        # The node pids are the children of a `trio-raft cluster`: while it runs they are its
        # unreaped children (their pids cannot be reused); once it exited it reaped them.
        if any(process.poll() is None for process in self.started):
            for pid in self.pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture
def processes() -> Iterator[Processes]:
    tracked = Processes()
    try:
        yield tracked
    finally:
        tracked.kill_all()


def run(*arguments: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run one `trio-raft` command to completion."""
    return subprocess.run(
        [*TRIO_RAFT, *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )
