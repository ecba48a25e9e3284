"""`trio-raft serve --config node.toml`: the node's TOML file, checked field by field.

id = 1                      # this node's id, one of the [peers]
dir = "data/node-1"         # storage directory (relative paths: to the config file)
secret = "change me: 16+ bytes" # or secret_file = "secret": the shared HMAC secret
client_port = 7001          # client protocol on 127.0.0.1 (0: the kernel chooses)
cluster_id = "kv"           # optional; must match on every node
tick = 0.05                 # optional: seconds per tick
election_ticks = 10         # optional: ticks before an election
request_timeout = 2.0       # optional: seconds
snapshot_entries = 10000    # optional: compact every N applied entries (0: never)
lease_reads = false         # optional: allow 'lease' reads (clocks must drift little)
http_port = 8001            # optional: serve the HTTP API (needs the http extra)

[peers]                     # every node, this one too: id = "host:port" (raft address)
1 = "127.0.0.1:7101"
2 = "127.0.0.1:7102"
3 = "127.0.0.1:7103"

[http_peers]                # optional: each node's HTTP address, for redirects to the leader
1 = "127.0.0.1:8001"
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path
from typing import Any

from raft.cli._client import CliError

_FIELDS: dict[str, str] = {
    "id": "a positive integer, one of the ids in [peers]",
    "dir": "a directory path (string)",
    "secret": "a string of at least 16 bytes (give secret or secret_file, not both)",
    "secret_file": "a path to a file holding the secret, at least 16 bytes (or give secret)",
    "client_port": "an integer port in 0..65535 (0: the kernel chooses)",
    "cluster_id": "a non-empty string",
    "tick": "a number of seconds > 0",
    "election_ticks": "an integer >= 2",
    "request_timeout": "a number of seconds > 0",
    "snapshot_entries": "an integer >= 0 (0: never compact)",
    "peers": 'a table of id = "host:port", every node, this one too',
    "lease_reads": "true or false (default false): allow 'lease' reads",
    "http_port": "an integer port in 0..65535: serve the HTTP API (the http extra)",
    "http_host": "the HTTP API's host (default 127.0.0.1)",
    "http_peers": 'a table of id = "host:port", every node\'s HTTP address (for redirects)',
}
_REQUIRED = ("id", "dir", "peers")
MIN_SECRET_BYTES = 16
"""What `TcpTransport` accepts as a shared secret."""


class ConfigError(CliError):
    """A config file the node cannot run with (exit status 2)."""


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """The line (1-based) where `key` is assigned, in `table` when given; best effort."""
    current: str | None = None
    pattern = re.compile(rf'^\s*["\']?{re.escape(key)}["\']?\s*=')
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1)
            if table is None and key == current:
                return number
            continue
        if current == table and pattern.match(line):
            return number
    return None


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, field: str, problem: str, table: str | None = None) -> ConfigError:
        line = _line_of(self.text, field.rpartition(".")[2], table)
        where = f"{self.path}, line {line}" if line else str(self.path)
        allowed = _FIELDS.get(field.partition(".")[0], "")
        suffix = f"; allowed: {allowed}" if allowed else ""
        return ConfigError(f"{where}: field {field!r}: {problem}{suffix}")

    def integer(self, data: dict[str, Any], field: str, default: int | None, low: int) -> int:
        value = data.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"{value!r} is not an integer")
        if value < low:
            raise self.fail(field, f"{value} is below {low}")
        return value

    def number(self, data: dict[str, Any], field: str, default: float) -> float:
        value = data.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(field, f"{value!r} is not a number > 0")
        return float(value)

    def string(self, data: dict[str, Any], field: str, default: str | None = None) -> str:
        value = data.get(field, default)
        if not isinstance(value, str) or not value:
            raise self.fail(field, f"{value!r} is not a non-empty string")
        return value


def _address(checker: _Checker, field: str, value: object, table: str) -> tuple[str, int]:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
    raise checker.fail(field, f'{value!r} is not "host:port" (a port in 1..65535)', table)


def _peers(checker: _Checker, table: str, raw: dict[str, Any]) -> dict[int, tuple[str, int]]:
    peers: dict[int, tuple[str, int]] = {}
    for key, value in raw.items():
        if not key.isdigit() or int(key) < 1:
            raise checker.fail(f"{table}.{key}", "a key is a node id, an integer >= 1", table)
        peers[int(key)] = _address(checker, f"{table}.{key}", value, table)
    return peers


def _secret(checker: _Checker, data: dict[str, Any], base: Path) -> tuple[bytes, str | None]:
    """The shared secret, and the file it came from (None for `secret`)."""
    secret_file: str | None = None
    if ("secret" in data) == ("secret_file" in data):
        raise ConfigError(
            f"{checker.path}: give exactly one of the fields 'secret' and 'secret_file'"
        )
    if "secret" in data:
        secret = checker.string(data, "secret").encode()
    else:
        secret_file = str(base / checker.string(data, "secret_file"))
        try:
            secret = Path(secret_file).read_bytes().strip()
        except OSError as error:
            raise checker.fail("secret_file", f"cannot read it: {error}") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise checker.fail("secret_file", f"the secret in it is under {MIN_SECRET_BYTES} bytes")
    if "secret" in data and len(secret) < MIN_SECRET_BYTES:
        raise checker.fail("secret", f"the secret is under {MIN_SECRET_BYTES} bytes")
    return secret, secret_file


def load_config(path: Path) -> argparse.Namespace:
    """The arguments of `raft.runtime.node.run_node` from the TOML file at `path`;
    `ConfigError` naming the file, the field, its line where found, and what is allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    checker = _Checker(path, text)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise checker.fail(unknown[0], f"unknown field; allowed fields: {', '.join(_FIELDS)}")
    for field in _REQUIRED:
        if field not in data:
            raise ConfigError(f"{path}: field {field!r} is missing; allowed: {_FIELDS[field]}")
    node_id = checker.integer(data, "id", None, 1)
    raw_peers = data["peers"]
    if not isinstance(raw_peers, dict) or not raw_peers:
        raise checker.fail("peers", f"{raw_peers!r} is not a non-empty table")
    peers = _peers(checker, "peers", raw_peers)
    if node_id not in peers:
        raise checker.fail("id", f"{node_id} is not one of the peers {sorted(peers)}")
    base = path.parent
    secret, secret_file = _secret(checker, data, base)
    client_port = checker.integer(data, "client_port", 0, 0)
    if client_port > 65535:
        raise checker.fail("client_port", f"{client_port} is above 65535")
    http_port: int | None = None
    http_peers = ""
    if "http_port" in data:
        http_port = checker.integer(data, "http_port", 0, 0)
        if http_port > 65535:
            raise checker.fail("http_port", f"{http_port} is above 65535")
    raw_http = data.get("http_peers", {})
    if not isinstance(raw_http, dict):
        raise checker.fail("http_peers", f"{raw_http!r} is not a table")
    http = _peers(checker, "http_peers", raw_http)
    http_peers = ",".join(f"{i}={host}:{port}" for i, (host, port) in sorted(http.items()))
    lease_reads = data.get("lease_reads", False)
    if not isinstance(lease_reads, bool):
        raise checker.fail("lease_reads", f"{lease_reads!r} is not true or false")
    return argparse.Namespace(
        lease_reads=lease_reads,
        http_port=http_port,
        http_host=checker.string(data, "http_host", "127.0.0.1"),
        http_peers=http_peers,
        id=node_id,
        peers=",".join(f"{i}={host}:{port}" for i, (host, port) in sorted(peers.items())),
        dir=str(base / checker.string(data, "dir")),
        client_port=client_port,
        secret=secret,
        secret_file=secret_file,
        cluster_id=checker.string(data, "cluster_id", "kv"),
        tick=checker.number(data, "tick", 0.05),
        election_ticks=checker.integer(data, "election_ticks", 10, 2),
        request_timeout=checker.number(data, "request_timeout", 2.0),
        snapshot_entries=checker.integer(data, "snapshot_entries", 10000, 0),
    )
