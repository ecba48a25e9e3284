"""`RaftServer` for real: TCP on loopback, `FileStorage` fsyncing in worker threads, trio's
real clock; and a slow disk that must not cost a follower its leader."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from raft.core import Config, Entry, RaftError, Role
from raft.runtime import MemoryHub, RaftServer, TcpTransport
from raft.storage import FileStorage, MemoryStorage
from statemachines import KVResult, KVStore, encode_put

SECRET = b"loopback test secret, sixteen bytes or more"
TICK = 0.02


@asynccontextmanager
async def _tcp_cluster(
    directory: Path, voters: Sequence[int]
) -> AsyncIterator[dict[int, RaftServer]]:
    async with AsyncExitStack() as stack:
        transports = {}
        for node_id in voters:
            transport = TcpTransport(
                node_id=node_id,
                cluster_id="loopback",
                peers={},
                rng=random.Random(node_id),
                secret=SECRET,
                port=0,
            )
            transports[node_id] = await stack.enter_async_context(transport)
        for node_id, transport in transports.items():
            for peer, other in transports.items():
                if peer != node_id:
                    transport.add_peer(peer, ("127.0.0.1", other.port))
        servers = {}
        for node_id, transport in transports.items():
            storage = stack.enter_context(FileStorage(directory / f"node-{node_id}"))
            server = RaftServer(
                Config(node_id=node_id, voters=tuple(voters)),
                storage,
                transport,
                KVStore(),
                rng=random.Random(node_id),
                tick_interval=TICK,
                addresses={i: ("127.0.0.1", t.port) for i, t in transports.items()},
            )
            servers[node_id] = await stack.enter_async_context(server)
        yield servers


async def _leader(servers: dict[int, RaftServer]) -> RaftServer:
    with trio.fail_after(10):
        while True:
            leaders = [s for s in servers.values() if s.node.role is Role.LEADER]
            if len(leaders) == 1:
                return leaders[0]
            await trio.sleep(TICK)


async def test_three_servers_over_tcp_with_file_storage(tmp_path: Path) -> None:
    async with _tcp_cluster(tmp_path, (1, 2, 3)) as servers:
        leader = await _leader(servers)
        results = []

        async def put(i: int) -> None:
            results.append(await leader.apply(encode_put(f"k{i}", i)))

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(put, i)
        assert results == [KVResult(True, None)] * 100
        assert await leader.read(lambda kv: kv.get("k42")) == 42
        follower = next(s for s in servers.values() if s is not leader)
        assert await follower.read(lambda kv: kv.get("k99")) == 99
        assert leader.status().persists >= 1
        applied = leader.status().applied_index
    # Everything is on disk: reopen a node's directory.
    with FileStorage(tmp_path / f"node-{leader.node.node_id}") as storage:
        assert storage.initial_state().commit >= applied
        assert storage.last_index() >= applied


class _SlowDisk(MemoryStorage):
    """Every write takes `delay` seconds of real time (a stalling disk)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.writes = 0

    def append(self, entries: Sequence[Entry]) -> None:
        time.sleep(self.delay)
        self.writes += 1
        super().append(entries)


async def test_a_follower_with_a_slow_disk_keeps_hearing_its_leader() -> None:
    """Its writes take 5x the election timeout; it steps the leader's heartbeats meanwhile, so it
    never starts an election (with pre-vote off, one would show as a new term)."""
    hub = MemoryHub()
    election = 0.2  # 10 ticks of 20 ms
    voters = (1, 2, 3)
    async with AsyncExitStack() as stack:
        servers = {}
        for node_id in voters:
            storage: MemoryStorage = _SlowDisk(5 * election) if node_id == 3 else MemoryStorage()
            server = RaftServer(
                Config(node_id=node_id, voters=voters, pre_vote=False, election_ticks=10),
                storage,
                hub.connect(node_id),
                KVStore(),
                rng=random.Random(node_id),
                tick_interval=election / 10,
                persist_in_thread=True,
                # only node 3 is a candidate for leader if node 1 leads (see below)
            )
            servers[node_id] = await stack.enter_async_context(server)
        leader = await _leader(servers)
        if leader.node.node_id == 3:
            await leader.transfer_leadership(1)
            leader = servers[1]
        slow = servers[3]
        term = leader.node.term
        for i in range(10):
            await leader.apply(encode_put("x", i))
        await trio.sleep(2)  # many slow writes on node 3 meanwhile
        assert slow.status().max_persist_seconds >= 5 * election * 0.9
        assert leader.node.role is Role.LEADER
        assert {s.node.term for s in servers.values()} == {term}
        assert slow.node.leader_id == leader.node.node_id
        await slow.wait_applied(leader.status().applied_index, timeout=10)


