"""Embed trio-raft in threaded code: the 3-node loopback cluster of `embed_trio.py`.

    python examples/embed_threads.py

`raft.sync` runs the same trio `RaftServer` in a background trio thread; its methods block the
calling thread (any thread) and raise the same typed errors. Here four worker threads write at
once, a callback reports leader changes (on the server's callback thread), and closing the
servers leaves no thread behind. See docs/embedding.md.
"""

import random
import threading
import time
from contextlib import ExitStack

import raft.sync
from raft import Config, MemoryStorage, NotLeader, Role
from raft.runtime import TcpTransport
from statemachines import KVStore, encode_put

SECRET = b"an example secret, shared by the cluster"
VOTERS = (1, 2, 3)


def main() -> None:
    threads_before = set(threading.enumerate())
    with ExitStack() as stack:
        transports = {}
        for node_id in VOTERS:  # port 0: the kernel picks; peers are added once all are known
            transport = TcpTransport(
                node_id=node_id, cluster_id="embed", peers={}, rng=random.Random(), secret=SECRET
            )
            transports[node_id] = stack.enter_context(raft.sync.trio_context(transport))
        addresses = {i: ("127.0.0.1", t.port) for i, t in transports.items()}
        for node_id, transport in transports.items():
            for peer, address in addresses.items():
                if peer != node_id:  # add_peer starts a trio task: call it in the trio thread
                    raft.sync.run_trio_sync(transport.add_peer, peer, address)
        servers = {}
        for node_id in VOTERS:
            server = raft.sync.RaftServer(
                Config(node_id=node_id, voters=VOTERS),
                MemoryStorage(),
                transports[node_id],
                KVStore(),
                rng=random.Random(),
                tick_interval=0.02,  # election timeout: 10 ticks = 0.2 s (randomized up to 0.4)
                addresses=addresses,
                on_leader_change=lambda leader, term, me=node_id: print(
                    f"  (node {me} sees leader {leader} in term {term})"
                ),
            )
            servers[node_id] = stack.enter_context(server)

        leader_id = servers[1].wait_for_leader()
        while servers[leader_id].status().role is not Role.LEADER:  # its own view may lag
            time.sleep(0.02)
        leader = servers[leader_id]
        follower = servers[next(i for i in VOTERS if i != leader_id)]
        print(f"leader: node {leader_id} at {addresses[leader_id]}")

        def worker(n: int) -> None:
            for i in range(5):
                leader.apply(encode_put(f"worker-{n}", i))

        workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        values = [follower.read(lambda kv, n=n: kv.get(f"worker-{n}")) for n in range(4)]
        print(f"read on follower {follower.node_id}: {values}")
        assert values == [4, 4, 4, 4]
        try:
            follower.apply(encode_put("z", 0))
        except NotLeader as error:
            print("follower refused a write:", error)
    left = set(threading.enumerate()) - threads_before
    print(f"threads left after close: {len(left)}")
    assert not left, left


if __name__ == "__main__":
    main()
