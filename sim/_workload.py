"""Simulated clients: reads, writes and compare-and-sets against the KV store, recorded as a
Jepsen-shaped history (DESIGN.md, "Simulator conventions").

Each client runs one operation at a time. It sends the request to the node it believes leads
(a request takes `latency` of simulated time each way); a `NotLeader` answer certainly did not
take effect, so the client retries at the hinted leader, or another node, until its timeout. A
proposal is answered when the node that accepted it applies that index: with the result if the
entry there is the one proposed (same term), with `fail` if another term's entry took the index
(the proposal was lost in a leader change). An operation still open at its timeout completes as
`info` — its outcome unknown — and the client continues under a new process id, as Jepsen's do,
because the old operation may still take effect at any later time.

Reads use ReadIndex by default (`read_mode="index"`, thesis §6.4): the contacted node gets a
read index (from the leader, if it is a follower), waits until it has applied that index, and
answers from its own state. `lease` does the same with leader leases (thesis §6.4.1), `log`
sends reads through the Raft log, and `local` reads whatever state the contacted replica has,
without asking anyone: the stale-read mode the linearizability checker must catch.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import attrs

from raft import Entry, LeadershipTransferInProgress, NotLeader, ReadState
from sim._cluster import Cluster
from statemachines import KVResult, KVStore, encode_cas, encode_get, encode_put

READ_MODES = ("index", "lease", "log", "local")
_NO_LEADER_BACKOFF_NS = (20_000_000, 50_000_000)


@attrs.frozen
class WorkloadOptions:
    """How many clients, how often they act, and on what."""

    clients: int = 10
    keys: tuple[str, ...] = ("a", "b", "c")
    think_ns: int = 150_000_000
    """Mean pause between a client's operations (exponentially distributed)."""
    timeout_ns: int = 1_000_000_000
    min_latency_ns: int = 200_000
    max_latency_ns: int = 1_000_000
    read_mode: str = attrs.field(default="index", validator=attrs.validators.in_(READ_MODES))


@attrs.define
class _Operation:
    process: int
    f: str
    key: str
    value: Any
    command: bytes
    deadline: int
    done: bool = False


