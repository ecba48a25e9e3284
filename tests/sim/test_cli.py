"""`python -m sim run | sweep | check-history`: verdicts, JSON figures, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim._cli import main


def test_run_json_prints_the_figures_and_replays(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--seed", "3", "--duration", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] == 1 and report["violations"] == []
    assert len(report["trace_sha256"]) == 64
    assert report["replay"].startswith("python -m sim run --seed 3 ")


def test_run_writes_history_and_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history, timeline = tmp_path / "h.jsonl", tmp_path / "t.html"
    code = main(
        [
            "run",
            "--seed",
            "1",
            "--duration",
            "5",
            "--history",
            str(history),
            "--timeline",
            str(timeline),
        ]
    )
    assert code == 0
    assert "verdict: every property held" in capsys.readouterr().out
    assert main(["check-history", str(history)]) == 0
    assert timeline.read_text().startswith("<!DOCTYPE html>")


def test_local_reads_exit_with_status_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--seed", "1", "--read-mode", "local"]) == 1
    out = capsys.readouterr().out
    assert "verdict: VIOLATED" in out and "linearizability" in out


def test_sweep_json_counts_every_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--seeds", "3", "--jobs", "1", "--duration", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for field in (
        "runs",
        "violations",
        "ops",
        "elections",
        "max_recovery_s",
        "sim_seconds",
        "wall_seconds",
        "events",
    ):
        assert field in report, field
    assert report["runs"] == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--seed", "1", "--nemesis", "earthquake"],
        ["run", "--seed", "-4"],
        ["run"],
        ["sweep", "--seeds", "0"],
        ["run", "--seed", "1", "--read-mode", "psychic"],
    ],
)
def test_bad_arguments_exit_with_status_two(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
