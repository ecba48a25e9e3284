"""`trio-raft serve --config node.toml`: a one-node cluster from a TOML file, and config files
that are wrong in one field each: exit status 2, the field, its line, what is allowed."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from raft.testing.processes import free_port
from tests.cli.conftest import Processes, run

GOOD = """\
id = 1
dir = "data"
secret = "a shared secret of the cluster"
client_port = {client}
tick = 0.02
lease_reads = true
http_port = {http}

[peers]
1 = "127.0.0.1:{raft}"

[http_peers]
1 = "127.0.0.1:{http}"
"""


def test_serve_runs_a_node_from_a_config_file(tmp_path: Path, processes: Processes) -> None:
    pytest.importorskip("hypercorn")
    client, raft, http = free_port(), free_port(), free_port()
    config = tmp_path / "node.toml"
    config.write_text(GOOD.format(client=client, raft=raft, http=http))
    process = processes.start("serve", "--config", str(config))
    watchdog = threading.Timer(20.0, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        assert process.stdout.readline().split() == ["READY", str(client), str(raft), str(http)]
    finally:
        watchdog.cancel()
    server = f"127.0.0.1:{client}"
    put = run("kv", "put", "k", "42", "--server", server)
    assert put.returncode == 0, put.stderr
    assert json.loads(run("kv", "get", "k", "--server", server).stdout) == 42
    lease = run("kv", "get", "k", "--consistency", "lease", "--server", server)
    assert lease.stdout == "42\n", lease.stderr
    assert (tmp_path / "data").is_dir()  # relative to the config file
    status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http}/v1/status").read())
    assert status["role"] == "LEADER"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id = 1\ndir = 'd'\nsecret = '0123456789abcdef'\nport = 3\n[peers]\n1 = 'h:1'\n",
            ["'port'", "line 4", "allowed fields: id, dir"],
        ),
        (
            "id = 'one'\ndir = 'd'\nsecret = '0123456789abcdef'\n[peers]\n1 = 'h:1'\n",
            ["'id'", "line 1", "positive integer"],
        ),
        (
            "id = 1\ndir = 'd'\nsecret = '0123456789abcdef'\n[peers]\n1 = 'h:1'\n2 = 'nohost'\n",
            ["'peers.2'", "line 6", "host:port"],
        ),
        (
            "id = 3\ndir = 'd'\nsecret = '0123456789abcdef'\n[peers]\n1 = 'h:1'\n",
            ["'id'", "line 1", "not one of the peers"],
        ),
        (
            "id = 1\ndir = 'd'\nsecret = '0123456789abcdef'\ntick = -1\n[peers]\n1 = 'h:1'\n",
            ["'tick'", "line 4", "> 0"],
        ),
        (
            "id = 1\ndir = 'd'\nsecret = '0123456789abcdef'\nclient_port = 70000\n"
            "[peers]\n1 = 'h:1'\n",
            ["'client_port'", "line 4", "0..65535"],
        ),
        ("id = 1\nsecret = '0123456789abcdef'\n[peers]\n1 = 'h:1'\n", ["'dir' is missing"]),
        (
            "id = 1\ndir = 'd'\nsecret = '0123456789abcdef'\n[peers]\n1 = 'h:1'\n"
            "[http_peers]\n1 = 'h:x'\n",
            ["'http_peers.1'", "line 7", "host:port"],
        ),
        ("id = 1\ndir = 'd'\n[peers]\n1 = 'h:1'\n", ["'secret' and 'secret_file'"]),
        (
            "id = 1\ndir = 'd'\nsecret = 's'\n[peers]\n1 = 'h:1'\n",
            ["'secret'", "line 3", "16 bytes"],
        ),
        ("id = 1\ndir = = 'd'\n", ["not valid TOML", "line 2"]),
    ],
)
def test_a_bad_config_names_the_field_and_exits_2(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(text)
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for part in expected:
        assert part in result.stderr, result.stderr


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run("serve", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "cannot read the config file" in result.stderr
