"""The `python -m sim` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sim._demo import run_demo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim",
        description="Deterministic Raft simulator for trio-raft.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="a 5-node cluster through a leader partition and back, told as a story"
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of the run (default 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return 0 if run_demo(args.seed, sys.stdout) else 1
    raise AssertionError(f"unhandled command {args.command}")
