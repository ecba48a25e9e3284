"""Embed trio-raft in an asyncio program: the 3-node loopback cluster of `embed_trio.py`.

    python examples/embed_asyncio.py

`raft.aio` runs the same trio `RaftServer` on the running asyncio loop through trio's guest
mode: each `TcpTransport` is entered in that guest run with `raft.aio.trio_context`, each
server is a `raft.aio.RaftServer`, and every call is an asyncio awaitable raising the same
typed errors. Meanwhile an ordinary asyncio task keeps ticking, to show the loop stays free.
See docs/embedding.md.
"""

import asyncio
import random
from contextlib import AsyncExitStack

import raft.aio
from raft import Config, MemoryStorage, NotLeader, Role
from raft.runtime import TcpTransport
from statemachines import KVStore, encode_delete, encode_put

SECRET = b"an example secret, shared by the cluster"
VOTERS = (1, 2, 3)


async def heartbeat(beats: list[float]) -> None:
    while True:  # plain asyncio work, sharing the loop with the trio guest run
        beats.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.01)


async def main() -> None:
    beats: list[float] = []
    ticker = asyncio.create_task(heartbeat(beats))
    async with AsyncExitStack() as stack:
        transports = {}
        for node_id in VOTERS:  # port 0: the kernel picks; peers are added once all are known
            transport = TcpTransport(
                node_id=node_id, cluster_id="embed", peers={}, rng=random.Random(), secret=SECRET
            )
            transports[node_id] = await stack.enter_async_context(raft.aio.trio_context(transport))
        addresses = {i: ("127.0.0.1", t.port) for i, t in transports.items()}
        for node_id, transport in transports.items():
            for peer, address in addresses.items():
                if peer != node_id:  # add_peer starts a trio task: call it inside the guest run
                    await raft.aio.run_trio_sync(transport.add_peer, peer, address)
        servers = {}
        for node_id in VOTERS:
            server = raft.aio.RaftServer(
                Config(node_id=node_id, voters=VOTERS),
                MemoryStorage(),
                transports[node_id],
                KVStore(),
                rng=random.Random(),
                tick_interval=0.02,  # election timeout: 10 ticks = 0.2 s (randomized up to 0.4)
                addresses=addresses,
            )
            servers[node_id] = await stack.enter_async_context(server)

        leader_id = await servers[1].wait_for_leader()
        while servers[leader_id].status().role is not Role.LEADER:  # its own view may lag
            await asyncio.sleep(0.02)
        leader = servers[leader_id]
        follower = servers[next(i for i in VOTERS if i != leader_id)]
        print(f"leader: node {leader_id} at {addresses[leader_id]}")

        results = await asyncio.gather(  # concurrent writes: one batch, one round trip
            leader.apply(encode_put("x", 1)), leader.apply(encode_put("y", [2, 3]))
        )
        print("apply:", *results)
        print("apply:", await leader.apply(encode_delete("x")))
        x = await follower.read(lambda kv: kv.get("x"))  # linearizable, on a follower
        y = await follower.read(lambda kv: kv.get("y"))
        print(f"read on follower {follower.status().node_id}: x={x!r} y={y!r}")
        assert (x, y) == (None, [2, 3])
        try:
            await follower.apply(encode_put("z", 0))
        except NotLeader as error:
            print("follower refused a write:", error)
    ticker.cancel()
    print(f"the asyncio loop ran {len(beats)} heartbeats meanwhile")


if __name__ == "__main__":
    asyncio.run(main())
