"""`raft.sync`: the trio `RaftServer` in a background thread, driven by blocking calls."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import trio

import raft.sync
from raft.core import CommandTooLarge, Config, Role
from raft.runtime import MemoryHub, NotLeader, ServerStopped, TcpTransport, Timeout
from raft.storage import MemoryStorage
from statemachines import KVResult, KVStore, encode_put

TICK = 0.01  # election timeout 0.1-0.2 s of real time


@contextmanager
def _no_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert raft.sync._current is None, "the trio thread outlived its users"
    # trio's own worker-thread cache may hold idle daemon threads (FileStorage persists in
    # them); none are used here, so any new thread is ours.
    leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not leaked, leaked


class _Cluster:
    def __init__(self, stack: ExitStack, hub: MemoryHub | None = None) -> None:
        self.stack = stack
        self.hub = hub or MemoryHub(round_trip=True)
        self.servers: dict[int, raft.sync.RaftServer] = {}

    def start(self, voters: tuple[int, ...] = (1, 2, 3), **options: Any) -> None:
        for node_id in voters:
            server = raft.sync.RaftServer(
                Config(node_id=node_id, voters=voters),
                MemoryStorage(),
                self.hub.connect(node_id),
                KVStore(),
                rng=random.Random(node_id),
                tick_interval=TICK,
                addresses={i: f"node-{i}" for i in voters},
                **options,
            )
            self.servers[node_id] = self.stack.enter_context(server)

    def leader(self) -> raft.sync.RaftServer:
        leader_id = self.servers[1].wait_for_leader()
        deadline = time.monotonic() + 5
        while self.servers[leader_id].status().role is not Role.LEADER:
            assert time.monotonic() < deadline
            time.sleep(TICK)
        return self.servers[leader_id]

    def follower(self, leader: raft.sync.RaftServer) -> raft.sync.RaftServer:
        return next(s for s in self.servers.values() if s is not leader)


def test_elects_writes_and_reads_linearizably_on_a_follower() -> None:
    with _no_leaks(), ExitStack() as stack:
        cluster = _Cluster(stack)
        cluster.start()
        leader = cluster.leader()
        assert leader.apply(encode_put("x", 1)) == KVResult(ok=True, value=None)
        assert leader.apply(encode_put("x", 2)) == KVResult(ok=True, value=1)
        for server in cluster.servers.values():  # ReadIndex, on followers too
            assert server.read(lambda kv: kv.get("x")) == 2
        index = leader.status().applied_index
        follower = cluster.follower(leader)
        follower.wait_applied(index)
        assert follower.read(lambda kv: kv.get("x"), consistency="stale") == 2
        status = leader.status()
        assert status.leader_id == leader.node_id
        assert status.commit_index == status.applied_index == index


def test_writes_from_many_threads_at_once() -> None:
    with _no_leaks(), ExitStack() as stack:
        cluster = _Cluster(stack)
        cluster.start()
        leader = cluster.leader()
        results: list[object] = []

        def write(i: int) -> None:
            results.append(leader.apply(encode_put(f"k{i}", i)))

        writers = [threading.Thread(target=write, args=(i,)) for i in range(20)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert results == [KVResult(ok=True, value=None)] * 20
        assert cluster.follower(leader).read(lambda kv: kv.get("k19")) == 19


def test_typed_errors_cross_into_the_calling_thread() -> None:
    with _no_leaks(), ExitStack() as stack:
        cluster = _Cluster(stack)
        cluster.start()
        leader = cluster.leader()
        follower = cluster.follower(leader)
        with pytest.raises(NotLeader) as caught:
            follower.apply(encode_put("x", 1))
        assert caught.value.leader_id == leader.node_id
        assert caught.value.leader_address == f"node-{leader.node_id}"
        with pytest.raises(CommandTooLarge):
            leader.apply(b"x" * Config(node_id=1, voters=(1,)).max_bytes_per_message)
        with pytest.raises(ValueError, match="consistency"):
            leader.read(lambda kv: None, consistency="sloppy")  # type: ignore[arg-type]
        with pytest.raises(ZeroDivisionError):  # a failing query fails the call, not the node
            leader.read(lambda kv: 1 / 0)
        for peer in cluster.servers:  # the leader alone: writes cannot commit
            cluster.hub.set_link(leader.node_id, peer, up=False)
        with pytest.raises(Timeout):
            leader.apply(encode_put("y", 1), timeout=0.1)


def test_callbacks_see_the_leader_and_the_applied_index_on_their_own_thread() -> None:
    leaders: list[tuple[int | None, int]] = []
    applied: list[int] = []
    threads: set[str] = set()
    done = threading.Event()

    def on_leader_change(leader_id: int | None, term: int) -> None:
        threads.add(threading.current_thread().name)
        leaders.append((leader_id, term))

    def on_applied(index: int) -> None:
        threads.add(threading.current_thread().name)
        applied.append(index)
        if index >= 3:
            done.set()

    with _no_leaks(), ExitStack() as stack:
        cluster = _Cluster(stack)
        cluster.start(voters=(1,), on_leader_change=on_leader_change, on_applied=on_applied)
        server = cluster.leader()
        server.apply(encode_put("x", 1))
        server.apply(encode_put("x", 2))
        assert done.wait(5)
    assert leaders[0] == (None, 0) and leaders[-1][0] == 1
    assert applied == sorted(applied) and applied[-1] >= 3
    assert threads == {"raft.sync callbacks 1"}


class _BrokenStorage(MemoryStorage):
    broken = False

    def append(self, entries: Any) -> None:
        if self.broken:
            raise OSError("the disk is on fire")
        super().append(entries)


def test_a_failing_server_stops_and_close_raises_its_error() -> None:
    storage = _BrokenStorage()
    with _no_leaks():
        server = raft.sync.RaftServer(
            Config(node_id=1, voters=(1,)),
            storage,
            MemoryHub().connect(1),
            KVStore(),
            rng=random.Random(1),
            tick_interval=TICK,
        ).open()
        server.wait_for_leader()
        storage.broken = True
        with pytest.raises(ServerStopped) as stopped:
            server.apply(encode_put("x", 1))
        assert isinstance(stopped.value.__cause__, BaseExceptionGroup)
        with pytest.raises(ServerStopped):
            server.apply(encode_put("x", 2))
        with pytest.raises(BaseExceptionGroup) as caught:
            server.close()
        assert caught.group_contains(OSError, match="on fire")
        server.close()  # twice: nothing more


def test_calls_after_close_raise_server_stopped_and_the_thread_restarts() -> None:
    with _no_leaks():
        for _ in range(2):
            with ExitStack() as stack:
                cluster = _Cluster(stack)
                cluster.start(voters=(1,))
                server = cluster.servers[1]
                assert server.wait_for_leader() == 1
            with pytest.raises(ServerStopped):
                server.apply(encode_put("x", 1))
            with pytest.raises(ServerStopped):
                server.status()


def test_run_trio_and_trio_context_with_a_tcp_transport() -> None:
    with _no_leaks():
        assert raft.sync.run_trio(trio.sleep, 0) is None
        with pytest.raises(KeyError):
            raft.sync.run_trio(_raise_key_error)
        transport = TcpTransport(
            node_id=1, cluster_id="sync", peers={}, rng=random.Random(1), secret=b"s" * 32
        )
        with raft.sync.trio_context(transport) as entered:
            assert entered is transport and transport.port > 0
            with raft.sync.RaftServer(
                Config(node_id=1, voters=(1,)),
                MemoryStorage(),
                transport,
                KVStore(),
                rng=random.Random(1),
                tick_interval=TICK,
            ) as server:
                server.wait_for_leader()
                assert server.apply(encode_put("x", 1)) == KVResult(ok=True, value=None)


def test_blocking_calls_from_the_trio_thread_are_refused() -> None:
    with _no_leaks(), ExitStack() as stack:
        cluster = _Cluster(stack)
        cluster.start(voters=(1,))
        server = cluster.servers[1]
        server.wait_for_leader()
        with pytest.raises(RuntimeError, match="another thread"):
            server.read(lambda kv: server.wait_for_leader())


async def _raise_key_error() -> None:
    await trio.lowlevel.checkpoint()
    raise KeyError("from trio")
