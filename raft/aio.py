"""Run the trio `RaftServer` inside an asyncio program, through trio's guest mode.

`raft.aio.RaftServer` takes the same arguments as `raft.RaftServer` and offers the same calls as
asyncio awaitables::

    async with raft.aio.RaftServer(config, storage, hub.connect(1), KVStore(), rng=rng) as s:
        leader = await s.wait_for_leader()
        result = await s.apply(encode_put("x", 1))

How it works. The first `raft.aio` object entered on a running asyncio loop starts one trio
*guest run* on it (`trio.lowlevel.start_guest_run`): trio's tasks then run as callbacks of the
asyncio loop, on the loop's thread, while trio waits for I/O in a helper thread of its own.
Each loop has one guest run (trio allows no more), shared by every server and `trio_context`
entered on it: that is what lets three servers on one `MemoryHub` talk (the hub hands messages
between trio channels, which must belong to one trio run). The run is stopped, and awaited,
when the last of them exits.

A call crosses from asyncio into trio with `TrioToken.run_sync_soon` (which wakes the guest
run), which starts a task in the guest run's nursery; that task resolves an asyncio future
(directly: it runs on the loop's thread, inside an asyncio callback) and the asyncio side awaits
the future. Cancelling the asyncio side cancels the trio task. Errors cross as they are: the
same typed exceptions (`NotLeader`, `Timeout`, ...) that trio callers get.

Because both sides run on one thread, nothing runs concurrently: `status()` and the `server`
property are plain synchronous reads, and `read`'s query runs on this thread too.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Literal, TypeVar

import outcome
import trio

from raft.core import Config, Storage
from raft.runtime import RaftServer as TrioRaftServer
from raft.runtime import ServerStatus, ServerStopped, Transport

T = TypeVar("T")
Consistency = Literal["linearizable", "lease", "stale"]


class _GuestRun:
    """The one trio guest run on one asyncio loop; reference-counted by its users."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.users = 0
        self.stopping = False
        self.ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[outcome.Outcome[None]] = loop.create_future()
        self.token: trio.lowlevel.TrioToken | None = None
        self.nursery: trio.Nursery | None = None

    def start(self) -> None:
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=self.loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=self.loop.call_soon,
            done_callback=self._finished,
            host_uses_signal_set_wakeup_fd=True,
        )

    async def _main(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.token = trio.lowlevel.current_trio_token()
                if not self.ready.done():
                    self.ready.set_result(None)
                await trio.sleep_forever()
        finally:
            if not self.ready.done():
                self.ready.set_exception(ServerStopped("the trio guest run did not start"))

    def _finished(self, result: outcome.Outcome[None]) -> None:
        if not self.ready.done():
            self.ready.set_exception(ServerStopped("the trio guest run did not start"))
        if not self.done.done():
            self.done.set_result(result)

    def soon(self, fn: Callable[[], object]) -> None:
        """Run `fn()` inside the guest run (as a trio callback, not in a task)."""
        assert self.token is not None
        try:
            self.token.run_sync_soon(fn)
        except trio.RunFinishedError:
            raise ServerStopped("the trio guest run stopped") from None

    def stop(self) -> None:
        self.stopping = True
        nursery = self.nursery
        if nursery is not None:
            self.soon(nursery.cancel_scope.cancel)


_runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GuestRun] = weakref.WeakKeyDictionary()


async def _acquire() -> _GuestRun:
    loop = asyncio.get_running_loop()
    while True:
        run = _runs.get(loop)
        if run is None:
            run = _GuestRun(loop)
            run.start()  # raises if the loop already has a guest run of someone else's
            _runs[loop] = run
        elif run.stopping:  # the last user is leaving: let that run end, then start anew
            await asyncio.shield(run.done)
            if _runs.get(loop) is run:
                del _runs[loop]
            continue
        run.users += 1
        try:
            await asyncio.shield(run.ready)
        except BaseException:
            await _release(run)
            raise
        return run


async def _release(run: _GuestRun) -> None:
    run.users -= 1
    if run.users > 0:
        return
    if not run.ready.done():  # still starting: it is stopped once it started
        with contextlib.suppress(Exception):
            await _wait_out(run.ready)
    run.stop()
    result = await _wait_out(run.done)
    if _runs.get(run.loop) is run:
        del _runs[run.loop]
    result.unwrap()  # the guest run itself failing is a bug here: say so loudly


async def _wait_out(future: asyncio.Future[T]) -> T:
    """Await `future` even through cancellation (the trio side must finish before we go on),
    and re-deliver the cancellation afterwards."""
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


