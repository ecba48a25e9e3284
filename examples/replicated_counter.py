"""A replicated counter written as a plain Python class, run on three Raft servers.

    python examples/replicated_counter.py

`@replicated` turns `Counter` into a `raft.StateMachine`: each `@command` call is proposed
through the Raft log and applied, in log order, on every replica; `@query` methods read the
local replica once a linearizable read (ReadIndex) allows. The three servers talk over an
in-process `MemoryHub` here; swap in `raft.runtime.TcpTransport` and `raft.FileStorage` for
real processes (docs/runtime.md). See docs/replicated.md.
"""

import random

import trio

from raft import (
    CommandFailed,
    Config,
    MemoryStorage,
    RaftServer,
    Replicated,
    ReplicatedClient,
    Role,
    command,
    query,
    replicated,
)
from raft.runtime import MemoryHub

VOTERS = (1, 2, 3)


@replicated
class Counter(Replicated):  # the base class only tells type checkers about apply/snapshot/...
    """Named counters. Commands must be deterministic: no clock, no randomness, no I/O."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @command
    def incr(self, name: str, by: int = 1) -> int:
        if by <= 0:
            raise ValueError(f"incr needs a positive step, got {by}")
        self.counts[name] = self.counts.get(name, 0) + by
        return self.counts[name]

    @command
    def reset(self, name: str) -> int:
        return self.counts.pop(name, 0)

    @query
    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


async def main() -> None:
    hub = MemoryHub()
    async with trio.open_nursery() as nursery:
        servers = {}
        for node_id in VOTERS:
            server = RaftServer(
                Config(node_id=node_id, voters=VOTERS),
                MemoryStorage(),
                hub.connect(node_id),
                Counter(),  # every replica starts from a fresh instance
                rng=random.Random(node_id),
                tick_interval=0.01,
            )
            servers[node_id] = await nursery.start(_run, server)
        leader_id = await servers[1].wait_for_leader(timeout=10)
        leader = servers[leader_id]
        while leader.node.role is not Role.LEADER:  # its own view may lag the others'
            await trio.sleep(0.01)

        counter = ReplicatedClient(leader, Counter)
        print("incr hits ->", await counter.incr("hits"))
        print("incr hits by 5 ->", await counter.incr("hits", by=5))
        print("typed call: incr misses ->", await counter.call(Counter.incr, "misses"))
        try:
            await counter.incr("hits", by=-1)
        except CommandFailed as failure:  # raised on every replica alike, recorded in the log
            print("refused everywhere:", failure.error.exception, failure.error.message)

        follower = servers[next(i for i in VOTERS if i != leader_id)]
        on_follower = ReplicatedClient(follower, Counter)
        print("hits, read linearizably on a follower ->", await on_follower.get("hits"))
        assert await on_follower.get("hits") == 6

        index = leader.status().applied_index
        digests = set()
        for server in servers.values():
            await server.wait_applied(index, timeout=10)
            replica = server.state_machine
            assert isinstance(replica, Counter)
            digests.add(replica.state_digest())
            print(f"node {server.node.node_id} holds {replica.counts}")
        assert len(digests) == 1, "replicas disagree"
        nursery.cancel_scope.cancel()


async def _run(server: RaftServer, task_status: trio.TaskStatus[RaftServer]) -> None:
    async with server:
        task_status.started(server)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main)
