"""The deterministic Raft simulator: seeded clusters, nemeses, workloads and checkers.

`Cluster` runs real `raft.RaftNode`s over a seeded `Network` in simulated time.
`run_simulation` adds clients and faults and checks every safety property and the
linearizability of the client history; `sweep` does that for many seeds. The checkers work on
plain data too: `check_linearizability` on any Jepsen-shaped history, and the Figure 3 checks
on logs. `python -m sim` is the command line; `sim.strategies` and `sim.testing` are the
property-based harness for test authors.
"""

from sim._check_history import check_history_command
from sim._cluster import Cluster
from sim._history import HistoryError, Op, OpKind, Outcome, history_from_records, load_history
from sim._invariants import Violation, election_safety, log_matching, state_machine_safety
from sim._linearizability import LinearizabilityResult, check_linearizability
from sim._monitor import Monitor
from sim._nemesis import NEMESES, Fault, Nemesis
from sim._network import LinkFaults, Network
from sim._replica import Replica
from sim._run import RunOptions, RunResult, run_simulation
from sim._sweep import sweep
from sim._timeline import FaultSpan, Timeline
from sim._timeline_html import render_timeline_html
from sim._workload import Workload, WorkloadOptions

__all__ = [
    "NEMESES",
    "Cluster",
    "Fault",
    "FaultSpan",
    "HistoryError",
    "LinearizabilityResult",
    "LinkFaults",
    "Monitor",
    "Nemesis",
    "Network",
    "Op",
    "OpKind",
    "Outcome",
    "Replica",
    "RunOptions",
    "RunResult",
    "Timeline",
    "Violation",
    "Workload",
    "WorkloadOptions",
    "check_history_command",
    "check_linearizability",
    "election_safety",
    "history_from_records",
    "load_history",
    "log_matching",
    "render_timeline_html",
    "run_simulation",
    "state_machine_safety",
    "sweep",
]
