"""Embed trio-raft in a trio program: a 3-node key-value cluster on loopback, in one process.

    python examples/embed_trio.py

Three `RaftServer`s, each with a `TcpTransport` on 127.0.0.1 (ports picked by the kernel) and a
`MemoryStorage`, elect a leader; the script writes a few keys through it, reads them back
linearizably on a follower, shows a follower refusing a write with `NotLeader`, and exits.
The same cluster under asyncio and from threads: `embed_asyncio.py`, `embed_threads.py`; see
docs/embedding.md.
"""

import random
from contextlib import AsyncExitStack

import trio

from raft import Config, MemoryStorage, NotLeader, RaftServer, Role
from raft.runtime import TcpTransport
from statemachines import KVStore, encode_delete, encode_put

SECRET = b"an example secret, shared by the cluster"
VOTERS = (1, 2, 3)


async def main() -> None:
    async with AsyncExitStack() as stack:
        transports = {}
        for node_id in VOTERS:  # port 0: the kernel picks; peers are added once all are known
            transport = TcpTransport(
                node_id=node_id, cluster_id="embed", peers={}, rng=random.Random(), secret=SECRET
            )
            transports[node_id] = await stack.enter_async_context(transport)
        addresses = {i: ("127.0.0.1", t.port) for i, t in transports.items()}
        for node_id, transport in transports.items():
            for peer, address in addresses.items():
                if peer != node_id:
                    transport.add_peer(peer, address)
        servers = {}
        for node_id in VOTERS:
            server = RaftServer(
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
            await trio.sleep(0.02)
        leader = servers[leader_id]
        follower = servers[next(i for i in VOTERS if i != leader_id)]
        print(f"leader: node {leader_id} at {addresses[leader_id]}")

        for command in (encode_put("x", 1), encode_put("y", [2, 3]), encode_delete("x")):
            print("apply:", await leader.apply(command))
        x = await follower.read(lambda kv: kv.get("x"))  # linearizable, on a follower
        y = await follower.read(lambda kv: kv.get("y"))
        print(f"read on follower {follower.status().node_id}: x={x!r} y={y!r}")
        assert (x, y) == (None, [2, 3])
        try:
            await follower.apply(encode_put("z", 0))
        except NotLeader as error:
            print("follower refused a write:", error)


if __name__ == "__main__":
    trio.run(main)
