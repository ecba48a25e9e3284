"""`ReplicatedClient` on a 3-server `RaftServer` cluster over `MemoryHub`, under trio's MockClock:
commands through the log, queries through ReadIndex, errors at the call site and from the
replicas, and a follower caught up by a snapshot of a `@replicated` state machine."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

from raft import (
    CommandError,
    CommandFailed,
    Config,
    NotLeader,
    RaftServer,
    Replicated,
    ReplicatedClient,
    Role,
    command,
    query,
    replicated,
)
from raft.runtime import MemoryHub
from raft.storage import MemoryStorage

TICK = 0.1
VOTERS = (1, 2, 3)


@replicated
class Account(Replicated):
    def __init__(self) -> None:
        self.balance = 0
        self.entries: list[list[Any]] = []

    @command
    def deposit(self, amount: int, memo: str = "") -> int:
        if amount <= 0:
            raise ValueError(f"a deposit must be positive, got {amount}")
        self.balance += amount
        self.entries.append([amount, memo])
        return self.balance

    @command
    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise ValueError(f"insufficient funds: {self.balance} < {amount}")
        self.balance -= amount
        return self.balance

    @query
    def statement(self) -> dict[str, Any]:
        return {"balance": self.balance, "entries": self.entries}


class Cluster:
    """Three servers of `Account` that can crash (cancelled; storage survives) and restart."""

    def __init__(self, nursery: trio.Nursery, **config: Any) -> None:
        self.nursery = nursery
        self.hub = MemoryHub(round_trip=True)
        self.config = config
        self.storages: dict[int, MemoryStorage] = {}
        self.servers: dict[int, RaftServer] = {}
        self.scopes: dict[int, trio.CancelScope] = {}
        self.generation = 0

    async def start(self, node_id: int) -> RaftServer:
        self.generation += 1
        server = RaftServer(
            Config(node_id=node_id, voters=VOTERS, **self.config),
            self.storages.setdefault(node_id, MemoryStorage()),
            self.hub.connect(node_id),
            Account(),
            rng=random.Random(node_id * 1000 + self.generation),
            tick_interval=TICK,
        )
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                async with server:
                    task_status.started()
                    await trio.sleep_forever()

        await self.nursery.start(run)
        self.servers[node_id] = server
        self.scopes[node_id] = scope
        return server

    def stop(self, node_id: int) -> None:
        self.scopes.pop(node_id).cancel()
        self.servers.pop(node_id)

    async def leader(self) -> RaftServer:
        with trio.fail_after(10):
            while True:
                leaders = [s for s in self.servers.values() if s.node.role is Role.LEADER]
                if len(leaders) == 1:
                    return leaders[0]
                await trio.sleep(TICK)

    async def all_applied(self, index: int) -> None:
        for server in self.servers.values():
            await server.wait_applied(index, timeout=20)


def account(server: RaftServer) -> Account:
    machine = server.state_machine
    assert isinstance(machine, Account)
    return machine


async def test_commands_go_through_the_log_and_queries_read_linearizably(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        for node_id in VOTERS:
            await cluster.start(node_id)
        leader = await cluster.leader()
        client = ReplicatedClient(leader, Account)
        assert await client.deposit(5) == 5
        assert await client.deposit(2, memo="tip") == 7
        assert await client.call(Account.withdraw, 3) == 4  # typed as Account.withdraw is
        await cluster.all_applied(leader.status().applied_index)
        for server in cluster.servers.values():
            assert account(server).balance == 4
            assert account(server).entries == [[5, ""], [2, "tip"]]
        follower = next(s for s in cluster.servers.values() if s is not leader)
        reader = ReplicatedClient(follower, Account)  # ReadIndex, asked of the leader
        assert await reader.statement() == {"balance": 4, "entries": [[5, ""], [2, "tip"]]}
        stale = ReplicatedClient(follower, Account, consistency="stale")
        assert (await stale.call(Account.statement))["balance"] == 4
        nursery.cancel_scope.cancel()


async def test_a_raising_command_fails_alike_everywhere(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        for node_id in VOTERS:
            await cluster.start(node_id)
        leader = await cluster.leader()
        client = ReplicatedClient(leader, Account)
        await client.deposit(1)
        with pytest.raises(CommandFailed, match="insufficient funds: 1 < 5") as failure:
            await client.withdraw(5)
        assert failure.value.error == CommandError(
            "raised", "insufficient funds: 1 < 5", "ValueError"
        )
        assert failure.value.method == "withdraw"
        await cluster.all_applied(leader.status().applied_index)
        assert {account(s).balance for s in cluster.servers.values()} == {1}
        nursery.cancel_scope.cancel()


async def test_bad_arguments_are_refused_before_anything_is_proposed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        for node_id in VOTERS:
            await cluster.start(node_id)
        leader = await cluster.leader()
        client = ReplicatedClient(leader, Account)
        await client.deposit(1)
        last = leader.node.last_index
        with pytest.raises(TypeError, match=r"argument 'memo' of deposit\(\) is a set"):
            await client.deposit(1, memo={"x"})
        with pytest.raises(TypeError, match=r"deposit\(\): missing a required argument"):
            await client.deposit()
        with pytest.raises(TypeError, match="too many positional arguments"):
            await client.statement(1)
        assert leader.node.last_index == last
        with pytest.raises(AttributeError, match="no @command or @query 'transfer'"):
            await client.transfer(1)
        with pytest.raises(TypeError, match="not a @command or @query of Account"):
            await client.call(Account.__init__)
        nursery.cancel_scope.cancel()


async def test_errors_of_the_server_pass_through_and_results_are_copies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        for node_id in VOTERS:
            await cluster.start(node_id)
        leader = await cluster.leader()
        follower = next(s for s in cluster.servers.values() if s is not leader)
        with pytest.raises(NotLeader):
            await ReplicatedClient(follower, Account).deposit(1)
        client = ReplicatedClient(leader, Account)
        await client.deposit(3)
        answer = await client.statement()
        answer["entries"].append("mine")
        assert account(leader).entries == [[3, ""]]
        nursery.cancel_scope.cancel()


def test_the_client_checks_the_servers_state_machine() -> None:
    @replicated
    class Other(Replicated):
        pass

    class Holder:
        state_machine = Account()

        async def apply(self, command: bytes, *, timeout: float | None = None) -> object:
            raise AssertionError("not called")

        async def read(self, query: Any, *, consistency: Any = None, timeout: Any = None) -> Any:
            raise AssertionError("not called")

    with pytest.raises(TypeError, match=r"state machine is a Account, not a .*Other"):
        ReplicatedClient(Holder(), Other)
    with pytest.raises(TypeError, match="is not a @replicated class"):
        ReplicatedClient(Holder(), dict)
    with pytest.raises(ValueError, match="consistency must be linearizable, lease or stale"):
        ReplicatedClient(Holder(), Account, consistency="eventual")  # type: ignore[arg-type]
    half_built = ReplicatedClient.__new__(ReplicatedClient)
    with pytest.raises(AttributeError, match="ReplicatedClient has no @command or @query"):
        half_built.deposit  # noqa: B018


async def test_a_lagging_follower_catches_up_from_a_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, snapshot_threshold_entries=10)
        for node_id in VOTERS:
            await cluster.start(node_id)
        leader = await cluster.leader()
        lagging = next(i for i, s in cluster.servers.items() if s is not leader)
        cluster.stop(lagging)
        client = ReplicatedClient(leader, Account)
        for amount in range(1, 41):
            await client.deposit(amount, memo=f"#{amount}")
        assert cluster.storages[leader.node.node_id].first_index() > 20  # compacted
        back = await cluster.start(lagging)
        await back.wait_applied(leader.status().applied_index, timeout=20)
        assert cluster.storages[lagging].snapshot() is not None  # installed, not replayed
        assert account(back).state_digest() == account(leader).state_digest()
        assert account(back).balance == sum(range(1, 41))
        # The restored replica goes on applying commands like the others.
        assert await client.withdraw(20) == sum(range(1, 41)) - 20
        await cluster.all_applied(leader.status().applied_index)
        assert len({account(s).state_digest() for s in cluster.servers.values()}) == 1
        nursery.cancel_scope.cancel()
