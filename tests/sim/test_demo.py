"""`python -m sim demo`: the story holds on every seed and replays byte for byte."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from sim._cli import main
from sim._demo import run_demo


@pytest.mark.parametrize("seed", range(1, 11))
def test_demo_converges_after_the_partition_heals(seed: int) -> None:
    out = io.StringIO()
    assert run_demo(seed, out), f"seed {seed}:\n{out.getvalue()}"
    story = out.getvalue()
    assert "wins the election: leader of term 1" in story
    assert "(check-quorum)" in story, f"old leader never stepped down (seed {seed})"
    assert story.count("wins the election") >= 2, f"majority elected no new leader (seed {seed})"
    assert "logs identical on all 5 nodes: yes; state machines identical: yes" in story


def test_demo_replays_identically_for_one_seed() -> None:
    first, second = io.StringIO(), io.StringIO()
    run_demo(3, first)
    run_demo(3, second)
    assert first.getvalue() == second.getvalue()


def test_demo_runs_as_a_module_with_defaults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sim", "demo"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "logs identical on all 5 nodes: yes" in result.stdout


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
