"""The simulator's checks across snapshots (paper §7): the monitor and log matching hold on
compacted logs, and fail on a rollback, on differing snapshots and on compacted mismatches; the
`snapshot` nemesis makes nodes compact and install snapshots in chunks."""

from __future__ import annotations

import pytest

from raft import Entry, InstallSnapshot, Membership, Message, SnapshotMetadata
from sim import Cluster
from sim._invariants import log_matching
from sim._monitor import Monitor
from sim._nemesis import NEMESES, parse_nemeses
from sim._network import Network
from sim._run import RunOptions, run_simulation
from tests.builders import make_cluster

MEMBERS = Membership((1, 2, 3))


def monitored_cluster() -> tuple[Monitor, Cluster]:
    cluster = make_cluster(3, seed=0)
    monitor = Monitor()
    monitor.attach(cluster)
    return monitor, cluster


def applied_everywhere(monitor: Monitor, count: int) -> None:
    for index in range(1, count + 1):
        monitor.on_apply(1, Entry(1, index, b"%d" % index), None)


def test_monitor_accepts_snapshots_taken_and_installed_in_order() -> None:
    monitor, _ = monitored_cluster()
    applied_everywhere(monitor, 6)
    monitor.on_snapshot(1, SnapshotMetadata(5, 1, MEMBERS), b"state@5", 5)
    monitor.on_snapshot(2, SnapshotMetadata(5, 1, MEMBERS), b"state@5", 2)
    assert monitor.violations == []


def test_monitor_catches_a_snapshot_installed_over_newer_state() -> None:
    monitor, _ = monitored_cluster()
    applied_everywhere(monitor, 9)
    monitor.on_snapshot(2, SnapshotMetadata(5, 1, MEMBERS), b"state@5", 9)
    assert [v.property for v in monitor.violations] == ["state machine safety"]
    assert "rollback" in monitor.violations[0].detail


def test_monitor_catches_two_different_snapshots_of_one_index() -> None:
    monitor, _ = monitored_cluster()
    applied_everywhere(monitor, 6)
    monitor.on_snapshot(1, SnapshotMetadata(5, 1, MEMBERS), b"state@5", 5)
    monitor.on_snapshot(3, SnapshotMetadata(5, 1, MEMBERS), b"other", 5)
    assert [v.property for v in monitor.violations] == ["state machine safety"]
    assert "differs" in monitor.violations[0].detail


def test_monitor_catches_a_snapshot_of_another_term_than_was_applied() -> None:
    monitor, _ = monitored_cluster()
    applied_everywhere(monitor, 6)
    monitor.on_snapshot(1, SnapshotMetadata(5, 2, MEMBERS), b"state@5", 5)
    assert [v.property for v in monitor.violations] == ["state machine safety"]


def log(first: int, *terms: int) -> list[Entry]:
    return [Entry(term, index, b"%d-%d" % (index, term)) for index, term in enumerate(terms, first)]


def test_log_matching_compares_compacted_logs_on_the_indexes_both_hold() -> None:
    assert log_matching({1: log(1, 1, 1, 2, 3), 2: log(3, 2, 4, 4), 3: []}) is None
    forged = [Entry(2, 3, b"forged"), *log(4, 3)]
    violation = log_matching({1: log(1, 1, 1, 2, 3), 2: forged})
    assert violation is not None and "index 3" in violation.detail


def test_the_snapshot_nemesis_is_part_of_all() -> None:
    assert "snapshot" in NEMESES
    assert "snapshot" in parse_nemeses("all")


@pytest.mark.parametrize("seed", range(3))
def test_runs_with_the_snapshot_nemesis_hold_every_property(seed: int) -> None:
    result = run_simulation(seed, RunOptions(nemesis="snapshot", duration=10))
    assert result.ok, f"{result.violations} — replay: {result.replay_command()}"
    assert any(fault.startswith("snapshot") for fault in result.faults)


def test_the_snapshot_nemesis_makes_lagging_nodes_install_snapshots_in_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installs: list[int] = []
    later_chunks: list[int] = []
    check = Monitor.on_snapshot
    send = Network.send

    def on_snapshot(
        self: Monitor, node_id: int, metadata: SnapshotMetadata, data: bytes, applied: int
    ) -> None:
        if applied < metadata.index:
            installs.append(node_id)
        check(self, node_id, metadata, data, applied)

    def counting_send(self: Network, message: Message) -> list[int]:
        if isinstance(message, InstallSnapshot) and message.offset > 0:
            later_chunks.append(message.offset)
        return send(self, message)

    monkeypatch.setattr(Monitor, "on_snapshot", on_snapshot)
    monkeypatch.setattr(Network, "send", counting_send)
    result = run_simulation(1, RunOptions(nemesis="snapshot"))

    assert result.ok
    assert installs and later_chunks
