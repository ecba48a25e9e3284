"""`RaftServer`: one `RaftNode` driven by trio — timers, transport, storage I/O, client API.

Theory of operation. Four tasks share the node, all on the event loop thread:

- the *ticker* calls `node.tick()` every `tick_interval` seconds of trio's clock;
- the *receiver* steps every message from the transport's `incoming` channel;
- callers (`apply`, `read`, membership calls) queue proposals or call the node directly;
- the *driver* owns the `Ready` cycle: it takes one `Ready`, persists it (one `save`, one fsync)
  in a worker thread, then sends its messages, applies its committed entries, answers its
  reads, and calls `advance`. Then the next `Ready`.

While the driver waits for the fsync, the ticker and the receiver keep feeding the node (the
core allows `tick`, `step` and `propose` between `ready()` and `advance()`; it hands out the
next `Ready` only after `advance`). So a slow disk never makes this node miss a leader's
heartbeat or count time wrongly, and whatever the node wants to send meanwhile waits for the
next `Ready`: nothing leaves before the state it depends on is durable.

The core reads its storage (`term`, `entries`) from the event loop while the worker thread
writes it. That is safe because a `Ready`'s entries start at or after the node's unstable
offset, and the core reads storage only below it; the storage's in-memory log changes only at
and after that index (see docs/runtime.md). Compaction moves `first_index`, which the core may
read anywhere, so the ticker and receiver pause while a snapshot is written.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Final, Literal, TypeVar

import attrs
import trio

from raft._state_machine import StateMachine
from raft.core import (
    CommandTooLarge,
    Config,
    EntryKind,
    Heartbeat,
    LeadershipTransferInProgress,
    Membership,
    RaftNode,
    Ready,
    Role,
    Storage,
)
from raft.core import NotLeader as CoreNotLeader
from raft.runtime._errors import (
    NoQuorum,
    NotLeader,
    Overloaded,
    ServerStopped,
    Timeout,
)
from raft.runtime._sessions import (
    DEFAULT_MAX_CLIENTS,
    MalformedEnvelope,
    SessionTable,
    _Expired,
    encode_envelope,
)
from raft.runtime._transport import Transport
from raft.storage import MemoryStorage, StorageFull

T = TypeVar("T")
Consistency = Literal["linearizable", "lease", "stale"]

_ENVELOPE_OVERHEAD: Final = 32
"""Bytes an envelope may add to a command (msgpack array, version, two 64-bit integers, bin
header): the command plus this must fit in one message."""
APPLY_BUDGET: Final = 256
"""Committed entries applied between two checkpoints, so long batches never stall ticks."""


@attrs.frozen
class PeerProgress:
    """What the leader knows of one member's log (a copy of the core's `Progress`)."""

    match_index: int
    next_index: int
    state: str
    recent_active: bool


@attrs.frozen
class ServerStatus:
    """A snapshot of a `RaftServer`'s state, for status pages and tests."""

    node_id: int
    role: Role
    term: int
    leader_id: int | None
    leader_address: object | None
    commit_index: int
    applied_index: int
    last_index: int
    membership: Membership | None
    progress: Mapping[int, PeerProgress]
    """As leader, each member's replication progress; empty otherwise."""
    pending_proposals: int
    pending_bytes: int
    persists: int
    """`Ready`s persisted (fsyncs, with durable storage)."""
    max_persist_seconds: float
    sessions: int
    """Clients in the session table."""
    disk_full: bool
    """The last write found the disk full; it is retried, and proposals are refused."""


class _Waiter:
    """One caller waiting for its proposal (or membership change) to commit and apply."""

    __slots__ = ("data", "error", "event", "index", "result", "size", "term")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.event = trio.Event()
        self.term = 0
        self.index = 0
        self.result: object = None
        self.error: BaseException | None = None

    def resolve(self, result: object) -> None:
        if not self.event.is_set():
            self.result = result
            self.event.set()

    def fail(self, error: BaseException) -> None:
        if not self.event.is_set():
            self.error = error
            self.event.set()


