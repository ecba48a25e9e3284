"""`python -m sim demo`: the story holds on every seed and replays byte for byte."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim._cli import main
from sim._demo import run_demo


@pytest.mark.parametrize("seed", range(1, 11))
def test_demo_converges_after_the_partition_heals(seed: int, tmp_path: Path) -> None:
    out = io.StringIO()
    timeline = tmp_path / "demo.html"
    assert run_demo(seed, out, timeline), f"seed {seed}:\n{out.getvalue()}"
    story = out.getvalue()
    assert "wins the election: leader of term 1" in story
    assert "(check-quorum)" in story, f"old leader never stepped down (seed {seed})"
    assert story.count("wins the election") >= 2, f"majority elected no new leader (seed {seed})"
    assert "logs identical on all 5 nodes: yes; state machines identical: yes" in story
    assert "verdict: every property held" in story
    assert timeline.read_text().startswith("<!DOCTYPE html>")


def test_demo_replays_identically_for_one_seed() -> None:
    first, second = io.StringIO(), io.StringIO()
    run_demo(3, first)
    run_demo(3, second)
    assert first.getvalue() == second.getvalue()


def test_demo_runs_as_a_module_and_names_its_timeline(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sim", "demo"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "logs identical on all 5 nodes: yes" in result.stdout
    named = result.stdout.splitlines()[-1].removeprefix("timeline: ")
    assert Path(named) == tmp_path / "trio-raft-demo-seed1.html"
    assert Path(named).is_file()


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
