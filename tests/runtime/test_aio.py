"""`raft.aio`: the trio `RaftServer` on an asyncio loop (trio guest mode), tested under plain
asyncio (`asyncio.run` in sync test functions: pytest-trio's trio_mode leaves them alone)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

import raft.aio
from raft.core import CommandTooLarge, Config, Role
from raft.runtime import MemoryHub, NotLeader, ServerStopped, TcpTransport, Timeout
from raft.storage import MemoryStorage
from statemachines import KVResult, KVStore, encode_put

TICK = 0.01  # election timeout 0.1-0.2 s of real time


def _new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    # trio's guest mode waits for I/O in a thread of trio's thread cache, which idles up to
    # 10 s for reuse after the run ended (a daemon, shared by every trio run of the process).
    return {
        t
        for t in set(threading.enumerate()) - before
        if t.is_alive() and not t.name.startswith("Trio thread")
    }


def _run(main: Callable[[], Awaitable[None]]) -> None:
    """Run `main` under asyncio and check it left nothing behind."""
    before = set(threading.enumerate())

    async def checked() -> None:
        await main()
        loop = asyncio.get_running_loop()
        assert loop not in raft.aio._runs, "the trio guest run outlived its users"
        assert asyncio.all_tasks() == {asyncio.current_task()}, "leaked asyncio tasks"

    asyncio.run(checked())
    assert not _new_threads(before)


class _Cluster:
    def __init__(self, stack: AsyncExitStack, hub: MemoryHub | None = None) -> None:
        self.stack = stack
        self.hub = hub or MemoryHub(round_trip=True)
        self.servers: dict[int, raft.aio.RaftServer] = {}

    async def start(self, voters: tuple[int, ...] = (1, 2, 3), **options: Any) -> None:
        for node_id in voters:
            server = raft.aio.RaftServer(
                Config(node_id=node_id, voters=voters),
                MemoryStorage(),
                self.hub.connect(node_id),
                KVStore(),
                rng=random.Random(node_id),
                tick_interval=TICK,
                addresses={i: f"node-{i}" for i in voters},
                **options,
            )
            self.servers[node_id] = await self.stack.enter_async_context(server)

    async def leader(self) -> raft.aio.RaftServer:
        leader_id = await self.servers[1].wait_for_leader()
        async with asyncio.timeout(5):
            while self.servers[leader_id].status().role is not Role.LEADER:
                await asyncio.sleep(TICK)
        return self.servers[leader_id]

    def follower(self, leader: raft.aio.RaftServer) -> raft.aio.RaftServer:
        return next(s for s in self.servers.values() if s is not leader)


def test_elects_writes_and_reads_linearizably_on_a_follower() -> None:
    async def main() -> None:
        async with AsyncExitStack() as stack:
            cluster = _Cluster(stack)
            await cluster.start()
            leader = await cluster.leader()
            assert await leader.apply(encode_put("x", 1)) == KVResult(ok=True, value=None)
            assert await leader.apply(encode_put("x", 2)) == KVResult(ok=True, value=1)
            for server in cluster.servers.values():  # ReadIndex, on followers too
                assert await server.read(lambda kv: kv.get("x")) == 2
            index = leader.status().applied_index
            follower = cluster.follower(leader)
            await follower.wait_applied(index)
            assert await follower.read(lambda kv: kv.get("x"), consistency="stale") == 2
            status = leader.status()
            assert status.leader_id == leader.server.node.node_id
            assert status.commit_index == status.applied_index == index

    _run(main)


def test_concurrent_writes_from_many_asyncio_tasks() -> None:
    async def main() -> None:
        async with AsyncExitStack() as stack:
            cluster = _Cluster(stack)
            await cluster.start()
            leader = await cluster.leader()
            results = await asyncio.gather(
                *(leader.apply(encode_put(f"k{i}", i)) for i in range(50))
            )
            assert all(r == KVResult(ok=True, value=None) for r in results)
            assert await cluster.follower(leader).read(lambda kv: kv.get("k49")) == 49

    _run(main)


def test_typed_errors_cross_into_asyncio() -> None:
    async def main() -> None:
        async with AsyncExitStack() as stack:
            cluster = _Cluster(stack)
            await cluster.start()
            leader = await cluster.leader()
            follower = cluster.follower(leader)
            leader_id = leader.server.node.node_id
            with pytest.raises(NotLeader) as caught:
                await follower.apply(encode_put("x", 1))
            assert caught.value.leader_id == leader_id
            assert caught.value.leader_address == f"node-{leader_id}"
            with pytest.raises(CommandTooLarge):
                await leader.apply(b"x" * (Config(node_id=1, voters=(1,)).max_bytes_per_message))
            with pytest.raises(ValueError, match="consistency"):
                await leader.read(lambda kv: None, consistency="sloppy")  # type: ignore[arg-type]
            with pytest.raises(ZeroDivisionError):  # a failing query fails the call, not the node
                await leader.read(lambda kv: 1 / 0)
            for peer in cluster.servers:  # the leader alone: writes cannot commit
                cluster.hub.set_link(leader_id, peer, up=False)
            with pytest.raises(Timeout):
                await leader.apply(encode_put("y", 1), timeout=0.1)

    _run(main)


def test_cancelling_the_asyncio_caller_cancels_the_trio_call() -> None:
    async def main() -> None:
        async with AsyncExitStack() as stack:
            cluster = _Cluster(stack)
            await cluster.start(voters=(1, 2))
            leader = await cluster.leader()
            leader_id = leader.server.node.node_id
            cluster.hub.set_link(leader_id, 3 - leader_id, up=False)
            task = asyncio.create_task(leader.apply(encode_put("x", 1), timeout=60))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(TimeoutError):  # asyncio's own timeouts work the same way
                async with asyncio.timeout(0.05):
                    await leader.apply(encode_put("x", 2), timeout=60)
            cluster.hub.set_link(leader_id, 3 - leader_id, up=True)
            assert await leader.apply(encode_put("y", 2)) == KVResult(ok=True, value=None)

    _run(main)


class _BrokenStorage(MemoryStorage):
    broken = False

    def append(self, entries: Any) -> None:
        if self.broken:
            raise OSError("the disk is on fire")
        super().append(entries)


def test_a_failing_server_cancels_the_body_and_raises_its_error_as_in_trio() -> None:
    async def main() -> None:
        storage = _BrokenStorage()
        server = raft.aio.RaftServer(
            Config(node_id=1, voters=(1,)),
            storage,
            MemoryHub().connect(1),
            KVStore(),
            rng=random.Random(1),
            tick_interval=TICK,
        )
        reached = False
        with pytest.raises(BaseExceptionGroup) as caught:
            async with server:
                await server.wait_for_leader()
                storage.broken = True
                with pytest.raises(asyncio.CancelledError):  # the body is cancelled...
                    await server.apply(encode_put("x", 1))
                reached = True
                raise asyncio.CancelledError  # ...as it would be if not caught above
        assert reached
        assert caught.group_contains(OSError, match="on fire")  # ...and the error comes out
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        with pytest.raises(ServerStopped):
            await server.apply(encode_put("x", 2))

    _run(main)


def test_calls_after_exit_raise_server_stopped_and_the_guest_run_restarts() -> None:
    async def main() -> None:
        for _ in range(2):  # the guest run stops with its last user, and starts again
            async with AsyncExitStack() as stack:
                cluster = _Cluster(stack)
                await cluster.start(voters=(1,))
                server = cluster.servers[1]
                assert await server.wait_for_leader() == 1
            assert not raft.aio._runs
            with pytest.raises(ServerStopped):
                await server.apply(encode_put("x", 1))

    _run(main)


def test_run_trio_and_trio_context_with_a_tcp_transport() -> None:
    async def main() -> None:
        assert await raft.aio.run_trio(trio.sleep, 0) is None
        with pytest.raises(KeyError):
            await raft.aio.run_trio(_raise_key_error)
        transport = TcpTransport(
            node_id=1, cluster_id="aio", peers={}, rng=random.Random(1), secret=b"s" * 32
        )
        async with raft.aio.trio_context(transport) as entered:
            assert entered is transport and transport.port > 0
            async with raft.aio.RaftServer(
                Config(node_id=1, voters=(1,)),
                MemoryStorage(),
                transport,
                KVStore(),
                rng=random.Random(1),
                tick_interval=TICK,
            ) as server:
                await server.wait_for_leader()
                assert await server.apply(encode_put("x", 1)) == KVResult(ok=True, value=None)

    _run(main)


async def _raise_key_error() -> None:
    await trio.lowlevel.checkpoint()
    raise KeyError("from trio")


def test_each_loop_gets_its_own_guest_run() -> None:
    # Two asyncio loops in two threads: a loop can host one trio guest run, so each has its own.
    results: list[object] = []
    both_running = threading.Barrier(2, timeout=5)

    async def one_node() -> None:
        async with AsyncExitStack() as stack:
            cluster = _Cluster(stack)
            await cluster.start(voters=(1,))
            server = cluster.servers[1]
            await server.wait_for_leader()
            await asyncio.to_thread(both_running.wait)
            results.append(await server.apply(encode_put("x", 1)))
        assert asyncio.get_running_loop() not in raft.aio._runs

    def run() -> None:
        try:
            asyncio.run(one_node())
        except BaseException as error:
            results.append(error)

    before = set(threading.enumerate())
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [KVResult(ok=True, value=None)] * 2
    assert not raft.aio._runs
    assert not _new_threads(before)
