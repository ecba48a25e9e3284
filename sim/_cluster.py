"""A whole simulated cluster: replicas, the network between them, and simulated time.

Time is integer nanoseconds, and everything that happens is an event on one heap: a message
arriving, a replica's clock ticking (every `tick_ns` of *its own* clock, so a skewed clock is a
replica that ticks faster or slower), or a scheduled callback (clients, nemeses). Events run in
time order, ties in the order they were scheduled, so a seed fixes the whole run; every event is
appended to `trace` as a tuple of ints, whose hash proves two runs identical.

Unit tests that want no time to pass use `settle()` (deliver everything in flight) and `tick()`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable
from typing import Any

from raft import Config, Message, RaftNode, Role, StateMachine
from sim._network import LinkFaults, Network
from sim._replica import ApplyListener, ReadListener, Replica, SnapshotListener

_DELIVER, _TICK, _CALL = 0, 1, 2
_MESSAGE_CODES: dict[type, int] = {}

LeaderListener = Callable[[int, int], None]
ChangeListener = Callable[[int, RaftNode], None]


def _message_code(message: Message) -> int:
    cls = type(message)
    code = _MESSAGE_CODES.get(cls)
    if code is None:
        code = _MESSAGE_CODES[cls] = len(_MESSAGE_CODES) + 1
    return code


class Cluster:
    """Replicas (by id) wired through one seeded `Network`, on one simulated clock."""

    def __init__(
        self,
        node_ids: Iterable[int],
        *,
        seed: int,
        state_machine_factory: Callable[[], StateMachine],
        tick_ns: int = 10_000_000,
        faults: LinkFaults | None = None,
        on_apply: ApplyListener | None = None,
        on_read: ReadListener | None = None,
        spares: Iterable[int] = (),
        on_snapshot: SnapshotListener | None = None,
        **config_options: Any,
    ) -> None:
        voters = tuple(node_ids)
        ids = voters + tuple(spares)
        self.initial_voters = voters
        """The voters the cluster starts with; `spares` start with no membership, as nodes
        joining a running cluster do (`Config(voters=())`)."""
        self.seed = seed
        self.now = 0
        self.tick_ns = tick_ns
        self.network = Network(random.Random(f"{seed}/network"), faults)
        self.replicas = {
            node_id: Replica(
                Config(
                    node_id=node_id, voters=voters if node_id in voters else (), **config_options
                ),
                random.Random(f"{seed}/node/{node_id}"),
                state_machine_factory,
                on_apply,
                on_read=on_read,
                on_snapshot=on_snapshot,
            )
            for node_id in ids
        }
        self.tick_ns_of = dict.fromkeys(ids, tick_ns)
        """Each replica's tick interval in simulated time; differing values are clock skew."""
        self.leaders_by_term: dict[int, set[int]] = {}
        """Every node seen acting as leader, per term: election safety wants one each."""
        self.leader_listeners: list[LeaderListener] = []
        """Called as `(node_id, term)` the first time a node is seen leading a term."""
        self.change_listeners: list[ChangeListener] = []
        """Called as `(node_id, node)` whenever a node's hard state (term, vote, commit) or
        role changed; a listener that wants to crash the node schedules that for later."""
        self.role_changes: list[tuple[int, int, Role, int]] = []
        """(time, node, role, term) whenever a node's role or term changed."""
        self.commit_changes: list[tuple[int, int, int]] = []
        """(time, node, commit index) whenever a node's commit index moved."""
        self.node_events: list[tuple[int, int, str]] = []
        """(time, node, "crash" | "restart" | "pause" | "resume")."""
        self._seen = {node_id: (Role.FOLLOWER, 0, 0) for node_id in ids}
        self.trace: list[tuple[int, ...]] = []
        self._events: list[tuple[int, int, int, Any]] = []
        self._sequence = 0
        self._in_flight = 0
        self._held: dict[int, list[Message]] = {}
        for node_id in ids:
            self._push(tick_ns, _TICK, node_id)

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
        """Ids of the replicas that are up (paused ones included)."""
        return [node_id for node_id, replica in self.replicas.items() if replica.up]

    def trace_sha256(self) -> str:
        """A hash of every event so far: equal for two runs exactly when their events were."""
        return hashlib.sha256(repr(self.trace).encode()).hexdigest()

    # ---- scheduling --------------------------------------------------------------------

    def _push(self, time: int, kind: int, payload: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._events, (time, self._sequence, kind, payload))

    def schedule(self, time: int, callback: Callable[[], None]) -> None:
        """Call `callback()` at simulated `time` (not before `now`)."""
        self._push(max(time, self.now), _CALL, callback)

    # ---- driving -----------------------------------------------------------------------

    def flush(self, node_id: int) -> None:
        """Let a replica do its pending work and put its messages on the wire."""
        replica = self.replicas[node_id]
        ready = replica.handle_ready()
        if ready is None:
            return
        now = self.now
        network_send = self.network.send
        push = self._push
        for message in ready.messages:
            for latency in network_send(message):
                self._in_flight += 1
                push(now + latency, _DELIVER, message)
        if ready.hard_state is not None or ready.soft_state is not None:
            self._observe(node_id, replica.node)

    def _observe(self, node_id: int, node: RaftNode) -> None:
        """Record a change of role, term or commit index, and every leader of every term."""
        for on_change in self.change_listeners:
            on_change(node_id, node)
        now = self.now
        role, term, commit = node.role, node.term, node.commit_index
        seen = self._seen[node_id]
        if role is not seen[0] or term != seen[1]:
            self.role_changes.append((now, node_id, role, term))
        if commit != seen[2]:
            self.commit_changes.append((now, node_id, commit))
        self._seen[node_id] = (role, term, commit)
        if role is Role.LEADER:
            leaders = self.leaders_by_term.setdefault(term, set())
            if node_id not in leaders:
                leaders.add(node_id)
                for on_leader in self.leader_listeners:
                    on_leader(node_id, term)

    def deliver(self, message: Message) -> None:
        """Hand a message to its recipient now (dropped if that replica is down, held while it
        is paused)."""
        recipient = message.recipient
        replica = self.replicas.get(recipient)
        if replica is None or not replica.up:
            return
        held = self._held.get(recipient)
        if held is not None:
            held.append(message)
            return
        self.trace.append((self.now, _DELIVER, message.sender, recipient, _message_code(message)))
        replica.node.step(message)
        self.flush(recipient)

    def tick(self, *node_ids: int) -> None:
        """Tick the given running replicas (all by default) once, without moving time."""
        for node_id in node_ids or tuple(self.replicas):
            self._tick(node_id)

    def _tick(self, node_id: int) -> None:
        replica = self.replicas[node_id]
        if replica.up and node_id not in self._held:
            self.trace.append((self.now, _TICK, node_id))
            replica.node.tick()
            self.flush(node_id)

    def _run_event(self, kind: int, payload: Any) -> None:
        if kind == _DELIVER:
            self._in_flight -= 1
            if self.network.is_blocked(payload.sender, payload.recipient):
                self.network.dropped += 1
            else:
                self.deliver(payload)
        elif kind == _TICK:
            self._push(self.now + self.tick_ns_of[payload], _TICK, payload)
            self._tick(payload)
        else:
            self.trace.append((self.now, _CALL))
            payload()

    def run_for(self, duration_ns: int) -> None:
        """Advance simulated time by `duration_ns`, running every event due by then."""
        end = self.now + duration_ns
        events = self._events
        pop = heapq.heappop
        while events and events[0][0] <= end:
            time, _, kind, payload = pop(events)
            self.now = time
            self._run_event(kind, payload)
        self.now = end

    def settle(self) -> None:
        """Deliver every message in flight, and what they cause, without ticks or callbacks."""
        for node_id in self.live():
            self.flush(node_id)
        postponed = []
        events = self._events
        while self._in_flight:
            event = heapq.heappop(events)
            if event[2] == _DELIVER:
                self.now = max(self.now, event[0])
                self._run_event(_DELIVER, event[3])
            else:
                postponed.append(event)
        for event in postponed:
            heapq.heappush(events, event)

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
        self.trace.append((self.now, 3, node_id))
        self.node_events.append((self.now, node_id, "crash"))
        self._held.pop(node_id, None)
        self.replicas[node_id].crash()

    def restart(self, node_id: int) -> None:
        """Bring a crashed replica back from its storage."""
        self.trace.append((self.now, 4, node_id))
        self.node_events.append((self.now, node_id, "restart"))
        self.replicas[node_id].restart()
        self.flush(node_id)

    def pause(self, node_id: int) -> None:
        """Freeze a replica (as SIGSTOP would): no ticks; arriving messages wait for it."""
        self.trace.append((self.now, 5, node_id))
        self.node_events.append((self.now, node_id, "pause"))
        self._held.setdefault(node_id, [])

    def resume(self, node_id: int) -> None:
        """Unfreeze a paused replica; it handles what arrived meanwhile with its stale view."""
        self.trace.append((self.now, 6, node_id))
        self.node_events.append((self.now, node_id, "resume"))
        for message in self._held.pop(node_id, []):
            self.deliver(message)

    def is_paused(self, node_id: int) -> bool:
        """Whether the replica is frozen by `pause`."""
        return node_id in self._held
