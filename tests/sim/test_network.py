"""The simulated network and cluster clock: seeded, time-ordered, partitionable."""

from __future__ import annotations

import random

from raft import Heartbeat, Role
from sim._network import LinkFaults, Network
from tests.builders import make_cluster


def heartbeat(sender: int, recipient: int) -> Heartbeat:
    return Heartbeat(term=1, sender=sender, recipient=recipient, commit=0)


def test_same_seed_same_fates() -> None:
    runs = []
    for _ in range(2):
        network = Network(random.Random(7), LinkFaults(loss=0.3, duplicate=0.3))
        runs.append([network.send(heartbeat(1 + i % 3, 2)) for i in range(50)])
    assert runs[0] == runs[1]
    assert any(len(copies) == 2 for copies in runs[0])
    assert any(not copies for copies in runs[0])


def test_latency_stays_in_the_configured_range() -> None:
    network = Network(random.Random(1), LinkFaults(min_latency_ns=10, max_latency_ns=20))
    latencies = [latency for _ in range(500) for latency in network.send(heartbeat(1, 2))]
    assert min(latencies) >= 10 and max(latencies) <= 20 and len(set(latencies)) > 5


def test_partition_blocks_links_between_groups_only() -> None:
    network = Network(random.Random(1))
    network.partition([1, 2], [3])
    blocked = {(a, b) for a in (1, 2, 3) for b in (1, 2, 3) if network.is_blocked(a, b)}
    assert blocked == {(1, 3), (2, 3), (3, 1), (3, 2)}


def test_one_way_block_cuts_one_direction() -> None:
    network = Network(random.Random(1))
    network.block(1, 2)
    assert network.is_blocked(1, 2) and not network.is_blocked(2, 1)
    network.heal()
    assert not network.is_blocked(1, 2)


def test_loss_rate_drops_about_that_share() -> None:
    network = Network(random.Random(3), LinkFaults(loss=0.25))
    for _ in range(4000):
        network.send(heartbeat(1, 2))
    assert 800 < network.dropped < 1200


def test_messages_in_flight_when_a_partition_starts_are_lost() -> None:
    cluster = make_cluster(3, seed=5)
    leader = cluster.elect()
    cluster.settle()
    cluster.tick(leader)  # heartbeats now in flight
    cluster.network.partition([leader], [i for i in cluster.replicas if i != leader])
    dropped = cluster.network.dropped
    cluster.settle()
    assert cluster.network.dropped > dropped


def test_cluster_run_is_deterministic_per_seed() -> None:
    def story(seed: int) -> tuple[str, list[tuple[int, int, int]]]:
        cluster = make_cluster(5, seed=seed)
        leader = cluster.elect()
        cluster.network.partition([leader], [i for i in cluster.replicas if i != leader])
        cluster.run_for(3_000_000_000)
        state = [(i, r.node.term, r.node.last_index) for i, r in cluster.replicas.items()]
        return cluster.trace_sha256(), state

    assert story(11) == story(11)
    assert story(11)[0] != story(12)[0]


def test_a_paused_node_handles_held_messages_on_resume() -> None:
    cluster = make_cluster(3, seed=2)
    leader = cluster.elect()
    follower = next(i for i in cluster.replicas if i != leader)
    cluster.pause(follower)
    cluster.propose(leader, b"while paused")
    cluster.run_for(200_000_000)
    assert cluster.replicas[follower].node.last_index < cluster.replicas[leader].node.last_index
    cluster.resume(follower)
    cluster.run_for(200_000_000)
    assert cluster.replicas[follower].node.last_index == cluster.replicas[leader].node.last_index


def test_a_fast_clock_makes_a_node_time_out_first() -> None:
    cluster = make_cluster(3, seed=9)
    cluster.tick_ns_of[3] = cluster.tick_ns // 4
    assert cluster.elect() == 3
    assert cluster.replicas[3].node.role is Role.LEADER


def test_scheduled_callbacks_run_at_their_time() -> None:
    cluster = make_cluster(3, seed=1)
    seen: list[int] = []
    cluster.schedule(5_000_000, lambda: seen.append(cluster.now))
    cluster.run_for(10_000_000)
    assert seen == [5_000_000]
