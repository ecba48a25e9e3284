"""The `python -m sim` command line: demo, run, sweep and check-history.

Every bad argument gets a clear message and exit status 2; a run or sweep exits 1 when it found
a violation, 0 when every property held.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from sim._check_history import check_history_command
from sim._demo import run_demo
from sim._nemesis import NEMESES
from sim._run import RunOptions, RunResult, run_simulation
from sim._sweep import progress_bar, sweep
from sim._timeline_html import render_timeline_html
from sim._workload import READ_MODES


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`, with a clear message if not."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive = _whole_number(1)
_seed = _whole_number(0)


def _add_scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=_positive, default=5, help="cluster size (default 5)")
    parser.add_argument(
        "--nemesis",
        default="all",
        help="faults to inject: all, none, or a comma-separated list of: " + ", ".join(NEMESES),
    )
    parser.add_argument(
        "--duration", type=_positive, default=30, help="simulated seconds (default 30)"
    )
    parser.add_argument(
        "--read-mode",
        choices=READ_MODES,
        default="index",
        help="index: ReadIndex (default); lease: leader leases; log: through the Raft log; "
        "local: read any replica's state without asking anyone (not linearizable)",
    )
    parser.add_argument(
        "--clients", type=_positive, default=10, help="concurrent clients (default 10)"
    )
    parser.add_argument(
        "--max-entries-per-message",
        type=_positive,
        default=4096,
        help="entries per AppendEntries (small values stress partial replication)",
    )
    parser.add_argument(
        "--snapshot-chunk-bytes",
        type=_positive,
        default=16,
        help="largest snapshot chunk with the snapshot nemesis (default 16: installs take "
        "many round trips)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim", description="Deterministic Raft simulator for trio-raft."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="a 5-node cluster through a leader partition and back, told as a story"
    )
    demo.add_argument("--seed", type=_seed, default=1, help="seed of the story (default 1)")
    demo.add_argument(
        "--timeline",
        type=Path,
        help="where to draw the story as HTML (default: trio-raft-demo-seed<S>.html in the "
        "temporary directory)",
    )

    run = commands.add_parser("run", help="one seeded run with faults, clients and a verdict")
    run.add_argument("--seed", type=_seed, required=True)
    _add_scenario_options(run)
    run.add_argument("--history", type=Path, help="write the client history here (JSONL)")
    run.add_argument(
        "--timeline", type=Path, help="draw the run into this self-contained HTML file"
    )

    sweep_parser = commands.add_parser("sweep", help="many seeds over a process pool")
    sweep_parser.add_argument("--seeds", type=_positive, required=True, help="how many seeds")
    sweep_parser.add_argument("--start", type=_seed, default=0, help="first seed (default 0)")
    sweep_parser.add_argument("--jobs", type=_positive, default=2, help="worker processes")
    _add_scenario_options(sweep_parser)

    check = commands.add_parser(
        "check-history", help="check a JSONL client history for linearizability"
    )
    check.add_argument("file", help="a history, one Jepsen-shaped JSON object per line")
    check.add_argument("--model", choices=("kv", "register"), default="kv")
    return parser


def _options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunOptions:
    try:
        return RunOptions(
            nodes=args.nodes,
            nemesis=args.nemesis,
            duration=args.duration,
            read_mode=args.read_mode,
            clients=args.clients,
            max_entries_per_message=args.max_entries_per_message,
            snapshot_chunk_bytes=args.snapshot_chunk_bytes,
        )
    except ValueError as error:
        parser.error(str(error))


def _print_verdict(result: RunResult, out: TextIO) -> None:
    out.write(
        f"seed {result.seed}: {result.ops} client ops, {result.elections} elections, "
        f"{result.events} events in {result.wall_seconds:.2f}s wall\n"
    )
    out.write("faults:\n" + "".join(f"  {fault}\n" for fault in result.faults or ("none",)))
    if result.ok:
        out.write(
            "verdict: every property held (election safety, leader append-only, log "
            "matching, leader completeness, state machine safety, durability, "
            "linearizability)\n"
        )
    else:
        out.write("verdict: VIOLATED\n")
        for violation in result.violations:
            out.write(f"  {violation}\n")
    out.write(f"replay: {result.replay_command()}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    out = sys.stdout
    command: str = args.command
    if command == "demo":
        timeline = (
            args.timeline or Path(tempfile.gettempdir()) / f"trio-raft-demo-seed{args.seed}.html"
        )
        return 0 if run_demo(args.seed, out, timeline) else 1
    if command == "check-history":
        return check_history_command(args.file, args.model, out)
    options = _options(parser, args)
    if command == "run":
        result = run_simulation(args.seed, options)
        timeline = result.timeline
        assert timeline is not None
        if args.history is not None:
            with args.history.open("w") as history:
                history.writelines(json.dumps(record) + "\n" for record in timeline.history)
        if args.timeline is not None:
            args.timeline.write_text(render_timeline_html(timeline))
        if args.json:
            out.write(json.dumps(result.summary()) + "\n")
        else:
            _print_verdict(result, out)
        return 0 if result.ok else 1
    report = sweep(
        range(args.start, args.start + args.seeds),
        options,
        args.jobs,
        None if args.json else progress_bar(sys.stderr),
    )
    if args.json:
        out.write(json.dumps(report) + "\n")
    else:
        out.write(
            f"{report['runs']} runs, {len(report['violating_seeds'])} violating seeds, "
            f"{report['ops']} ops, {report['wall_seconds']}s wall\n"
        )
        for violation in report["violations"]:
            out.write(
                f"  seed {violation['seed']}: {violation['property']}: "
                f"{violation['detail'].splitlines()[0]}\n    replay: {violation['replay']}\n"
            )
    return 1 if report["violations"] else 0