async def _call(run: _GuestRun, afn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
    """Run `await afn(*args, **kw)` as a task of the guest run and return (or raise) its
    outcome on the asyncio side; cancelling the caller cancels that task."""
    loop = run.loop
    future: asyncio.Future[T] = loop.create_future()
    scope = trio.CancelScope()

    async def task() -> None:
        try:
            with scope:
                value = await afn(*args, **kw)
                if not future.done():
                    future.set_result(value)
        except trio.Cancelled:  # the guest run is stopping under us
            if not future.done():
                future.set_exception(ServerStopped("the trio guest run stopped"))
            raise
        except BaseException as error:
            if not future.done():
                future.set_exception(error)
            if not isinstance(error, Exception):  # KeyboardInterrupt and kin go on, too
                raise
        else:
            if not future.done():  # cancelled from the asyncio side; nobody is waiting
                future.cancel()

    def spawn() -> None:
        assert run.nursery is not None
        run.nursery.start_soon(task)

    run.soon(spawn)
    try:
        return await future
    except asyncio.CancelledError:
        if not future.done() or future.cancelled():
            with contextlib.suppress(ServerStopped):  # a stopped run cancelled it already
                run.soon(scope.cancel)
        raise


async def run_trio(afn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run trio code, `await afn(*args)`, in this loop's trio guest run and return its result
    (or raise its exception). Cancelling the awaiting asyncio task cancels it."""
    run = await _acquire()
    try:
        return await _call(run, afn, *args)
    finally:
        await _release(run)


async def run_trio_sync(fn: Callable[..., T], *args: Any) -> T:
    """Call synchronous trio code, `fn(*args)`, inside this loop's trio guest run (in a trio
    task, where it may start tasks: `TcpTransport.add_peer`, say) and return its result."""

    async def call() -> T:
        return fn(*args)

    return await run_trio(call)


class _Held:
    """A trio async context manager held open by a task of the guest run."""

    def __init__(self, run: _GuestRun, on_failure: Callable[[BaseException], None] | None):
        self.run = run
        self.scope = trio.CancelScope()
        self.exited: asyncio.Future[BaseException | None] = run.loop.create_future()
        self.on_failure = on_failure
        self.releasing = False

    async def hold(
        self,
        manager: AbstractAsyncContextManager[T],
        *,
        task_status: trio.TaskStatus[T] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        entered = False
        error: BaseException | None = None
        try:
            with self.scope:
                async with manager as value:
                    entered = True
                    task_status.started(value)
                    await trio.sleep_forever()
        except BaseException as exc:
            if not entered or isinstance(exc, trio.Cancelled):
                raise
            error = exc  # the manager failed while held (a server stopping loudly)
        finally:
            if entered:
                if not self.exited.done():
                    self.exited.set_result(error)
                if error is not None and not self.releasing and self.on_failure is not None:
                    self.on_failure(error)

    async def release(self) -> BaseException | None:
        self.releasing = True
        self.run.soon(self.scope.cancel)
        return await _wait_out(self.exited)


@asynccontextmanager
async def trio_context(manager: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter trio async context manager `manager` (a `TcpTransport`, say) inside this loop's
    trio guest run, held by a trio task until the `async with` ends; yields what it yields.
    An error it raises on exit (or while held) is raised here on exit."""
    run = await _acquire()
    try:
        held = _Held(run, None)
        value = await _call(run, _start, run, held.hold, manager)
        try:
            yield value
        finally:
            error = await held.release()
        if error is not None:
            raise error
    finally:
        await _release(run)


async def _start(run: _GuestRun, fn: Callable[..., Awaitable[None]], *args: Any) -> Any:
    assert run.nursery is not None
    return await run.nursery.start(fn, *args)


class RaftServer:
    """`raft.RaftServer` on a running asyncio loop: `async with` it, await its calls.

    Arguments are `raft.RaftServer`'s, passed through unchanged; the transport must already
    run (a `MemoryHub` transport, or a `TcpTransport` entered with `trio_context`). Errors are
    the trio server's own exceptions. If the server fails while running (a storage error, a
    `NodeFailed`), the asyncio task that entered it is cancelled and the failure is raised
    out of the `async with`, as in trio. Leaving the `async with` stops the server and waits
    until its trio tasks ended; the guest run stops when its last user leaves.
    """

    def __init__(
        self,
        config: Config,
        storage: Storage,
        transport: Transport,
        state_machine: Any,
        **options: Any,
    ) -> None:
        self._server = TrioRaftServer(config, storage, transport, state_machine, **options)
        self._run: _GuestRun | None = None
        self._held: _Held | None = None
        self._owner: asyncio.Task[Any] | None = None
        self._failure: BaseException | None = None
        self._cancelled_owner = False

    async def __aenter__(self) -> RaftServer:
        if self._run is not None:
            raise RuntimeError("a RaftServer runs once")
        run = self._run = await _acquire()
        try:
            self._held = _Held(run, self._failed)
            self._owner = asyncio.current_task()
            await _call(run, _start, run, self._held.hold, self._server)
        except BaseException:
            self._held = None
            await _release(run)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._run is not None and self._held is not None
        held, self._held = self._held, None
        self._owner = None
        try:
            error = await held.release()
        finally:
            await _release(self._run)
        if error is not None:
            task = asyncio.current_task()
            if self._cancelled_owner and task is not None and task.cancelling():
                task.uncancel()  # the cancellation was ours: the failure replaces it
            raise error
        return None

    def _failed(self, error: BaseException) -> None:
        # As in trio: a server that stops loudly cancels the body of its `async with`.
        self._failure = error
        owner = self._owner
        if owner is not None and not owner.done():
            self._cancelled_owner = True
            owner.cancel(f"the RaftServer failed: {error!r}")

    async def _do(self, afn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        run = self._run
        if run is None or self._held is None:
            raise ServerStopped("the server is not running")
        return await _call(run, afn, *args, **kw)

    @property
    def server(self) -> TrioRaftServer:
        """The trio `RaftServer` underneath (inspect it from this loop's thread only)."""
        return self._server

    @property
    def state_machine(self) -> Any:
        """The state machine the committed log is applied to."""
        return self._server.state_machine

    def status(self) -> ServerStatus:
        """As `raft.RaftServer.status` (a synchronous read: same thread as the guest run)."""
        return self._server.status()

    async def apply(
        self, command: bytes, *, client_id: int = 0, seq: int = 0, timeout: float | None = None
    ) -> object:
        """As `raft.RaftServer.apply`."""
        return await self._do(
            self._server.apply, command, client_id=client_id, seq=seq, timeout=timeout
        )

    async def read(
        self,
        query: Callable[[Any], T],
        *,
        consistency: Consistency = "linearizable",
        timeout: float | None = None,
    ) -> T:
        """As `raft.RaftServer.read`; `query` runs on this thread, inside the guest run."""
        return await self._do(self._server.read, query, consistency=consistency, timeout=timeout)

    async def transfer_leadership(self, target: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.transfer_leadership`."""
        await self._do(self._server.transfer_leadership, target, timeout=timeout)

    async def add_learner(
        self, node_id: int, address: tuple[str, int] | None = None, *, timeout: float | None = None
    ) -> None:
        """As `raft.RaftServer.add_learner`."""
        await self._do(self._server.add_learner, node_id, address, timeout=timeout)

    async def promote_learner(self, node_id: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.promote_learner`."""
        await self._do(self._server.promote_learner, node_id, timeout=timeout)

    async def add_voter(
        self, node_id: int, address: tuple[str, int] | None = None, *, timeout: float | None = None
    ) -> None:
        """As `raft.RaftServer.add_voter`."""
        await self._do(self._server.add_voter, node_id, address, timeout=timeout)

    async def remove_voter(self, node_id: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.remove_voter`."""
        await self._do(self._server.remove_voter, node_id, timeout=timeout)

    async def remove_learner(self, node_id: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.remove_learner`."""
        await self._do(self._server.remove_learner, node_id, timeout=timeout)

    async def change_membership(
        self,
        voters: tuple[int, ...],
        learners: tuple[int, ...] = (),
        *,
        timeout: float | None = None,
    ) -> None:
        """As `raft.RaftServer.change_membership`."""
        await self._do(self._server.change_membership, voters, learners, timeout=timeout)

    async def wait_for_leader(self, *, timeout: float | None = None) -> int:
        """As `raft.RaftServer.wait_for_leader`."""
        return await self._do(self._server.wait_for_leader, timeout=timeout)

    async def wait_applied(self, index: int, *, timeout: float | None = None) -> None:
        """As `raft.RaftServer.wait_applied`."""
        await self._do(self._server.wait_applied, index, timeout=timeout)


__all__ = ["RaftServer", "run_trio", "run_trio_sync", "trio_context"]
