"""One simulated run end to end: determinism, verdicts, options, sweeps, and the monitor's
checks failing on violating inputs."""

from __future__ import annotations

import pytest

from raft import Entry, Role
from sim import Cluster
from sim._history import history_from_records
from sim._monitor import Monitor
from sim._nemesis import NEMESES
from sim._run import RunOptions, run_simulation
from sim._sweep import sweep
from tests.builders import make_cluster

SHORT = RunOptions(duration=10)


def test_same_seed_gives_the_same_trace_and_history() -> None:
    first, second = run_simulation(5, SHORT), run_simulation(5, SHORT)
    assert first.trace_sha256 == second.trace_sha256
    assert first.timeline is not None and second.timeline is not None
    assert first.timeline.history == second.timeline.history
    assert run_simulation(6, SHORT).trace_sha256 != first.trace_sha256


@pytest.mark.parametrize("seed", range(4))
def test_default_scenario_holds_every_property(seed: int) -> None:
    result = run_simulation(seed, SHORT)
    assert result.ok, f"{result.violations} — replay: {result.replay_command()}"
    assert result.ops > 100
    assert result.elections >= 1
    assert result.timeline is not None
    history_from_records(result.timeline.history)  # well-formed


@pytest.mark.parametrize("kind", NEMESES)
def test_each_nemesis_alone_holds_every_property(kind: str) -> None:
    result = run_simulation(3, RunOptions(nemesis=kind, duration=12))
    assert result.ok, f"{result.violations} — replay: {result.replay_command()}"
    assert result.faults and all(fault.startswith(kind) for fault in result.faults)
    assert result.ops > 100


def test_transfer_nemesis_moves_leadership_while_clients_go_on() -> None:
    """Thesis §3.10: each transfer elects the target in a new term; proposals refused during
    a transfer come back once it completes or is abandoned."""
    calm = run_simulation(1, RunOptions(nemesis="none", duration=12))
    moved = run_simulation(1, RunOptions(nemesis="transfer", duration=12))
    assert moved.ok, moved.replay_command()
    assert moved.elections >= calm.elections + 5
    assert moved.ops > calm.ops // 2


def test_local_reads_are_caught_as_not_linearizable() -> None:
    """--read-mode local reads whatever a replica holds: the checker must catch a stale read."""
    found = [
        seed
        for seed in range(12)
        if any(
            v.property == "linearizability"
            for v in run_simulation(seed, RunOptions(duration=10, read_mode="local")).violations
        )
    ]
    assert found, "no stale read caught in 12 seeds of local reads"


def test_replay_command_names_every_option() -> None:
    result = run_simulation(2, RunOptions(duration=3, nodes=3, nemesis="kill,pause", clients=4))
    assert result.replay_command() == (
        "python -m sim run --seed 2 --nodes 3 --nemesis kill,pause --duration 3 "
        "--read-mode index --clients 4 --max-entries-per-message 4096 "
        "--snapshot-chunk-bytes 16"
    )
    assert all(fault.split()[0] in ("kill", "pause") for fault in result.faults)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"nemesis": "earthquake"}, "earthquake"),
        ({"nodes": 0}, "--nodes"),
        ({"duration": -1}, "--duration"),
        ({"read_mode": "psychic"}, "read_mode"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RunOptions(**options)  # type: ignore[arg-type]


def test_sweep_adds_up_runs_and_is_the_same_in_parallel() -> None:
    options = RunOptions(duration=4)
    serial = sweep(range(3), options, jobs=1)
    parallel = sweep(range(3), options, jobs=2)
    assert serial["runs"] == 3 and serial["violations"] == []
    for field in ("ops", "elections", "events", "max_recovery_s", "sim_seconds"):
        assert serial[field] == parallel[field], field
    assert serial["sim_seconds"] == 12


def test_sweep_reports_every_violating_seed() -> None:
    report = sweep(range(8), RunOptions(duration=10, read_mode="local"), jobs=2)
    seeds = {v["seed"] for v in report["violations"]}
    assert seeds == set(report["violating_seeds"]) and seeds
    assert all("--read-mode local" in v["replay"] for v in report["violations"])


# ---- the monitor fails on violating inputs ------------------------------------------------


def monitored_cluster() -> tuple[Monitor, Cluster]:
    cluster = make_cluster(3, seed=0)
    monitor = Monitor()
    monitor.attach(cluster)
    return monitor, cluster


def test_monitor_catches_two_commands_at_one_index() -> None:
    monitor, _ = monitored_cluster()
    monitor.on_apply(1, Entry(1, 1, b"a"), None)
    monitor.on_apply(2, Entry(1, 1, b"b"), None)
    assert [v.property for v in monitor.violations] == ["state machine safety"]


def test_monitor_catches_a_leader_missing_a_committed_entry() -> None:
    monitor, cluster = monitored_cluster()
    monitor.on_apply(1, Entry(1, 1, b"committed"), None)
    cluster.leaders_by_term[2] = {3}
    monitor.on_leader(3, 2)  # node 3's log is empty
    assert [v.property for v in monitor.violations] == ["leader completeness"]


def test_monitor_catches_two_leaders_in_a_term() -> None:
    monitor, cluster = monitored_cluster()
    cluster.leaders_by_term[4] = {1, 2}
    monitor.on_leader(2, 4)
    assert "election safety" in [v.property for v in monitor.violations]


def test_monitor_catches_a_leader_that_rewrote_its_log() -> None:
    monitor, cluster = monitored_cluster()
    cluster.replicas[1].overwrites.append((Role.LEADER, 3, 2))
    monitor.finish([])
    assert [v.property for v in monitor.violations] == ["leader append-only"]


def test_monitor_catches_an_acknowledged_write_that_is_not_durable() -> None:
    monitor, _ = monitored_cluster()
    monitor.finish([(7, 2)])  # nobody stored index 7
    assert [v.property for v in monitor.violations] == ["durability"]


def test_lease_reads_break_when_a_slowed_leader_is_cut_off() -> None:
    """Thesis §6.4.1: a lease assumes bounded clock drift. A leader whose clock runs 4x slow,
    then cut off, serves reads from a lease its followers no longer honour; ReadIndex, which
    confirms leadership with a heartbeat round, stays linearizable in the very same run."""
    scenario = {"nemesis": "clock-skew,isolate-leader", "duration": 30}
    lease = run_simulation(4, RunOptions(read_mode="lease", **scenario))  # type: ignore[arg-type]
    assert [v.property for v in lease.violations] == ["linearizability"]
    index = run_simulation(4, RunOptions(read_mode="index", **scenario))  # type: ignore[arg-type]
    assert index.ok, index.violations
