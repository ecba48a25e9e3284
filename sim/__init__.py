"""The deterministic Raft simulator: a seeded network, simulated clusters and safety checks.

`Cluster` runs real `raft.RaftNode`s over a seeded `Network` in simulated time; the checks of
the Raft paper's Figure 3 properties take what a run leaves behind. `python -m sim` is the
command line.
"""

from sim._cluster import Cluster
from sim._invariants import Violation, election_safety, log_matching, state_machine_safety
from sim._network import LinkFaults, Network
from sim._replica import Replica

__all__ = [
    "Cluster",
    "LinkFaults",
    "Network",
    "Replica",
    "Violation",
    "election_safety",
    "log_matching",
    "state_machine_safety",
]
