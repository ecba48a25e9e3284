"""Run the trio `RaftServer` from threaded code: trio in a background thread, blocking calls.

`raft.sync.RaftServer` takes the same arguments as `raft.RaftServer` and offers the same calls as
blocking methods, callable from any thread but the trio thread itself::

    with raft.sync.RaftServer(config, storage, hub.connect(1), KVStore(), rng=rng) as server:
        leader = server.wait_for_leader()
        result = server.apply(encode_put("x", 1))

How it works. One background thread per process ("raft.sync trio") runs `trio.run`; it is
started by the first `raft.sync` object opened and stopped (joined) when the last one closes,
so servers of one process share it (three servers on one `MemoryHub` must: the hub hands messages
between trio channels of one trio run). Each blocking call is `trio.from_thread.run`: the caller's
thread waits while the call runs as a trio task in the background thread; its result or its
exception (the same typed exceptions trio callers get) comes back to the caller.

Callbacks. `RaftServer` has no change hooks, so `on_leader_change(leader_id, term)` and
`on_applied(applied_index)` are fed by a trio task that polls `status()` every `poll_interval`
seconds; they are called, in order, on a callback thread of that server (never on the trio
thread, so a slow callback never stalls the node, and a callback may call the server's blocking
methods). Quick changes between two polls are seen as one.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from types import TracebackType
from typing import Any, Literal, TypeVar

import trio

from raft.core import Config, Storage
from raft.runtime import RaftServer as TrioRaftServer
from raft.runtime import ServerStatus, ServerStopped, Transport

T = TypeVar("T")
Consistency = Literal["linearizable", "lease", "stale"]
_log = logging.getLogger("raft.sync")


class _TrioThread:
    """The background thread running `trio.run`; reference-counted by its users."""

    def __init__(self) -> None:
        self.users = 0
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.nursery: trio.Nursery | None = None
        self.thread = threading.Thread(target=self._run, name="raft.sync trio", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._ready.wait()
        if self.token is None:
            raise ServerStopped("the trio thread did not start") from self._failure

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # a bug: keep it for whoever waits, and log it
            self._failure = error
            _log.exception("the raft.sync trio thread failed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await trio.sleep_forever()

    def call(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("raft.sync calls block: make them from another thread")
        try:
            return trio.from_thread.run(afn, *args, trio_token=self.token)
        except trio.RunFinishedError:
            raise ServerStopped("the trio thread stopped") from self._failure

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        if threading.current_thread() is self.thread:
            return fn(*args)
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=self.token)
        except trio.RunFinishedError:
            raise ServerStopped("the trio thread stopped") from self._failure

    def stop(self) -> None:
        assert self.nursery is not None
        with contextlib.suppress(ServerStopped):  # it stopped already (and logged why)
            self.call_sync(self.nursery.cancel_scope.cancel)
        self.thread.join()


_lock = threading.Lock()
_current: _TrioThread | None = None


def _acquire() -> _TrioThread:
    global _current  # noqa: PLW0603 (one trio thread per process, shared by its users)
    with _lock:
        if _current is None:
            thread = _TrioThread()
            thread.start()
            _current = thread
        _current.users += 1
        return _current


def _release(thread: _TrioThread) -> None:
    global _current  # noqa: PLW0603
    with _lock:
        thread.users -= 1
        if thread.users > 0:
            return
        if _current is thread:
            _current = None
        thread.stop()


def run_trio(afn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run trio code, `await afn(*args)`, in the background trio thread; block until it is
    done and return its result (or raise its exception)."""
    thread = _acquire()
    try:
        return thread.call(afn, *args)
    finally:
        _release(thread)


def run_trio_sync(fn: Callable[..., T], *args: Any) -> T:
    """Call synchronous trio code, `fn(*args)`, in the background trio thread (where it may
    start tasks: `TcpTransport.add_peer`, say); block until it returned, and return that."""
    thread = _acquire()
    try:
        return thread.call_sync(fn, *args)
    finally:
        _release(thread)


