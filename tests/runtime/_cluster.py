"""A cluster of `RaftServer`s over a `MemoryHub`, for MockClock tests: servers start, stop
(as a crash: their scope is cancelled, their `MemoryStorage` survives) and restart."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import trio

from raft import StateMachine
from raft.core import Config, Role
from raft.runtime import MemoryHub, RaftServer
from raft.storage import MemoryStorage
from statemachines import KVStore

TICK = 0.1


class Cluster:
    def __init__(
        self,
        nursery: trio.Nursery,
        hub: MemoryHub | None = None,
        config_options: dict[str, Any] | None = None,
        state_machine: Callable[[], StateMachine] = KVStore,
        **server_options: Any,
    ):
        self.nursery = nursery
        self.config_options = config_options or {}
        self.hub = hub or MemoryHub(round_trip=True)
        self.storages: dict[int, MemoryStorage] = {}
        self.servers: dict[int, RaftServer] = {}
        self.scopes: dict[int, trio.CancelScope] = {}
        self.generation = 0
        self.state_machine = state_machine
        self.options = server_options

    async def start(
        self, node_id: int, voters: tuple[int, ...] = (1, 2, 3), **options: Any
    ) -> RaftServer:
        storage = self.storages.setdefault(node_id, MemoryStorage())
        self.generation += 1
        server = RaftServer(
            Config(node_id=node_id, voters=voters, **self.config_options),
            storage,
            self.hub.connect(node_id),
            self.state_machine(),
            rng=random.Random(node_id * 1000 + self.generation),
            tick_interval=TICK,
            addresses={i: f"node-{i}" for i in range(1, 10)},
            **{**self.options, **options},
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

    async def start_all(self, voters: tuple[int, ...] = (1, 2, 3)) -> None:
        for node_id in voters:
            await self.start(node_id, voters)

    def stop(self, node_id: int) -> None:
        """Crash `node_id`: cancel its server; what its storage holds survives."""
        self.scopes.pop(node_id).cancel()
        self.servers.pop(node_id)

    async def leader(self, timeout: float = 10.0) -> RaftServer:
        with trio.fail_after(timeout):
            while True:
                leaders = [s for s in self.servers.values() if s.node.role is Role.LEADER]
                if len(leaders) == 1:
                    return leaders[0]
                await trio.sleep(TICK)

    def followers(self) -> list[RaftServer]:
        return [s for s in self.servers.values() if s.node.role is not Role.LEADER]
