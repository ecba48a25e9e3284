"""A whole simulated cluster: replicas, the network between them, and simulated time.

Time is integer nanoseconds. Each live replica ticks every `tick_ns` of simulated time; messages
arrive when the network says. `run_for` interleaves the two in time order (ties: messages first,
then replicas in id order), so a seed fixes the whole run. Unit tests that want no time to pass
use `settle()` (deliver everything in flight) and `tick()`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from raft import Config, Message, Role, StateMachine
from sim._network import LinkFaults, Network
from sim._replica import ApplyListener, Replica


class Cluster:
    """Replicas `1..size` (or the given ids) wired through one seeded `Network`."""

    def __init__(
        self,
        node_ids: Iterable[int],
        *,
        seed: int,
        state_machine_factory: Callable[[], StateMachine],
        tick_ns: int = 10_000_000,
        faults: LinkFaults | None = None,
        on_apply: ApplyListener | None = None,
        **config_options: Any,
    ) -> None:
        ids = tuple(node_ids)
        self.seed = seed
        self.now = 0
        self.tick_ns = tick_ns
        self.network = Network(random.Random(f"{seed}/network"), faults)
        self.replicas = {
            node_id: Replica(
                Config(node_id=node_id, voters=ids, **config_options),
                random.Random(f"{seed}/node/{node_id}"),
                state_machine_factory,
                on_apply,
            )
            for node_id in ids
        }
        self._next_tick = {node_id: tick_ns for node_id in ids}
        self.leaders_by_term: dict[int, set[int]] = {}
        """Every node seen acting as leader, per term: election safety wants one each."""

    # ---- inspection --------------------------------------------------------------------

    def leader(self) -> int | None:
        """The live node that is leader in the highest term, if any."""
        best: tuple[int, int] | None = None
        for node_id, replica in self.replicas.items():
            node = replica.node
            if replica.up and node.role is Role.LEADER and (best is None or node.term > best[0]):
                best = (node.term, node_id)
        return None if best is None else best[1]

    def live(self) -> list[int]:
        """Ids of the replicas that are up."""
        return [node_id for node_id, replica in self.replicas.items() if replica.up]

    # ---- driving -----------------------------------------------------------------------

    def flush(self, node_id: int) -> None:
        """Let a replica do its pending work and put its messages on the wire."""
        replica = self.replicas[node_id]
        now = self.now
        send = self.network.send
        for message in replica.process_ready():
            send(message, now)
        node = replica.node
        if node.role is Role.LEADER:
            self.leaders_by_term.setdefault(node.term, set()).add(node_id)

    def deliver(self, message: Message) -> None:
        """Hand a message to its recipient now (dropped if that replica is down)."""
        replica = self.replicas.get(message.recipient)
        if replica is None or not replica.up:
            return
        replica.node.step(message)
        self.flush(message.recipient)

    def tick(self, *node_ids: int) -> None:
        """Tick the given live replicas (all by default) once, without moving time."""
        for node_id in node_ids or tuple(self.replicas):
            replica = self.replicas[node_id]
            if replica.up:
                replica.node.tick()
                self.flush(node_id)

    def settle(self) -> None:
        """Deliver every message in flight, and what they cause, without any ticks."""
        for node_id in self.live():
            self.flush(node_id)
        network = self.network
        while len(network):
            time, message = network.pop()
            self.now = max(self.now, time)
            if message is not None:
                self.deliver(message)

    def run_for(self, duration_ns: int) -> None:
        """Advance simulated time by `duration_ns`, delivering messages and ticking replicas in
        time order."""
        end = self.now + duration_ns
        network = self.network
        next_tick = self._next_tick
        replicas = self.replicas
        while True:
            ticker = min(next_tick, key=lambda node_id: (next_tick[node_id], node_id))
            tick_time = next_tick[ticker]
            delivery_time = network.next_delivery_time()
            if delivery_time is not None and delivery_time <= tick_time:
                if delivery_time > end:
                    break
                self.now, message = network.pop()
                if message is not None:
                    self.deliver(message)
                continue
            if tick_time > end:
                break
            self.now = tick_time
            next_tick[ticker] = tick_time + self.tick_ns
            if replicas[ticker].up:
                replicas[ticker].node.tick()
                self.flush(ticker)
        self.now = end

    def run_until(self, condition: Callable[[], bool], timeout_ns: int) -> bool:
        """Run tick by tick until `condition()` holds or `timeout_ns` passes; True if it held."""
        deadline = self.now + timeout_ns
        while not condition():
            if self.now >= deadline:
                return False
            self.run_for(self.tick_ns)
        return True

    def elect(self, timeout_ns: int = 10_000_000_000) -> int:
        """Run until some live node leads; return its id (AssertionError on timeout)."""
        if not self.run_until(lambda: self.leader() is not None, timeout_ns):
            raise AssertionError(f"no leader within {timeout_ns} ns (seed {self.seed})")
        leader = self.leader()
        assert leader is not None
        return leader

    def propose(self, node_id: int, command: bytes) -> tuple[int, int]:
        """Propose at a node and flush its work; returns (term, index)."""
        term_and_index = self.replicas[node_id].node.propose(command)
        self.flush(node_id)
        return term_and_index

    # ---- faults ------------------------------------------------------------------------

    def crash(self, node_id: int) -> None:
        """Crash a replica: it loses everything but its storage."""
        self.replicas[node_id].crash()

    def restart(self, node_id: int) -> None:
        """Bring a crashed replica back from its storage."""
        self.replicas[node_id].restart()
        self.flush(node_id)
