"""`RaftServer.apply_stamped`: the leader stamps `now_ns` from its own (injected) clock, so a
`LockManager`'s leases run by the leader's time; a follower refuses without building."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from raft.runtime import NotLeader
from statemachines import LockManager, LockResult, lock_acquire
from tests.runtime._cluster import Cluster

LEASE = 1_000_000_000


class FakeWallClock:
    """A wall clock the test moves by hand (trio's MockClock is relative, not wall time)."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now_ns


async def test_leader_stamps_lock_commands_with_its_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = FakeWallClock(5_000_000_000)
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, state_machine=LockManager, clock_ns=clock)
        await cluster.start_all()
        leader = await cluster.leader()
        stamps: list[int] = []

        def acquire(owner: str) -> Callable[[int], bytes]:
            def build(now: int) -> bytes:
                stamps.append(now)
                return lock_acquire("l", owner, lease_ns=LEASE, now_ns=now)

            return build

        first = await leader.apply_stamped(acquire("a"))
        assert first == LockResult(ok=True, token=1, owner="a", expires_ns=5_000_000_000 + LEASE)
        assert stamps == [5_000_000_000]

        clock.now_ns += LEASE - 1  # one nanosecond short of the lease's end
        refused = await leader.apply_stamped(acquire("b"))
        assert refused == LockResult(ok=False, owner="a", expires_ns=5_000_000_000 + LEASE)

        clock.now_ns += 1  # the lease ends, by the leader's clock
        granted = await leader.apply_stamped(acquire("b"), client_id=7, seq=1)
        assert isinstance(granted, LockResult) and isinstance(first, LockResult)
        assert granted.ok and granted.owner == "b"
        assert granted.token is not None and first.token is not None
        assert granted.token > first.token
        assert stamps == [5_000_000_000, 5_000_000_000 + LEASE - 1, 5_000_000_000 + LEASE]

        # Every replica applied the same stamps: the same holder, at the same time.
        index = leader.status().applied_index
        for server in cluster.servers.values():
            await server.wait_applied(index)
            locks = server.state_machine
            assert isinstance(locks, LockManager)
            assert locks.now_ns == 5_000_000_000 + LEASE
        nursery.cancel_scope.cancel()


async def test_follower_raises_not_leader_without_building(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = FakeWallClock(1_000)
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, state_machine=LockManager, clock_ns=clock)
        await cluster.start_all()
        leader = await cluster.leader()
        follower = cluster.followers()[0]
        await follower.wait_for_leader()
        built: list[int] = []

        def build(now: int) -> bytes:
            built.append(now)
            return lock_acquire("l", "a", lease_ns=LEASE, now_ns=now)

        with pytest.raises(NotLeader) as caught:
            await follower.apply_stamped(build)
        leader_id = leader.node.node_id
        assert caught.value.leader_id == leader_id
        assert caught.value.leader_address == f"node-{leader_id}"
        assert built == [] and clock.reads == 0
        nursery.cancel_scope.cancel()


async def test_an_error_in_build_proposes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, state_machine=LockManager, clock_ns=FakeWallClock(1_000))
        await cluster.start_all()
        leader = await cluster.leader()
        before = leader.status()

        def build(now: int) -> bytes:
            raise ValueError("no command for you")

        with pytest.raises(ValueError, match="no command"):
            await leader.apply_stamped(build)
        after = leader.status()
        assert after.pending_proposals == 0 and after.pending_bytes == 0
        assert after.commit_index == before.commit_index
        nursery.cancel_scope.cancel()
