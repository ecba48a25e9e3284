"""`RaftServer` in a 3-node cluster over `MemoryHub`, under trio's MockClock (no real sleeps)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
import trio.testing

from raft.core import CommandTooLarge, Config, Role
from raft.runtime import (
    MemoryHub,
    NoQuorum,
    NotLeader,
    Overloaded,
    RaftServer,
    ServerStopped,
    SessionExpired,
    Timeout,
)
from raft.storage import MemoryStorage, StorageFull
from statemachines import KVResult, KVStore, encode_get, encode_put
from tests.runtime._cluster import Cluster


def _get(key: str):  # type: ignore[no-untyped-def]
    return lambda kv: kv.get(key)


async def test_elects_applies_everywhere_and_reads_linearizably(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        assert await leader.apply(encode_put("x", 1)) == KVResult(ok=True, value=None)
        assert await leader.apply(encode_put("x", 2)) == KVResult(ok=True, value=1)
        index = leader.status().applied_index
        for server in cluster.servers.values():
            await server.wait_applied(index)
            assert server.state_machine.get("x") == 2  # type: ignore[attr-defined]
        for server in cluster.servers.values():  # ReadIndex, on followers too
            assert await server.read(_get("x")) == 2
        assert await leader.read(_get("x"), consistency="stale") == 2
        status = leader.status()
        assert status.role is Role.LEADER and status.leader_id == leader.node.node_id
        assert set(status.progress) == {1, 2, 3}
        assert status.commit_index == status.applied_index == index
        assert status.pending_proposals == 0 and status.pending_bytes == 0
        nursery.cancel_scope.cancel()


async def test_concurrent_proposals_are_batched_and_each_gets_its_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        results: dict[int, object] = {}

        async def put(i: int) -> None:
            results[i] = await leader.apply(encode_put(f"k{i}", i))

        before = leader.status().persists
        async with trio.open_nursery() as clients:
            for i in range(200):
                clients.start_soon(put, i)
        assert results == {i: KVResult(ok=True, value=None) for i in range(200)}
        # 200 proposals, a handful of Readies: they were proposed in batches.
        assert leader.status().persists - before < 20
        assert await leader.read(_get("k199")) == 199
        nursery.cancel_scope.cancel()


async def test_follower_refuses_with_the_leaders_id_and_address(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        await leader.apply(encode_put("x", 1))
        follower = cluster.followers()[0]
        with pytest.raises(NotLeader) as caught:
            await follower.apply(encode_put("x", 2))
        leader_id = leader.node.node_id
        assert caught.value.leader_id == leader_id
        assert caught.value.leader_address == f"node-{leader_id}"
        assert f"node-{leader_id}" in str(caught.value)
        with pytest.raises(NotLeader):
            await follower.transfer_leadership(leader_id)
        nursery.cancel_scope.cancel()


async def test_survives_the_loss_of_the_leader_and_the_old_leader_catches_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        old = await cluster.leader()
        await old.apply(encode_put("x", 1))
        old_id = old.node.node_id
        cluster.stop(old_id)
        new = await cluster.leader()
        assert new.node.node_id != old_id
        assert await new.apply(encode_put("x", 2)) == KVResult(ok=True, value=1)
        restarted = await cluster.start(old_id)  # same storage, fresh state machine
        await restarted.wait_applied(new.status().applied_index, timeout=10)
        assert restarted.state_machine.get("x") == 2  # type: ignore[attr-defined]
        assert await restarted.read(_get("x")) == 2
        with pytest.raises(ServerStopped):
            await old.apply(encode_put("x", 3))
        nursery.cancel_scope.cancel()


async def test_a_write_lost_to_a_leader_change_fails_and_a_lost_read_times_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        old = await cluster.leader()
        await old.apply(encode_put("x", 1))
        old_id = old.node.node_id
        others = [i for i in (1, 2, 3) if i != old_id]
        for peer in others:  # isolate the old leader
            cluster.hub.set_link(old_id, peer, up=False)
            cluster.hub.set_link(peer, old_id, up=False)
        outcome: dict[str, BaseException] = {}

        async def doomed_write() -> None:
            try:
                await old.apply(encode_put("x", 99), timeout=30)
            except Exception as error:
                outcome["write"] = error

        async def doomed_read() -> None:
            try:
                await old.read(_get("x"), timeout=2)
            except Exception as error:
                outcome["read"] = error

        nursery.start_soon(doomed_write)
        nursery.start_soon(doomed_read)
        await trio.sleep(1)
        new = None
        with trio.fail_after(10):
            while True:
                leaders = [
                    cluster.servers[i]
                    for i in others
                    if cluster.servers[i].node.role is Role.LEADER
                ]
                if leaders:
                    new = leaders[0]
                    break
                await trio.sleep(0.1)
        assert new is not None
        await new.apply(encode_put("x", 2))
        await new.apply(encode_put("x", 3))
        for peer in others:
            cluster.hub.set_link(old_id, peer, up=True)
            cluster.hub.set_link(peer, old_id, up=True)
        with trio.fail_after(20):
            while "write" not in outcome or "read" not in outcome:
                await trio.sleep(0.1)
        assert isinstance(outcome["write"], NotLeader)  # certainly not applied
        assert "replaced" in str(outcome["write"])
        assert isinstance(outcome["read"], Timeout)
        assert await new.read(_get("x")) == 3
        nursery.cancel_scope.cancel()


async def test_transfer_leadership(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        await leader.apply(encode_put("x", 1))
        target = cluster.followers()[0].node.node_id
        await leader.transfer_leadership(target)
        new = await cluster.leader()
        assert new.node.node_id == target
        assert await new.apply(encode_put("x", 2)) == KVResult(ok=True, value=1)
        nursery.cancel_scope.cancel()


async def test_a_fourth_server_joins_as_learner_and_is_promoted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        for i in range(5):
            await leader.apply(encode_put("x", i))
        joiner = await cluster.start(4, voters=())
        await leader.add_learner(4)
        await joiner.wait_applied(leader.status().applied_index, timeout=10)
        assert joiner.state_machine.get("x") == 4  # type: ignore[attr-defined]
        await leader.promote_learner(4)
        membership = leader.status().membership
        assert membership is not None
        assert membership.voters == (1, 2, 3, 4) and not membership.outgoing
        await leader.apply(encode_put("x", 5))
        assert await joiner.read(_get("x")) == 5
        nursery.cancel_scope.cancel()


async def test_a_follower_asked_to_add_a_member_refuses_before_recording_its_address(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        follower = cluster.followers()[0]
        for call in (follower.add_learner, follower.add_voter):
            with pytest.raises(NotLeader) as refused:
                await call(12, ("127.0.0.1", 9))
            assert refused.value.leader_id == leader.node.node_id
        assert 12 not in follower._addresses  # nothing dialled, no hint to a node never added
        nursery.cancel_scope.cancel()


async def test_a_retried_session_command_is_applied_once_and_gets_the_first_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        leader_id = leader.node.node_id
        await leader.apply(encode_put("x", 1), client_id=7, seq=1)
        for peer in (1, 2, 3):  # the followers' acknowledgements are lost for a while
            if peer != leader_id:
                cluster.hub.set_link(peer, leader_id, up=False)
        with pytest.raises(Timeout):
            await leader.apply(encode_put("x", 2), client_id=7, seq=2, timeout=0.5)
        for peer in (1, 2, 3):
            if peer != leader_id:
                cluster.hub.set_link(peer, leader_id, up=True)
        leader = await cluster.leader()
        # The retry: same client, same seq. The put is applied once: a second application
        # would have returned 2, the value it replaced.
        assert await leader.apply(encode_put("x", 2), client_id=7, seq=2) == KVResult(True, 1)
        assert await leader.apply(encode_put("x", 2), client_id=7, seq=2) == KVResult(True, 1)
        assert await leader.apply(encode_put("x", 3), client_id=7, seq=3) == KVResult(True, 2)
        with pytest.raises(SessionExpired):
            await leader.apply(encode_put("x", 9), client_id=7, seq=2)
        assert await leader.read(_get("x")) == 3
        # every replica agrees (the table is replicated state)
        index = leader.status().applied_index
        for server in cluster.servers.values():
            await server.wait_applied(index)
            assert server.state_machine.get("x") == 3  # type: ignore[attr-defined]
            assert server.status().sessions == 1
        nursery.cancel_scope.cancel()


async def test_overloaded_beyond_the_uncommitted_bytes_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, max_uncommitted_bytes=1000)
        await cluster.start_all()
        leader = await cluster.leader()
        leader_id = leader.node.node_id
        for peer in (1, 2, 3):  # nothing can commit
            if peer != leader_id:
                cluster.hub.set_link(leader_id, peer, up=False)
        outcomes: list[str] = []

        async def put(i: int) -> None:
            try:
                await leader.apply(encode_put("k", "v" * 50), timeout=1)
                outcomes.append("ok")
            except Overloaded:
                outcomes.append("overloaded")
            except Timeout:
                outcomes.append("timeout")

        async with trio.open_nursery() as clients:
            for i in range(40):
                clients.start_soon(put, i)
        assert "overloaded" in outcomes and "timeout" in outcomes and "ok" not in outcomes
        assert outcomes.count("timeout") * 60 <= 1000
        with pytest.raises(CommandTooLarge):
            await leader.apply(b"x" * (1 << 20))
        nursery.cancel_scope.cancel()


async def test_no_leader_means_no_quorum(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        server = await cluster.start(1)  # alone of three: never elected
        with pytest.raises(NoQuorum):
            await server.wait_for_leader(timeout=3)
        with pytest.raises(NotLeader) as caught:
            await server.apply(encode_get("x"))
        assert caught.value.leader_id is None
        nursery.cancel_scope.cancel()


async def test_a_single_node_cluster_commits_alone(autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    server = RaftServer(
        Config(node_id=1, voters=(1,)),
        MemoryStorage(),
        hub.connect(1),
        KVStore(),
        rng=random.Random(1),
    )
    async with server:
        await server.wait_for_leader()
        assert await server.apply(encode_put("x", 1)) == KVResult(True, None)
        assert await server.read(_get("x")) == 1


class _BrokenStorage(MemoryStorage):
    def append(self, entries):  # type: ignore[no-untyped-def]
        if any(entry.data for entry in entries):
            raise OSError("disk on fire")
        super().append(entries)


async def test_a_failing_storage_stops_the_server_loudly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub()
    server = RaftServer(
        Config(node_id=1, voters=(1,)),
        _BrokenStorage(),
        hub.connect(1),
        KVStore(),
        rng=random.Random(1),
    )
    with pytest.raises(BaseExceptionGroup) as caught:
        async with server:
            await server.wait_for_leader()
            await server.apply(encode_put("x", 1))
    assert caught.group_contains(OSError, match="disk on fire")
    with pytest.raises(ServerStopped):
        await server.apply(encode_put("x", 1))


async def test_lease_and_stale_reads(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, config_options={"lease_reads": True})
        await cluster.start_all()
        leader = await cluster.leader()
        await leader.apply(encode_put("x", 1))
        assert await leader.read(_get("x"), consistency="lease") == 1
        for server in cluster.servers.values():
            assert await server.read(_get("x")) == 1
        with pytest.raises(ValueError, match="consistency"):
            await leader.read(_get("x"), consistency="eventual")  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()


async def test_lease_reads_need_the_config(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leader = await cluster.leader()
        with pytest.raises(ValueError, match="lease_reads"):
            await leader.read(_get("x"), consistency="lease")
        nursery.cancel_scope.cancel()


class _FillingDisk(MemoryStorage):
    """Full (StorageFull, nothing stored) while `full` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.refused = 0

    def append(self, entries):  # type: ignore[no-untyped-def]
        if self.full:
            self.refused += 1
            raise StorageFull(Path("/disk/log"))
        super().append(entries)


async def test_a_full_disk_refuses_proposals_and_recovers_when_space_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    disk = _FillingDisk()
    server = RaftServer(
        Config(node_id=1, voters=(1,)),
        disk,
        MemoryHub().connect(1),
        KVStore(),
        rng=random.Random(1),
    )
    async with server, trio.open_nursery() as nursery:
        await server.wait_for_leader()
        await server.apply(encode_put("x", 1))
        disk.full = True
        results: list[object] = []

        async def put() -> None:
            results.append(await server.apply(encode_put("x", 2), timeout=60))

        nursery.start_soon(put)
        await trio.sleep(3)
        assert disk.refused >= 2 and server.status().disk_full
        with pytest.raises(StorageFull):
            await server.apply(encode_put("x", 3))
        assert server.node.role is Role.LEADER  # still ticking, still leading
        disk.full = False
        with trio.fail_after(5):
            while not results:
                await trio.sleep(0.1)
        assert results == [KVResult(True, 1)]
        assert not server.status().disk_full
        assert await server.read(_get("x")) == 2