class _ReadWaiter:
    __slots__ = ("error", "event", "index")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.index = -1
        self.error: BaseException | None = None


class RaftServer:
    """Drives one `RaftNode` on trio: `async with RaftServer(...) as server:` runs it.

    - `config`, `storage` (a `FileStorage` or `MemoryStorage` holding whatever survived of this
      node), `transport` (entered already, e.g. a running `TcpTransport`), `state_machine`
      (fresh: the server replays the log and snapshot into it), `rng` (election jitter);
    - `tick_interval`: seconds of trio's clock per `node.tick()`; the election timeout is
      `config.election_ticks * tick_interval`;
    - `addresses`: node id -> address, only to tell callers where the leader is (`NotLeader`);
    - `max_uncommitted_bytes`: proposals waiting to commit beyond it are refused (`Overloaded`);
    - `request_timeout`: default seconds a call waits before `Timeout`;
    - `persist_in_thread`: run `storage` writes in a worker thread (default: unless it is a
      `MemoryStorage`, which does no I/O, and which `MockClock` tests need inline);
    - `max_disk_stall`: how long a leader whose write hangs keeps its followers from electing
      another leader (default 3 election timeouts); past it, it lets them;
    - `max_clients`, `encode_result`, `decode_result`: the session table (`SessionTable`);
    - `clock_ns`: the wall clock `apply_stamped` reads, in nanoseconds (default `time.time_ns`;
      tests inject one, since trio's clock is relative, not wall time).

    The server stops loudly: an error in any of its tasks (a `NodeFailed`, a storage error)
    cancels the `async with` body and propagates out of it.
    """

    def __init__(
        self,
        config: Config,
        storage: Storage,
        transport: Transport,
        state_machine: StateMachine,
        *,
        rng: random.Random,
        tick_interval: float = 0.1,
        addresses: Mapping[int, object] | None = None,
        max_uncommitted_bytes: int = 64 * 1024 * 1024,
        request_timeout: float = 5.0,
        persist_in_thread: bool | None = None,
        max_disk_stall: float | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        encode_result: Callable[[object], object] | None = None,
        decode_result: Callable[[object], object] | None = None,
        clock_ns: Callable[[], int] | None = None,
    ) -> None:
        _check_seconds("tick_interval", tick_interval, positive=True)
        _check_seconds("request_timeout", request_timeout, positive=True)
        if max_disk_stall is not None:
            _check_seconds("max_disk_stall", max_disk_stall, positive=False)
        if type(max_uncommitted_bytes) is not int or max_uncommitted_bytes < 1:
            raise ValueError(
                f"max_uncommitted_bytes must be an integer >= 1, got {max_uncommitted_bytes!r}"
            )
        if transport.node_id != config.node_id:
            raise ValueError(
                f"transport speaks for node {transport.node_id}, config for {config.node_id}"
            )
        self._config = config
        self._storage = storage
        self._transport = transport
        codecs: dict[str, Any] = {}
        if encode_result is not None:
            codecs["encode_result"] = encode_result
        if decode_result is not None:
            codecs["decode_result"] = decode_result
        self._sessions = SessionTable(state_machine, max_clients=max_clients, **codecs)
        self._state_machine = state_machine
        self._rng = rng
        self._clock_ns: Callable[[], int] = time.time_ns if clock_ns is None else clock_ns
        self._tick_interval = float(tick_interval)
        self._addresses: dict[int, object] = dict(addresses or {})
        self._max_uncommitted = max_uncommitted_bytes
        self._request_timeout = float(request_timeout)
        if persist_in_thread is None:
            persist_in_thread = not isinstance(storage, MemoryStorage)
        self._persist_in_thread = persist_in_thread
        self._max_disk_stall = float(
            3 * config.election_ticks * self._tick_interval
            if max_disk_stall is None
            else max_disk_stall
        )
        self._persist_started: float | None = None
        self._durable_term = storage.initial_state().term
        self._durable_commit = storage.initial_state().commit
        self._node: RaftNode | None = None
        self._queued: list[_Waiter] = []
        self._by_index: dict[int, _Waiter] = {}
        self._pending_bytes = 0
        self._reads: dict[bytes, _ReadWaiter] = {}
        self._reads_waiting: list[tuple[int, bytes]] = []
        # A fresh prefix per server incarnation: a read context is never reused, even across
        # restarts, so a late answer to an old read can never confirm a new one.
        self._read_prefix = rng.getrandbits(64).to_bytes(8, "big")
        self._read_counter = 0
        self._applied = 0
        self._wakeup = trio.Event()
        self._changed = trio.Event()
        self._resumed: trio.Event | None = None
        self._persists = 0
        self._disk_full: StorageFull | None = None
        self._max_persist = 0.0
        self._stopped: BaseException | None = None
        self._running = False
        self._exit_stack = AsyncExitStack()
        self._cancel_scope = trio.CancelScope()

    # ---- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> RaftServer:
        if self._running or self._stopped is not None:
            raise RuntimeError("a RaftServer runs once")
        self._start_node()
        async with AsyncExitStack() as stack:
            nursery = await stack.enter_async_context(trio.open_nursery())
            stack.callback(self._fail_everyone)
            nursery.start_soon(self._run_tasks)
            self._exit_stack = stack.pop_all()
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self._running = False
        self._cancel_scope.cancel()
        return await self._exit_stack.__aexit__(exc_type, exc_value, traceback)

    def _start_node(self) -> None:
        storage = self._storage
        snapshot = storage.snapshot()
        if snapshot is not None:  # the log starts after it: the state machine starts from it
            self._sessions.restore(snapshot.data)
            self._applied = snapshot.metadata.index
        self._node = RaftNode(self._config, storage, self._rng)

    async def _run_tasks(self) -> None:
        with self._cancel_scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._tick)
                    nursery.start_soon(self._cover_stalls)
                    nursery.start_soon(self._receive)
                    nursery.start_soon(self._drive)
            except BaseException as error:
                if not self._cancel_scope.cancel_called:
                    self._stopped = error
                raise

    def _fail_everyone(self) -> None:
        self._running = False
        cause = self._stopped
        for waiter in [*self._queued, *self._by_index.values()]:
            waiter.fail(_stopped_error(cause))
        self._queued.clear()
        self._by_index.clear()
        self._pending_bytes = 0
        for read in self._reads.values():
            read.error = _stopped_error(cause)
            read.event.set()
        self._reads.clear()
        self._changed.set()

    @property
    def node(self) -> RaftNode:
        """The node this server drives (for inspection; feed it only through the server)."""
        if self._node is None:
            raise RuntimeError("the server has not started")
        return self._node

    @property
    def state_machine(self) -> StateMachine:
        """The state machine the committed log is applied to."""
        return self._state_machine

    @property
    def transport(self) -> Transport:
        """The transport this server sends through."""
        return self._transport

    # ---- the tasks ---------------------------------------------------------------------

    async def _tick(self) -> None:
        node = self.node
        interval = self._tick_interval
        # A stalled loop (a long apply, a paused process) delivers the ticks it missed, up to
        # one election timeout's worth: a leader must not believe its lease is younger than it
        # is, and a burst of more would only start an election at once.
        catch_up = max(1, self._config.election_ticks)
        deadline = trio.current_time() + interval
        while True:
            await trio.sleep_until(deadline)
            if self._resumed is not None:
                await self._resumed.wait()
            now = trio.current_time()
            missed = int((now - deadline) / interval) + 1
            for _ in range(min(missed, catch_up)):
                node.tick()
            deadline += missed * interval
            self._wakeup.set()

    async def _cover_stalls(self) -> None:
        """Leader: while a write hangs (longer than a heartbeat interval, at most
        `max_disk_stall`), send followers heartbeats built from durable state only, so that
        a slow disk does not look like a dead leader.

        The core's own heartbeats from ticks meanwhile belong to the next `Ready` and wait for
        the write. These carry nothing that write could lose: the term is durable (checked),
        and each follower's commit is min(its match index, the last *persisted* commit index).
        Not the core's current commit index: the core counts the leader's own entries as
        matched when appended, so during this write it may count entries the write holds; a
        follower told that commit could apply an entry a leader crash then loses. No round,
        no read context: they confirm no read and extend no lease.
        Past `max_disk_stall` they stop: the followers elect another leader and this one, still
        ticking, steps down by check-quorum."""
        node = self.node
        interval = self._tick_interval * self._config.heartbeat_ticks
        send = self._transport.send
        while True:
            await trio.sleep(interval)
            started = self._persist_started
            if started is None or node.role is not Role.LEADER:
                continue
            stalled = trio.current_time() - started
            if stalled < interval or stalled > self._max_disk_stall:
                continue
            term = node.term
            if term != self._durable_term:
                continue
            commit = self._durable_commit
            me = node.node_id
            for peer, progress in node.progress().items():
                if peer != me:
                    send(Heartbeat(term, me, peer, min(progress.match_index, commit)))

    async def _receive(self) -> None:
        node = self.node
        incoming = self._transport.incoming
        async for message in incoming:
            if self._resumed is not None:
                await self._resumed.wait()
            node.step(message)
            while True:  # step what is already here before waking the driver once
                try:
                    message = incoming.receive_nowait()
                except trio.WouldBlock:
                    break
                node.step(message)
            self._wakeup.set()

    async def _drive(self) -> None:
        node = self.node
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            self._propose_queued()
            while node.has_ready():
                ready = node.ready()
                await self._persist(ready)
                send = self._transport.send
                for message in ready.messages:
                    send(message)
                await self._apply(ready)
                for read_state in ready.read_states:
                    self._read_confirmed(read_state.context, read_state.index)
                self._serve_reads()
                if ready.soft_state is not None:
                    self._leadership_changed()
                node.advance(ready)
                await self._maybe_compact()
                self._propose_queued()
                changed, self._changed = self._changed, trio.Event()
                changed.set()

    async def _persist(self, ready: Ready) -> None:
        if ready.hard_state is None and not ready.entries and ready.snapshot is None:
            return
        start = self._persist_started = trio.current_time()
        retry = self._tick_interval * self._config.heartbeat_ticks
        while True:
            try:
                if self._persist_in_thread:
                    await trio.to_thread.run_sync(self._save, ready)
                else:
                    self._save(ready)
                break
            except StorageFull as error:
                # Nothing was stored: refuse new proposals, keep ticking and stepping, and
                # retry this same Ready until space returns (nothing of it was sent yet).
                self._disk_full = error
                await trio.sleep(retry)
                retry = min(retry * 2, 1.0)
        self._disk_full = None
        self._persist_started = None
        if ready.hard_state is not None:
            self._durable_term = ready.hard_state.term
            self._durable_commit = ready.hard_state.commit
        self._persists += 1
        self._max_persist = max(self._max_persist, trio.current_time() - start)

    def _save(self, ready: Ready) -> None:
        storage: Any = self._storage
        snapshot = ready.snapshot
        save = getattr(storage, "save", None)  # FileStorage: one call, one fsync
        if save is not None:
            if snapshot is not None:
                save(ready.hard_state, ready.entries, snapshot)
            else:
                save(ready.hard_state, ready.entries)
            return
        if snapshot is not None:
            storage.apply_snapshot(snapshot)
        if ready.entries:
            storage.append(ready.entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)

    async def _apply(self, ready: Ready) -> None:
        snapshot = ready.snapshot
        if snapshot is not None:
            self._sessions.restore(snapshot.data)
            index = snapshot.metadata.index
            self._applied = index
            for waiter_index in [i for i in self._by_index if i <= index]:
                skipped = self._by_index.pop(waiter_index)
                self._pending_bytes -= skipped.size
                skipped.fail(
                    Timeout(f"entry {waiter_index} was compacted into a snapshot: outcome unknown")
                )
        apply = self._sessions.apply
        by_index = self._by_index
        for position, entry in enumerate(ready.committed_entries):
            if position and position % APPLY_BUDGET == 0:
                await trio.lowlevel.checkpoint()
            result: object = None
            if entry.kind == EntryKind.COMMAND:
                result = apply(entry.data)
            self._applied = entry.index
            waiter: _Waiter | None = by_index.pop(entry.index, None)
            if waiter is None:
                continue
            self._pending_bytes -= waiter.size
            if waiter.term != entry.term:
                waiter.fail(self._not_leader("a leader change replaced the entry; not applied"))
            elif isinstance(result, _Expired):
                waiter.fail(result.error)
            elif isinstance(result, MalformedEnvelope):
                waiter.fail(result)
            else:
                waiter.resolve(result)

    def _leadership_changed(self) -> None:
        node = self.node
        if node.role is not Role.LEADER and self._queued:
            error = self._not_leader()
            for waiter in self._queued:
                self._pending_bytes -= waiter.size
                waiter.fail(error)
            self._queued.clear()

    def _propose_queued(self) -> None:
        queued = self._queued
        if not queued:
            return
        self._queued = []
        node = self.node
        try:
            term, first = node.propose_batch([waiter.data for waiter in queued])
        except (CoreNotLeader, LeadershipTransferInProgress) as error:
            failure = self._translate(error)
            for waiter in queued:
                self._pending_bytes -= waiter.size
                waiter.fail(failure)
            return
        for offset, waiter in enumerate(queued):
            waiter.term = term
            waiter.index = first + offset
            self._by_index[waiter.index] = waiter

    async def _maybe_compact(self) -> None:
        node = self.node
        if not node.snapshot_due():
            return
        metadata = node.snapshot_metadata()
        data = self._sessions.snapshot()
        storage: Any = self._storage
        if not self._persist_in_thread:
            storage.create_snapshot(metadata, data)
            return
        # Compaction moves storage's first index, which the core may read on any input: the
        # ticker and receiver wait until it is done (the ticker then delivers missed ticks).
        self._resumed = trio.Event()
        try:
            await trio.to_thread.run_sync(storage.create_snapshot, metadata, data)
        finally:
            resumed, self._resumed = self._resumed, None
            resumed.set()

    # ---- reads -------------------------------------------------------------------------

    def _read_confirmed(self, context: bytes, index: int) -> None:
        read = self._reads.get(context)
        if read is not None:
            read.index = index
            self._reads_waiting.append((index, context))

    def _serve_reads(self) -> None:
        if not self._reads_waiting:
            return
        applied = self._applied
        still = []
        for index, context in self._reads_waiting:
            if index <= applied:
                read = self._reads.pop(context, None)
                if read is not None:
                    read.event.set()
            else:
                still.append((index, context))
        self._reads_waiting = still

    # ---- the client API ----------------------------------------------------------------

    async def apply(
        self,
        command: bytes,
        *,
        client_id: int = 0,
        seq: int = 0,
        timeout: float | None = None,
    ) -> object:
        """Propose `command`, wait until it commits and is applied here, and return the state
        machine's result.

        With a session (`client_id` != 0, `seq` increasing by one per command of that client),
        a retry of the same (`client_id`, `seq`) after a `Timeout` is applied at most once and
        returns the first result (see `SessionTable`).

        Raises `NotLeader` (not applied), `CommandTooLarge`, `Overloaded` and `StorageFull`
        (not proposed),
        `Timeout`/`NoQuorum` (outcome unknown), `SessionExpired`, `ServerStopped`.
        """
        self._check_running()
        data = self._envelope(command, client_id, seq)
        return await self._submit(data, timeout)

    async def apply_stamped(
        self,
        build: Callable[[int], bytes],
        *,
        client_id: int = 0,
        seq: int = 0,
        timeout: float | None = None,
    ) -> object:
        """Like `apply`, for a command stamped with the leader's time: `build(now_ns)` gives it.

        `build` is called here, only while this node leads, with `now_ns` from the server's
        clock (`clock_ns`), in the same step that queues the command: no other task runs in
        between, so the stamp is always the time at which this leader accepted the command.
        On a follower it raises `NotLeader` without calling `build`. An exception from `build`
        propagates and nothing is proposed; a built command can still be refused as `apply`
        refuses one (`CommandTooLarge`, `Overloaded`), unproposed. A retry with the same
        (`client_id`, `seq`) calls `build` again, but the session answers with the first result.

        Raises what `apply` raises.
        """
        self._check_running()
        self._check_can_propose()
        command = build(self._clock_ns())
        data = self._envelope(command, client_id, seq)
        return await self._submit(data, timeout)

    def _envelope(self, command: bytes, client_id: int, seq: int) -> bytes:
        data = encode_envelope(client_id, seq, command)
        limit = self._config.max_bytes_per_message
        if len(data) > limit:
            raise CommandTooLarge(len(command) + _ENVELOPE_OVERHEAD, limit)
        return data

    def _check_can_propose(self) -> None:
        if self.node.role is not Role.LEADER:
            raise self._not_leader()
        if self._disk_full is not None:
            raise StorageFull(self._disk_full.path) from self._disk_full

    async def _submit(self, data: bytes, timeout: float | None) -> object:
        """Queue an enveloped command for the driver's next batch and wait for its result."""
        self._check_can_propose()
        if self._pending_bytes + len(data) > self._max_uncommitted:
            raise Overloaded(self._pending_bytes, self._max_uncommitted)
        waiter = _Waiter(data)
        self._pending_bytes += waiter.size
        self._queued.append(waiter)
        self._wakeup.set()
        return await self._wait(waiter, timeout)

    async def _wait(self, waiter: _Waiter, timeout: float | None) -> object:
        with trio.move_on_after(self._request_timeout if timeout is None else timeout):
            await waiter.event.wait()
        if not waiter.event.is_set():
            # Still queued or in flight: it may yet commit, but nobody waits for the answer.
            if waiter in self._queued:
                self._queued.remove(waiter)
                self._pending_bytes -= waiter.size
            raise self._timeout(f"entry {waiter.index or '(not yet proposed)'} did not commit")
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def read(
        self,
        query: Callable[[Any], T],
        *,
        consistency: Consistency = "linearizable",
        timeout: float | None = None,
    ) -> T:
        """Run `query(state_machine)` on this replica once that is linearizable, and return
        its answer.

        `"linearizable"` (default) uses ReadIndex (thesis §6.4): the leader confirms it still
        leads with a heartbeat round, and the query runs once this replica applied the commit
        index of that moment; it works on followers too (they ask the leader). `"lease"` lets
        the leader skip the round while its lease holds (needs `Config.lease_reads`, which
        makes linearizable reads use the lease as well). `"stale"` runs the query at once on
        whatever this replica applied. A read lost with a leader change raises `Timeout`.
        """
        self._check_running()
        if consistency == "stale":
            return query(self._state_machine)
        if consistency == "lease" and not self._config.lease_reads:
            raise ValueError("lease reads need Config.lease_reads=True")
        if consistency not in ("linearizable", "lease"):
            raise ValueError(f"consistency must be linearizable, lease or stale: {consistency!r}")
        self._read_counter += 1
        context = self._read_prefix + self._read_counter.to_bytes(8, "big")
        read = _ReadWaiter()
        self._reads[context] = read
        try:
            self.node.read_index(context)
        except CoreNotLeader:
            del self._reads[context]
            raise self._not_leader() from None
        self._wakeup.set()
        try:
            with trio.move_on_after(self._request_timeout if timeout is None else timeout):
                await read.event.wait()
        finally:
            self._reads.pop(context, None)
        if not read.event.is_set():
            raise self._timeout("the read was not confirmed (lost with a leader change?)")
        if read.error is not None:
            raise read.error
        return query(self._state_machine)

    async def transfer_leadership(self, target: int, *, timeout: float | None = None) -> None:
        """Hand leadership to voter `target` and wait until it leads (as far as this node
        knows); `Timeout` if it has not taken over in time (the old leader may lead again)."""
        self._check_running()
        try:
            self.node.transfer_leadership(target)
        except CoreNotLeader:
            raise self._not_leader() from None
        self._wakeup.set()
        with trio.move_on_after(self._request_timeout if timeout is None else timeout):
            while self.node.leader_id != target:
                await self._changed.wait()
            return
        raise self._timeout(f"node {target} did not take over")

    async def add_learner(
        self, node_id: int, address: tuple[str, int] | None = None, *, timeout: float | None = None
    ) -> None:
        """Leader: start replicating to a new non-voting member (at `address`, when the
        transport dials peers: it is added to the transport and to the leader hints)."""
        if address is not None:
            self._add_address(node_id, address)
        await self._reconfigure("add_learner", node_id, timeout=timeout)

    async def promote_learner(self, node_id: int, *, timeout: float | None = None) -> None:
        """Leader: make a learner a voter (through a joint configuration), once it has caught
        up with the commit index (waiting for that within the timeout)."""
        self._check_running()
        deadline = trio.current_time() + (self._request_timeout if timeout is None else timeout)
        node = self.node
        with trio.move_on_at(deadline):
            while True:
                progress = node.progress().get(node_id)
                if progress is None or progress.match_index >= node.commit_index:
                    break  # not a member, or caught up: the node decides
                await self._changed.wait()
        await self._reconfigure(
            "promote_learner", node_id, timeout=max(0.0, deadline - trio.current_time())
        )

    async def add_voter(
        self, node_id: int, address: tuple[str, int] | None = None, *, timeout: float | None = None
    ) -> None:
        """Leader: make a new node a voter at once (prefer `add_learner` + `promote_learner`)."""
        if address is not None:
            self._add_address(node_id, address)
        await self._reconfigure("add_voter", node_id, timeout=timeout)

    async def remove_voter(self, node_id: int, *, timeout: float | None = None) -> None:
        """Leader: remove a voter (through a joint configuration)."""
        await self._reconfigure("remove_voter", node_id, timeout=timeout)

    async def remove_learner(self, node_id: int, *, timeout: float | None = None) -> None:
        """Leader: stop replicating to a learner."""
        await self._reconfigure("remove_learner", node_id, timeout=timeout)

    async def change_membership(
        self,
        voters: tuple[int, ...],
        learners: tuple[int, ...] = (),
        *,
        timeout: float | None = None,
    ) -> None:
        """Leader: move the cluster to `voters` and `learners` (`RaftNode.change_membership`)."""
        await self._reconfigure("change_membership", voters, learners, timeout=timeout)

    async def _reconfigure(self, name: str, *arguments: Any, timeout: float | None) -> None:
        """Run a membership call on the node, wait for its entry to commit, and, when it
        entered a joint configuration, for the leader to leave it (`Config.auto_leave`)."""
        self._check_running()
        try:
            term, index = getattr(self.node, name)(*arguments)
        except (CoreNotLeader, LeadershipTransferInProgress) as error:
            raise self._translate(error) from None
        waiter = _Waiter(b"")
        waiter.term, waiter.index = term, index
        self._by_index[index] = waiter
        self._wakeup.set()
        deadline = trio.current_time() + (self._request_timeout if timeout is None else timeout)
        with trio.move_on_at(deadline):
            await waiter.event.wait()
        if not waiter.event.is_set():
            self._by_index.pop(index, None)
            raise self._timeout(f"membership change at {index} did not commit")
        if waiter.error is not None:
            raise waiter.error
        if not self._config.auto_leave:
            return
        node = self.node
        with trio.move_on_at(deadline):
            while node.membership is not None and node.membership.outgoing:
                await self._changed.wait()
            target = node.last_index
            while node.commit_index < target and node.role is Role.LEADER:
                await self._changed.wait()
            return
        raise self._timeout("the joint configuration was not left in time")

    def _add_address(self, node_id: int, address: tuple[str, int]) -> None:
        # Only a leader dials a new member: a follower asked to would connect to it for nothing
        # and then refuse the change anyway.
        self._check_running()
        if self.node.role is not Role.LEADER:
            raise self._not_leader()
        self._addresses[node_id] = address
        add_peer = getattr(self._transport, "add_peer", None)
        if add_peer is not None:
            add_peer(node_id, address)

    def status(self) -> ServerStatus:
        """Role, term, leader, commit and applied index, membership, peers' progress."""
        node = self.node
        return ServerStatus(
            node_id=node.node_id,
            role=node.role,
            term=node.term,
            leader_id=node.leader_id,
            leader_address=self._addresses.get(node.leader_id)
            if node.leader_id is not None
            else None,
            commit_index=node.commit_index,
            applied_index=self._applied,
            last_index=node.last_index,
            membership=node.membership,
            progress={
                peer: PeerProgress(p.match_index, p.next_index, p.state.name, p.recent_active)
                for peer, p in node.progress().items()
            },
            pending_proposals=len(self._queued) + len(self._by_index),
            pending_bytes=self._pending_bytes,
            persists=self._persists,
            max_persist_seconds=self._max_persist,
            sessions=len(self._sessions),
            disk_full=self._disk_full is not None,
        )

    async def wait_for_leader(self, *, timeout: float | None = None) -> int:
        """Wait until this node knows a leader; its id. `NoQuorum` if none in time."""
        self._check_running()
        with trio.move_on_after(self._request_timeout if timeout is None else timeout):
            while self.node.leader_id is None:
                await self._changed.wait()
            return self.node.leader_id
        raise NoQuorum(f"node {self.node.node_id} knows no leader")

    async def wait_applied(self, index: int, *, timeout: float | None = None) -> None:
        """Wait until this replica applied `index`."""
        self._check_running()
        with trio.move_on_after(self._request_timeout if timeout is None else timeout):
            while self._applied < index:
                await self._changed.wait()
            return
        raise self._timeout(f"index {index} not applied here (applied {self._applied})")

    # ---- helpers -----------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self._running:
            raise _stopped_error(self._stopped)

    def _not_leader(self, reason: str | None = None) -> NotLeader:
        node = self.node
        leader = node.leader_id
        if leader == node.node_id:
            leader = None
        return NotLeader(node.node_id, leader, self._addresses.get(leader or 0), reason)

    def _translate(self, error: BaseException) -> NotLeader:
        if isinstance(error, LeadershipTransferInProgress):
            return NotLeader(
                self.node.node_id,
                error.target,
                self._addresses.get(error.target),
                "leadership is being transferred",
            )
        return self._not_leader()

    def _timeout(self, what: str) -> Timeout:
        node = self.node
        if node.leader_id is None:
            return NoQuorum(f"node {node.node_id}: {what}; no leader known")
        return Timeout(f"node {node.node_id}: {what}")


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (0 < value < math.inf if positive else 0 <= value < math.inf)
    ):
        kind = "a positive number" if positive else "a number >= 0"
        raise ValueError(f"{name} must be {kind} of seconds, got {value!r}")


def _stopped_error(cause: BaseException | None) -> ServerStopped:
    error = ServerStopped("the server is not running" + (f" (failed: {cause!r})" if cause else ""))
    error.__cause__ = cause
    return error


__all__ = ["PeerProgress", "RaftServer", "ServerStatus"]