async def test_a_leader_whose_disk_stalls_steps_down_and_the_others_elect() -> None:
    """Past `max_disk_stall` (3 election timeouts by default) the stalled leader stops covering
    for its disk; it keeps ticking, check-quorum sees no acknowledgements and it steps down (no
    stale lease); the others elect a new leader."""
    hub = MemoryHub()
    election = 0.1
    voters = (1, 2, 3)
    disks = {node_id: _SlowDisk(0.0) for node_id in voters}
    async with AsyncExitStack() as stack:
        servers = {}
        for node_id in voters:
            server = RaftServer(
                Config(node_id=node_id, voters=voters, election_ticks=10),
                disks[node_id],
                hub.connect(node_id),
                KVStore(),
                rng=random.Random(node_id),
                tick_interval=election / 10,
                persist_in_thread=True,
            )
            servers[node_id] = await stack.enter_async_context(server)
        leader = await _leader(servers)
        await leader.apply(encode_put("x", 1))
        stalled = leader.node.node_id
        disks[stalled].delay = 10 * election
        async with trio.open_nursery() as nursery:

            async def stuck_write() -> None:
                with trio.move_on_after(5):
                    await leader.apply(encode_put("x", 2))

            nursery.start_soon(stuck_write)
            with trio.fail_after(8 * election):  # inside the stall: 3 covered, then check-quorum
                while leader.node.role is Role.LEADER:
                    await trio.sleep(election / 10)
            others = {i: s for i, s in servers.items() if i != stalled}
            new = await _leader(others)
            disks[stalled].delay = 0.0
            assert await new.apply(encode_put("y", 1)) == KVResult(True, None)
            nursery.cancel_scope.cancel()


async def test_a_leader_with_a_slow_disk_keeps_its_followers() -> None:
    """Each of the leader's writes takes 2 election timeouts (below `max_disk_stall`): its
    followers keep hearing from it meanwhile and never elect another (pre-vote off: an election
    would show as a new term). With `max_disk_stall=0` they do."""
    for stall_cover, expect_same_term in ((None, True), (0.0, False)):
        hub = MemoryHub()
        election = 0.2
        voters = (1, 2, 3)
        async with AsyncExitStack() as stack:
            servers = {}
            disks = {}
            for node_id in voters:
                disks[node_id] = _SlowDisk(0.0)
                server = RaftServer(
                    Config(node_id=node_id, voters=voters, pre_vote=False, election_ticks=10),
                    disks[node_id],
                    hub.connect(node_id),
                    KVStore(),
                    rng=random.Random(node_id),
                    tick_interval=election / 10,
                    persist_in_thread=True,
                    max_disk_stall=stall_cover,
                )
                servers[node_id] = await stack.enter_async_context(server)
            leader = await _leader(servers)
            await leader.apply(encode_put("x", 0))
            term = leader.node.term
            disks[leader.node.node_id].delay = 2 * election
            with trio.move_on_after(2):
                for i in range(1, 6):
                    try:
                        await leader.apply(encode_put("x", i))
                    except RaftError:  # deposed: expected without the cover
                        assert not expect_same_term
                        break
            terms = {s.node.term for s in servers.values()}
            assert (terms == {term}) is expect_same_term, (stall_cover, terms, term)
            disks[leader.node.node_id].delay = 0.0
