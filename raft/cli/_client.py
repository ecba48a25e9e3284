"""Calls to a node's client protocol (`raft.runtime.node`) for the `trio-raft` subcommands:
a list of servers, tried in turn, following the leader hint a follower gives."""

from __future__ import annotations

from typing import Any

import trio

from raft.testing.processes import ClientError, NodeClient


class CliError(Exception):
    """A failure the command reports on stderr (exit status 1), with no traceback."""


def parse_servers(text: str) -> list[tuple[str, int]]:
    """``HOST:PORT[,HOST:PORT...]`` as (host, port) pairs; `ValueError` naming the bad one."""
    servers = []
    for part in text.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not HOST:PORT (a port in 1..65535)")
        servers.append((host, int(port)))
    return servers


async def _call_one(
    server: tuple[str, int], op: str, args: list[Any], timeout: float
) -> tuple[str, Any]:
    client = NodeClient(server[1], host=server[0])
    try:
        return await client.call(op, args, timeout=timeout)
    finally:
        await client.aclose()


async def status_of(server: tuple[str, int], timeout: float = 2.0) -> dict[str, Any] | None:
    """The node's status, or None when it does not answer."""
    try:
        status, value = await _call_one(server, "status", [], timeout)
    except ClientError:
        return None
    return value if status == "ok" else None


async def call_leader(
    servers: list[tuple[str, int]], op: str, args: list[Any], *, timeout: float = 5.0
) -> Any:
    """Send one request, to the leader: try the servers in turn, and when one answers
    ``not_leader`` with a leader's id, go to the listed server that is that node. The value of
    the "ok" answer; `CliError` once `timeout` passes or a node answers with an error."""
    ids: dict[int, tuple[str, int]] = {}  # node id -> server, learnt from status calls
    order = list(servers)
    last = "no server answered"
    with trio.move_on_after(timeout):
        while True:
            hinted = None
            for server in order:
                try:
                    status, value = await _call_one(server, op, args, timeout=timeout)
                except ClientError as error:
                    last = f"{server[0]}:{server[1]}: {error}"
                    continue
                if status == "ok":
                    return value
                last = f"{server[0]}:{server[1]}: {status}" + (f" ({value})" if value else "")
                if status == "not_leader":
                    if value is not None and not ids:
                        for candidate in servers:
                            info = await status_of(candidate)
                            if info is not None:
                                ids[info["id"]] = candidate
                    hinted = ids.get(value) if value is not None else None
                    if value is not None and hinted is None and len(ids) == len(servers):
                        raise CliError(
                            f"{last}: node {value} leads; add its client address to --server"
                        )
                    if hinted is not None and hinted != server:
                        break
                    continue
                if status in ("timeout", "overloaded"):
                    continue
                raise CliError(last)
            if hinted is not None:
                order = [hinted, *(s for s in servers if s != hinted)]
                await trio.sleep(0.05)  # the hint may be stale: do not spin
            else:
                await trio.sleep(0.2)  # an election may be under way
    raise CliError(f"no leader answered within {timeout:g}s (last: {last})")
