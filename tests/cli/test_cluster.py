"""`trio-raft cluster` as a subprocess: real node processes on kernel-chosen ports, the client
subcommands against them, and SIGINT / SIGTERM stopping every node process."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

from tests.cli.conftest import Processes, run


def _wait_for_leader(
    processes: Processes, *extra: str, raft: dict[int, str] | None = None
) -> tuple[object, dict[int, int], str]:
    process = processes.start("cluster", "--tick", "0.02", *extra)
    watchdog = threading.Timer(30.0, process.kill)
    watchdog.start()
    pids: dict[int, int] = {}
    servers = ""
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if match := re.match(r"node (\d+): raft (\S+) client \S+ .*pid (\d+)", line):
                pids[int(match[1])] = int(match[3])
                processes.pids.append(int(match[3]))
                if raft is not None:
                    raft[int(match[1])] = match[2]
            elif line.startswith("servers: "):
                servers = line.split()[1]
            elif line.startswith("leader: "):
                break
        else:
            raise AssertionError(f"the cluster stopped: {process.communicate()}")
    finally:
        watchdog.cancel()
    return process, pids, servers


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _stop(process: object, pids: dict[int, int], signum: int) -> None:
    process.send_signal(signum)  # type: ignore[attr-defined]
    out, err = process.communicate(timeout=10)  # type: ignore[attr-defined]
    assert process.returncode == 0, err  # type: ignore[attr-defined]
    assert f"stopped ({signal.Signals(signum).name})" in out
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids.values() if not _gone(pid)] == []


def test_cluster_kv_status_member_and_sigint(processes: Processes) -> None:
    raft: dict[int, str] = {}
    process, pids, servers = _wait_for_leader(processes, raft=raft)
    assert sorted(pids) == [1, 2, 3]
    addresses = servers.split(",")
    assert len(addresses) == 3
    status = [json.loads(line) for line in run("status", "--server", servers).stdout.splitlines()]
    leader = next(s["id"] for s in status if s["role"] == "LEADER")
    # followers first: the command must follow their NotLeader hints to the leader
    by_id = {s["id"]: s["server"] for s in status}
    followers_first = ",".join([by_id[i] for i in sorted(by_id) if i != leader] + [by_id[leader]])
    assert (
        run("kv", "put", "greeting", '{"hello": [1, 2]}', "--server", followers_first).stdout
        == "OK\n"
    )
    got = run("kv", "get", "greeting", "--server", followers_first)
    assert json.loads(got.stdout) == {"hello": [1, 2]}
    assert run("kv", "put", "plain", "just text", "--server", servers).returncode == 0
    assert run("kv", "get", "plain", "--server", servers).stdout == '"just text"\n'
    assert run("kv", "del", "plain", "--server", servers).returncode == 0
    missing = run("kv", "get", "plain", "--server", servers)
    assert missing.returncode == 1
    assert "no such key" in missing.stderr
    assert "Traceback" not in missing.stderr

    follower = next(i for i in sorted(by_id) if i != leader)
    assert run("member", "remove", str(follower), "--server", servers).returncode == 0
    leader_status = json.loads(run("status", "--server", by_id[leader]).stdout)
    assert follower not in leader_status["voters"]
    no_address = run("member", "add", str(follower), "--server", servers)
    assert no_address.returncode == 2  # --address is required to add
    assert "--address" in no_address.stderr
    added = run("member", "add", str(follower), "--address", raft[follower], "--server", servers)
    assert added.returncode == 0, added.stderr
    assert follower in json.loads(run("status", "--server", by_id[leader]).stdout)["learners"]
    assert run("member", "promote", str(follower), "--server", servers).returncode == 0
    assert follower in json.loads(run("status", "--server", by_id[leader]).stdout)["voters"]

    _stop(process, pids, signal.SIGINT)


def test_sigterm_stops_every_node(processes: Processes) -> None:
    process, pids, _ = _wait_for_leader(processes, "--nodes", "2")
    assert len(pids) == 2
    _stop(process, pids, signal.SIGTERM)


def test_usage_errors_exit_2() -> None:
    bad = run("kv", "get", "k", "--server", "nonsense")
    assert bad.returncode == 2
    assert "HOST:PORT" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert run("frobnicate").returncode == 2