class Workload:
    """The clients of one simulated run and the history they produce."""

    def __init__(self, rng: random.Random, options: WorkloadOptions) -> None:
        self._rng = rng
        self.options = options
        self.history: list[dict[str, Any]] = []
        """Jepsen-shaped records in the order they happened."""
        self.acknowledged: list[tuple[int, int]] = []
        """(index, term) of every write a client was told succeeded (durability's input)."""
        self._cluster: Cluster | None = None
        self._pending: dict[tuple[int, int], tuple[_Operation, int]] = {}
        self._pending_reads: dict[tuple[int, bytes], _Operation] = {}
        self._read_ids = 0
        self._targets: dict[int, int] = {}
        self._processes: dict[int, int] = {}
        self._next_value = 0
        self.stopped = False

    def start(self, cluster: Cluster) -> None:
        """Attach to `cluster` and schedule every client's first operation."""
        self._cluster = cluster
        ids = sorted(cluster.replicas)
        for client in range(self.options.clients):
            self._processes[client] = client
            self._targets[client] = self._rng.choice(ids)
            cluster.schedule(cluster.now + self._think(), partial(self._begin, client))

    def on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        """Answer the operation (if any) that proposed this entry at this node."""
        waiting = self._pending.pop((node_id, entry.index), None)
        if waiting is None:
            return
        operation, term = waiting
        if entry.term != term:
            self._reply(operation, "fail", operation.value)
            return
        assert isinstance(result, KVResult)
        if operation.f == "read":
            self._reply(operation, "ok", result.value)
        elif operation.f == "cas" and not result.ok:
            self._reply(operation, "fail", operation.value)
        else:
            self._reply(operation, "ok", operation.value, (entry.index, entry.term))

    def on_read(self, node_id: int, read: ReadState) -> None:
        """A read confirmed at `node_id` may be served: answer from that node's state."""
        operation = self._pending_reads.pop((node_id, read.context), None)
        if operation is None:
            return
        cluster = self._cluster
        assert cluster is not None
        store = cluster.replicas[node_id].state_machine
        assert isinstance(store, KVStore)
        self._reply(operation, "ok", store.get(operation.key))

    def forget_node(self, node_id: int) -> None:
        """A node crashed: requests it held will never be answered (their clients time out)."""
        for key in [key for key in self._pending if key[0] == node_id]:
            del self._pending[key]
        for read in [read for read in self._pending_reads if read[0] == node_id]:
            del self._pending_reads[read]

    # ---- one client's loop -------------------------------------------------------------

    def _think(self) -> int:
        return int(self._rng.expovariate(1 / self.options.think_ns))

    def _latency(self) -> int:
        return self._rng.randint(self.options.min_latency_ns, self.options.max_latency_ns)

    def _begin(self, client: int) -> None:
        cluster = self._cluster
        assert cluster is not None
        if self.stopped:
            return
        rng = self._rng
        key = rng.choice(self.options.keys)
        roll = rng.random()
        value: Any
        if roll < 0.5:
            f, value, command = "read", None, encode_get(key)
        elif roll < 0.8:
            f, value = "write", self._fresh_value()
            command = encode_put(key, value)
        else:
            # Expect one of the last few values written (or absence), so some cas ops match.
            expected = rng.randint(max(0, self._next_value - 3), self._next_value) or None
            new = self._fresh_value()
            f, value = "cas", [expected, new]
            command = encode_cas(key, expected, new)
        operation = _Operation(
            self._processes[client], f, key, value, command, cluster.now + self.options.timeout_ns
        )
        self._record(operation, "invoke", value)
        cluster.schedule(operation.deadline, lambda: self._time_out(client, operation))
        self._send(client, operation)

    def _fresh_value(self) -> int:
        self._next_value += 1
        return self._next_value

    def _send(self, client: int, operation: _Operation) -> None:
        cluster = self._cluster
        assert cluster is not None
        target = self._targets[client]
        cluster.schedule(
            cluster.now + self._latency(), lambda: self._arrive(client, operation, target)
        )

    def _arrive(self, client: int, operation: _Operation, node_id: int) -> None:
        cluster = self._cluster
        assert cluster is not None
        if operation.done:
            return
        replica = cluster.replicas[node_id]
        if not replica.up:
            # Connection refused: certainly not applied; try another node.
            self._redirect(client, operation, None)
            return
        if cluster.is_paused(node_id):
            return  # the request hangs until the client's timeout
        read_mode = self.options.read_mode
        if operation.f == "read" and read_mode == "local":
            store = replica.state_machine
            assert isinstance(store, KVStore)
            self._reply(operation, "ok", store.get(operation.key))
            return
        try:
            if operation.f == "read" and read_mode != "log":
                self._read_ids += 1
                context = b"%d" % self._read_ids
                replica.node.read_index(context)
                self._pending_reads[(node_id, context)] = operation
            else:
                term, index = replica.node.propose(operation.command)
                self._pending[(node_id, index)] = (operation, term)
        except NotLeader as error:
            self._redirect(client, operation, error.leader_id)
            return
        except LeadershipTransferInProgress as error:
            self._redirect(client, operation, error.target)
            return
        cluster.flush(node_id)

    def _redirect(self, client: int, operation: _Operation, leader_id: int | None) -> None:
        cluster = self._cluster
        assert cluster is not None
        # The refusal travels back before the client tries again; with no leader known, it
        # also backs off, as a real client would, instead of spinning through the nodes.
        delay = self._latency()
        if leader_id is None:
            leader_id = self._rng.choice(sorted(cluster.replicas))
            delay += self._rng.randint(*_NO_LEADER_BACKOFF_NS)
        self._targets[client] = leader_id
        cluster.schedule(cluster.now + delay, lambda: self._send(client, operation))

    def _reply(
        self,
        operation: _Operation,
        outcome: str,
        value: Any,
        entry: tuple[int, int] | None = None,
    ) -> None:
        cluster = self._cluster
        assert cluster is not None

        def deliver() -> None:
            if operation.done:
                return
            operation.done = True
            self._record(operation, outcome, value)
            if entry is not None:
                self.acknowledged.append(entry)
            client = operation.process % self.options.clients
            cluster.schedule(cluster.now + self._think(), lambda: self._begin(client))

        cluster.schedule(cluster.now + self._latency(), deliver)

    def _time_out(self, client: int, operation: _Operation) -> None:
        cluster = self._cluster
        assert cluster is not None
        if operation.done:
            return
        operation.done = True
        self._record(operation, "info", operation.value)
        self._processes[client] += self.options.clients
        self._targets[client] = self._rng.choice(sorted(cluster.replicas))
        cluster.schedule(cluster.now + self._think(), lambda: self._begin(client))

    def _record(self, operation: _Operation, kind: str, value: Any) -> None:
        cluster = self._cluster
        assert cluster is not None
        self.history.append(
            {
                "process": operation.process,
                "type": kind,
                "f": operation.f,
                "key": operation.key,
                "value": value,
                "time": cluster.now,
            }
        )
