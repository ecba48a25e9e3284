"""The client subcommands: `kv`, `status`, `member`."""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

from raft.cli._client import CliError, call_leader, parse_servers, status_of


def _value(text: str) -> Any:
    """VALUE as JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _session() -> tuple[int, int]:
    """A fresh client session (id, sequence number) for one write."""
    return random.SystemRandom().getrandbits(62) + 1, 1


async def run_kv(arguments: argparse.Namespace) -> int:
    servers = parse_servers(arguments.server)
    timeout = arguments.timeout
    if arguments.kv_command == "get":
        value = await call_leader(
            servers, "get", [arguments.key, arguments.consistency], timeout=timeout
        )
        if value is None:
            raise CliError(f"{arguments.key!r}: no such key")
        print(json.dumps(value))
        return 0
    client_id, seq = _session()
    if arguments.kv_command == "put":
        args = [arguments.key, _value(arguments.value), client_id, seq]
        ok, _previous = await call_leader(servers, "put", args, timeout=timeout)
    else:
        ok, _previous = await call_leader(
            servers, "del", [arguments.key, client_id, seq], timeout=timeout
        )
    if not ok:
        raise CliError(f"{arguments.kv_command} {arguments.key!r} was refused")
    print("OK")
    return 0


async def run_status(arguments: argparse.Namespace) -> int:
    answered = 0
    for host, port in parse_servers(arguments.server):
        info = await status_of((host, port), timeout=arguments.timeout)
        line = {"server": f"{host}:{port}", **(info or {"error": "no answer"})}
        answered += info is not None
        print(json.dumps(line))
    return 0 if answered else 1


async def run_member(arguments: argparse.Namespace) -> int:
    address = None
    if arguments.member_command == "add":
        if arguments.address is None:
            raise ValueError("member add needs --address HOST:PORT (the new node's raft address)")
        address = list(parse_servers(arguments.address)[0])
    await call_leader(
        parse_servers(arguments.server),
        "member",
        [arguments.member_command, arguments.id, address],
        timeout=arguments.timeout,
    )
    print("OK")
    return 0