class _Held:
    """A trio async context manager held open by a task of the trio thread."""

    def __init__(self, thread: _TrioThread) -> None:
        self.thread = thread
        self.scope = trio.CancelScope()
        self.exited = threading.Event()
        self.error: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.releasing = False

    async def start(
        self,
        manager: AbstractAsyncContextManager[Any],
        background: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any:
        assert self.thread.nursery is not None
        return await self.thread.nursery.start(self._hold, manager, background)

    async def _hold(
        self,
        manager: AbstractAsyncContextManager[T],
        background: Callable[[T], Awaitable[None]] | None,
        *,
        task_status: trio.TaskStatus[T] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        entered = False
        try:
            with self.scope:
                async with manager as value:
                    entered = True
                    async with trio.open_nursery() as nursery:
                        if background is not None:
                            nursery.start_soon(background, value)
                        task_status.started(value)
                        await trio.sleep_forever()
        except BaseException as exc:
            if not entered or isinstance(exc, trio.Cancelled):
                raise
            self.error = exc  # the manager failed while held (a server stopping loudly)
        finally:
            if entered:
                self.exited.set()
                if self.error is not None and not self.releasing and self.on_failure:
                    self.on_failure(self.error)

    def release(self) -> BaseException | None:
        self.releasing = True
        self.thread.call_sync(self.scope.cancel)
        self.exited.wait()
        return self.error


@contextmanager
def trio_context(manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """Enter trio async context manager `manager` (a `TcpTransport`, say) in the background
    trio thread, held there until the `with` ends; yields what it yields. An error it raises
    on exit (or while held) is raised here on exit. Use what it yields through `run_trio`."""
    thread = _acquire()
    try:
        held = _Held(thread)
        value: T = thread.call(held.start, manager)
        try:
            yield value
        finally:
            error = held.release()
        if error is not None:
            raise error
    finally:
        _release(thread)


class RaftServer:
    """`raft.RaftServer` for threaded code: open it (`with`, or `open()`/`close()`), then call
    its blocking methods from any thread.

    Arguments are `raft.RaftServer`'s, passed through unchanged (the transport must already
    run: a `MemoryHub` transport, or a `TcpTransport` entered with `trio_context`), plus:

    - `on_leader_change(leader_id, term)`: the leader this node knows changed (None: none);
    - `on_applied(index)`: this replica applied up to `index`;
    - `poll_interval`: how often (seconds) `status()` is polled to feed them (default 0.05).

    Errors are the trio server's own exceptions, raised in the calling thread. A server that
    fails while running stops; calls then raise `ServerStopped` (its `__cause__` is the
    failure), and `close()` raises the failure itself.
    """

    def __init__(
        self,
        config: Config,
        storage: Storage,
        transport: Transport,
        state_machine: Any,
        *,
        on_leader_change: Callable[[int | None, int], None] | None = None,
        on_applied: Callable[[int], None] | None = None,
        poll_interval: float = 0.05,
        **options: Any,
    ) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}")
        self._server = TrioRaftServer(config, storage, transport, state_machine, **options)
        self._on_leader_change = on_leader_change
        self._on_applied = on_applied
        self._poll_interval = float(poll_interval)
        self._thread: _TrioThread | None = None
        self._held: _Held | None = None
        self._events: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._callbacks: threading.Thread | None = None
        self._started = False

    # ---- lifecycle ---------------------------------------------------------------------

    def open(self) -> RaftServer:
        """Start the server (in the background trio thread); returns once it runs."""
        if self._started:
            raise RuntimeError("a RaftServer runs once")
        self._started = True
        thread = self._thread = _acquire()
        held = _Held(thread)
        watching = self._on_leader_change is not None or self._on_applied is not None
        if watching:
            self._callbacks = threading.Thread(
                target=self._dispatch, name=f"raft.sync callbacks {self.node_id}", daemon=True
            )
            self._callbacks.start()
        try:
            thread.call(held.start, self._server, self._watch if watching else None)
        except BaseException:
            self._stop_callbacks()
            self._thread = None
            _release(thread)
            raise
        self._held = held
        return self

    def close(self) -> None:
        """Stop the server and wait until its trio tasks and callback thread ended (the trio
        thread too, when no other `raft.sync` user is left). Raises the server's failure, if
        it failed while running. Closing twice does nothing."""
        thread, held = self._thread, self._held
        if thread is None or held is None:
            return
        self._thread = self._held = None
        try:
            error = held.release()
        finally:
            self._stop_callbacks()
            _release(thread)
        if error is not None:
            raise error

    def __enter__(self) -> RaftServer:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ---- callbacks ---------------------------------------------------------------------

    async def _watch(self, server: TrioRaftServer) -> None:
        leader: tuple[int | None, int] | None = None
        applied = -1
        while True:
            status = server.status()
            if leader is None or (
                status.leader_id != leader[0]
                or (status.leader_id is not None and status.term != leader[1])
            ):
                leader = (status.leader_id, status.term)
                self._events.put(("leader", leader))
            if status.applied_index != applied:
                applied = status.applied_index
                self._events.put(("applied", applied))
            await trio.sleep(self._poll_interval)

    def _dispatch(self) -> None:
        while (event := self._events.get()) is not None:
            kind, value = event
            try:
                if kind == "leader" and self._on_leader_change is not None:
                    self._on_leader_change(*value)
                elif kind == "applied" and self._on_applied is not None:
                    self._on_applied(value)
            except Exception:
                _log.exception("a raft.sync %s callback failed", kind)

    def _stop_callbacks(self) -> None:
        if self._callbacks is not None:
            self._events.put(None)
            self._callbacks.join()
            self._callbacks = None

    # ---- the calls ---------------------------------------------------------------------

    def _do(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        thread = self._thread
        if thread is None:
            raise ServerStopped("the server is not running")
        return thread.call(afn, *args)

    @property
    def node_id(self) -> int:
        """The id of the node this server runs."""
        return self._server.transport.node_id

    @property
    def server(self) -> TrioRaftServer:
        """The trio `RaftServer` underneath; touch it only from the trio thread."""
        return self._server

    def status(self) -> ServerStatus:
        """As `raft.RaftServer.status` (read in the trio thread, so it is consistent)."""
        thread = self._thread
        if thread is None:
            raise ServerStopped("the server is not running")
        return thread.call_sync(self._server.status)

    def apply(
        self, command: bytes, *, client_id: int = 0, seq: int = 0, timeout: float | None = None
    ) -> object:
        """As `raft.RaftServer.apply`, blocking."""

        async def call() -> object:
            return await self._server.apply(command, client_id=client_id, seq=seq, timeout=timeout)

        return self._do(call)

    def read(
        self,
        query: Callable[[Any], T],
        *,
        consistency: Consistency = "linearizable",
        timeout: float | None = None,
    ) -> T:
        """As `raft.RaftServer.read`, blocking; `query` runs in the trio thread (keep it short
        and do not call blocking `raft.sync` methods from it)."""

        async def call() -> T:
            return await self._server.read(query, consistency=consistency, timeout=timeout)

        return self._do(call)

    def transfer_leadership(self, target: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.transfer_leadership`, blocking."""

        async def call() -> None:
            await self._server.transfer_leadership(target, timeout=timeout)

        self._do(call)

    def add_learner(
        self, node_id: int, address: tuple[str, int] | None = None, *, timeout: float | None = None
    ) -> None:
        """As `raft.RaftServer.add_learner`, blocking."""

        async def call() -> None:
            await self._server.add_learner(node_id, address, timeout=timeout)

        self._do(call)

    def promote_learner(self, node_id: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.promote_learner`, blocking."""

        async def call() -> None:
            await self._server.promote_learner(node_id, timeout=timeout)

        self._do(call)

    def add_voter(
        self, node_id: int, address: tuple[str, int] | None = None, *, timeout: float | None = None
    ) -> None:
        """As `raft.RaftServer.add_voter`, blocking."""

        async def call() -> None:
            await self._server.add_voter(node_id, address, timeout=timeout)

        self._do(call)

    def remove_voter(self, node_id: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.remove_voter`, blocking."""

        async def call() -> None:
            await self._server.remove_voter(node_id, timeout=timeout)

        self._do(call)

    def remove_learner(self, node_id: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.remove_learner`, blocking."""

        async def call() -> None:
            await self._server.remove_learner(node_id, timeout=timeout)

        self._do(call)

    def change_membership(
        self,
        voters: tuple[int, ...],
        learners: tuple[int, ...] = (),
        *,
        timeout: float | None = None,
    ) -> None:
        """As `raft.RaftServer.change_membership`, blocking."""

        async def call() -> None:
            await self._server.change_membership(voters, learners, timeout=timeout)

        self._do(call)

    def wait_for_leader(self, *, timeout: float | None = None) -> int:
        """As `raft.RaftServer.wait_for_leader`, blocking."""

        async def call() -> int:
            return await self._server.wait_for_leader(timeout=timeout)

        return self._do(call)

    def wait_applied(self, index: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.wait_applied`, blocking."""

        async def call() -> None:
            await self._server.wait_applied(index, timeout=timeout)

        self._do(call)


__all__ = ["RaftServer", "run_trio", "run_trio_sync", "trio_context"]
