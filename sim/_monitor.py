"""Watches a simulated run for violations of the safety properties, as they happen.

Online checks (each names the simulated time of the first offending event):

* election safety — two nodes seen leading one term;
* state machine safety — a node applies a different command at an index than another did;
  across snapshots (paper §7): a node installs a snapshot older than what it already applied
  (a rollback), or two snapshots of one index differ (their bytes are canonical: equal states
  give equal snapshots);
* leader completeness — a new leader's log lacks an entry already committed (applied
  anywhere), checked the moment it takes office;
* leader append-only — a node replaced persisted entries while it was leader.

At the end: log matching over every node's final log, and durability — every write the clients
were told succeeded is in the persisted log of a majority of the voters of the last committed
configuration (every write was committed by a majority of them, or of a configuration whose
commitment needed one of them: thesis §4.3) and in every log that reaches its index.
"""

from __future__ import annotations

from collections.abc import Iterable

from raft import Entry, EntryKind, Membership, Role, SnapshotMetadata, decode_membership
from sim._cluster import Cluster
from sim._invariants import Violation, log_matching


class Monitor:
    """Collects violations of one run; install with `attach` before the run starts."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self._committed: list[tuple[int, bytes]] = []
        """(term, command) of each index applied anywhere, index 1 first."""
        self._cluster: Cluster | None = None
        self.elections = 0
        self._snapshots: dict[int, tuple[int, bytes]] = {}
        """(node, data) of the first snapshot seen at each index."""

    def attach(self, cluster: Cluster) -> None:
        """Start watching `cluster` (its `on_apply` must call `on_apply` here)."""
        self._cluster = cluster
        cluster.leader_listeners.append(self.on_leader)

    def _report(self, property: str, detail: str, time_ns: int | None) -> None:
        if any(v.property == property for v in self.violations):
            return  # the first of each kind is the one worth reading
        self.violations.append(Violation(property, detail, time_ns))

    def on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        """State machine safety, online: one command per index, whoever applies it."""
        committed = self._committed
        index = entry.index
        if index == len(committed) + 1:
            committed.append((entry.term, entry.data))
        elif index <= len(committed):
            term, command = committed[index - 1]
            if term != entry.term or command != entry.data:
                self._report(
                    "state machine safety",
                    f"node {node_id} applied {entry!r} at index {index}, where another node "
                    f"applied term {term} command {command!r}",
                    self._now(),
                )
        else:
            self._report(
                "state machine safety",
                f"node {node_id} applied index {index} before anyone applied {len(committed) + 1}",
                self._now(),
            )

    def on_snapshot(
        self, node_id: int, metadata: SnapshotMetadata, data: bytes, applied: int
    ) -> None:
        """State machine safety across snapshots: no rollback, one state per index."""
        index = metadata.index
        if index < applied:
            self._report(
                "state machine safety",
                f"node {node_id} installed a snapshot of index {index} (term {metadata.term}) "
                f"over its state at index {applied}: a rollback of applied commands",
                self._now(),
            )
        committed = self._committed
        if index <= len(committed) and committed[index - 1][0] != metadata.term:
            self._report(
                "state machine safety",
                f"node {node_id} has a snapshot of index {index} in term {metadata.term}, where "
                f"term {committed[index - 1][0]} was applied",
                self._now(),
            )
        first = self._snapshots.setdefault(index, (node_id, data))
        if first[1] != data:
            self._report(
                "state machine safety",
                f"node {node_id}'s snapshot of index {index} differs from node {first[0]}'s",
                self._now(),
            )

    def on_leader(self, node_id: int, term: int) -> None:
        """Election safety and leader completeness, the moment a node takes office."""
        cluster = self._cluster
        assert cluster is not None
        self.elections += 1
        leaders = cluster.leaders_by_term[term]
        if len(leaders) > 1:
            self._report(
                "election safety", f"term {term} has leaders {sorted(leaders)}", self._now()
            )
        node = cluster.replicas[node_id].node
        committed = self._committed
        log = node.log_entries(1, len(committed) + 1)
        # Entries before its log's first one are in its snapshot, checked when it was taken.
        first = log[0].index if log else node.last_index + 1
        for index, (committed_term, command) in enumerate(committed, 1):
            if index < first:
                continue
            if index - first >= len(log) or log[index - first].term != committed_term:
                self._report(
                    "leader completeness",
                    f"node {node_id} became leader of term {term} without committed entry "
                    f"{index} (term {committed_term}, {command!r})",
                    self._now(),
                )
                return

    def finish(self, acknowledged: Iterable[tuple[int, int]]) -> None:
        """End-of-run checks: leader append-only, log matching and durability."""
        cluster = self._cluster
        assert cluster is not None
        for node_id, replica in sorted(cluster.replicas.items()):
            for role, term, index in replica.overwrites:
                if role is Role.LEADER:
                    self._report(
                        "leader append-only",
                        f"node {node_id}, leader of term {term}, replaced its entries from "
                        f"index {index}",
                        None,
                    )
        logs = {
            node_id: replica.node.log_entries(1, replica.node.last_index + 1)
            for node_id, replica in cluster.replicas.items()
        }
        violation = log_matching(logs)
        if violation is not None:
            self._report(violation.property, violation.detail, None)
        self._check_durability(acknowledged)

    def _check_durability(self, acknowledged: Iterable[tuple[int, int]]) -> None:
        cluster = self._cluster
        assert cluster is not None
        voters = committed_membership(cluster).voters
        majority = len(voters) // 2 + 1
        storages = [cluster.replicas[voter].storage for voter in voters]
        for index, term in sorted(acknowledged):
            # An entry compacted into a snapshot was committed there: the snapshot holds it.
            holders = sum(
                1
                for storage in storages
                if storage.first_index() > index
                or (storage.last_index() >= index and storage.term(index) == term)
            )
            if holders < majority:
                self._report(
                    "durability",
                    f"acknowledged entry {index} (term {term}) is persisted on only {holders} "
                    f"of its {len(storages)} voters",
                    None,
                )
                return

    def _now(self) -> int | None:
        return None if self._cluster is None else self._cluster.now


def committed_membership(cluster: Cluster) -> Membership:
    """The configuration the most advanced node knows committed: the last CONFIG entry up to
    its commit index, else the one its snapshot recorded, else the voters the cluster started
    with."""
    replica = max(cluster.replicas.values(), key=lambda replica: replica.node.commit_index)
    best = replica.node
    for entry in reversed(best.log_entries(1, best.commit_index + 1)):
        if entry.kind == EntryKind.CONFIG:
            return decode_membership(entry.data)
    snapshot = replica.storage.snapshot()
    if snapshot is not None:
        return snapshot.metadata.membership
    return Membership(cluster.initial_voters)
