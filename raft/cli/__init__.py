"""The `trio-raft` command: run nodes and clusters, and talk to them (docs/cli.md).

    trio-raft cluster --nodes 3                  # a local cluster; Ctrl-C stops it
    trio-raft serve --config node.toml           # one node from a TOML file
    trio-raft kv put KEY VALUE --server HOST:PORT[,HOST:PORT...]
    trio-raft kv get KEY --server ...            # also: kv del KEY
    trio-raft status --server ...
    trio-raft member add|remove|promote ID [--address HOST:PORT] --server ...

Exit status: 0 on success, 1 when the cluster refused or did not answer, 2 for a usage or
config-file error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import trio

from raft.cli._client import CliError
from raft.cli._config import ConfigError, load_config

SERVER_ENV = "TRIO_RAFT_SERVER"


def _add_server(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get(SERVER_ENV)
    parser.add_argument(
        "--server",
        default=default,
        required=default is None,
        help=f"HOST:PORT[,HOST:PORT...] client addresses (default: ${SERVER_ENV})",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")


def build_parser() -> argparse.ArgumentParser:
    """The `trio-raft` argument parser."""
    parser = argparse.ArgumentParser(
        prog="trio-raft",
        description="Run trio-raft key-value nodes and talk to them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cluster = commands.add_parser("cluster", help="run a local cluster of node processes")
    cluster.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    cluster.add_argument("--dir", help="storage directory (default: a temporary one, removed)")
    cluster.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="node N gets raft port BASE+2(N-1), client port one above, HTTP port BASE+100+N-1"
        " (0: kernel-chosen)",
    )
    cluster.add_argument(
        "--http",
        action="store_true",
        help="each node also serves the HTTP API (needs the http extra: hypercorn)",
    )
    cluster.add_argument(
        "--lease-reads", action="store_true", help="allow --consistency lease reads"
    )
    cluster.add_argument("--tick", type=float, default=0.05, help="seconds per tick")
    cluster.add_argument("--election-ticks", type=int, default=10, help="ticks per election")
    cluster.add_argument("--request-timeout", type=float, default=2.0, help="seconds")

    serve = commands.add_parser("serve", help="run one node from a TOML config file")
    serve.add_argument("--config", required=True, type=Path, help="the node's TOML file")

    kv = commands.add_parser("kv", help="read and write keys")
    kv_commands = kv.add_subparsers(dest="kv_command", required=True, metavar="OP")
    put = kv_commands.add_parser("put", help="set KEY to VALUE (JSON, or else a string)")
    put.add_argument("key")
    put.add_argument("value")
    _add_server(put)
    get = kv_commands.add_parser("get", help="print KEY's value as JSON")
    get.add_argument("key")
    get.add_argument(
        "--consistency", choices=("linearizable", "lease", "stale"), default="linearizable"
    )
    _add_server(get)
    delete = kv_commands.add_parser("del", help="delete KEY")
    delete.add_argument("key")
    _add_server(delete)

    status = commands.add_parser("status", help="each server's role, term, leader, indexes")
    _add_server(status)

    member = commands.add_parser("member", help="change the cluster's membership")
    member_commands = member.add_subparsers(dest="member_command", required=True, metavar="OP")
    for name, text in (
        ("add", "add node ID as a learner (non-voting) at --address"),
        ("promote", "make learner ID a voter"),
        ("remove", "remove voter or learner ID"),
    ):
        sub = member_commands.add_parser(name, help=text)
        sub.add_argument("id", type=int)
        if name == "add":
            sub.add_argument("--address", help="the new node's raft address HOST:PORT")
        _add_server(sub)
    return parser


def _serve(config: Path) -> int:
    from raft.runtime.node import run_node  # noqa: PLC0415

    arguments = load_config(config)
    trio.run(run_node, arguments)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `trio-raft` console script."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    from raft.cli._cluster import run_cluster  # noqa: PLC0415
    from raft.cli._commands import run_kv, run_member, run_status  # noqa: PLC0415

    runners: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
        "cluster": run_cluster,
        "kv": run_kv,
        "status": run_status,
        "member": run_member,
    }
    try:
        if arguments.command == "serve":
            code = _serve(arguments.config)
        else:
            code = trio.run(partial(runners[arguments.command], arguments))
    except ConfigError as error:
        parser.exit(2, f"trio-raft: error: {error}\n")
    except ValueError as error:  # a malformed --server or --address
        parser.exit(2, f"trio-raft: error: {error}\n")
    except BrokenPipeError:  # `trio-raft status | head -1`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit flush does not complain
        code = 0
    except (CliError, RuntimeError, OSError) as error:
        print(f"trio-raft: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
