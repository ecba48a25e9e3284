"""Snapshots and membership together: a snapshot records the configuration in effect at its
index (paper §7, thesis §5.1), and a node that installs one, or restarts from one, takes its
configuration from it once the log entries that held it are compacted away (thesis §4.1)."""

from __future__ import annotations

import random

import pytest

from raft import (
    AppendEntries,
    Config,
    Entry,
    EntryKind,
    Heartbeat,
    Membership,
    RaftNode,
    Role,
    SnapshotMetadata,
    UsageError,
)
from raft.core._membership import encode_membership
from raft.storage import MemoryStorage
from sim import Cluster
from sim._monitor import committed_membership
from statemachines import KVStore

_SECOND = 1_000_000_000


def grown_cluster() -> Cluster:
    """Voters 1-3 and a spare, 4, that joins as a learner and is promoted while node 3 is
    cut off; then enough commands that every live node compacts the CONFIG entries away."""
    cluster = Cluster(
        (1, 2, 3),
        spares=(4,),
        seed=11,
        state_machine_factory=KVStore,
        snapshot_threshold_entries=5,
        max_snapshot_chunk_bytes=64,
    )
    leader = cluster.elect()
    lagging = 3 if leader != 3 else 2
    others = [node_id for node_id in (1, 2, 3, 4) if node_id != lagging]
    cluster.network.partition([lagging], others)
    node = cluster.replicas[leader].node
    cluster.run_until(lambda: node.commit_index >= 1, 2 * _SECOND)
    node.add_learner(4)
    cluster.flush(leader)
    assert cluster.run_until(lambda: _caught_up(cluster, leader, 4), 5 * _SECOND)
    node.promote_learner(4)
    cluster.flush(leader)
    assert cluster.run_until(lambda: not _joint_or_pending(node), 5 * _SECOND)
    for number in range(30):
        cluster.propose(leader, b'{"v":1,"op":"put","key":"k","value":%d}' % number)
        cluster.run_for(_SECOND // 50)
    cluster.run_for(_SECOND)
    return cluster


def _caught_up(cluster: Cluster, leader: int, learner: int) -> bool:
    node = cluster.replicas[leader].node
    progress = node.progress().get(learner)
    return progress is not None and progress.match_index >= node.commit_index


def _joint_or_pending(node: RaftNode) -> bool:
    membership = node.membership
    assert membership is not None
    return membership.joint or membership.voters != (1, 2, 3, 4)


def test_a_lagging_node_learns_the_configuration_from_the_snapshot_it_installs() -> None:
    cluster = grown_cluster()
    leader = cluster.leader()
    assert leader is not None
    lagging = 3 if leader != 3 else 2
    leader_storage = cluster.replicas[leader].storage
    assert leader_storage.first_index() > 10, "the CONFIG entries were compacted away"
    snapshot = leader_storage.snapshot()
    assert snapshot is not None and snapshot.metadata.membership == Membership((1, 2, 3, 4))
    lagging_node = cluster.replicas[lagging].node
    assert lagging_node.membership == Membership((1, 2, 3))

    cluster.network.heal()
    assert cluster.run_until(
        lambda: (
            cluster.replicas[lagging].node.commit_index
            >= cluster.replicas[leader].node.commit_index
        ),
        5 * _SECOND,
    )
    assert cluster.replicas[lagging].storage.snapshot() is not None
    assert cluster.replicas[lagging].node.membership == Membership((1, 2, 3, 4))

    cluster.crash(lagging)
    cluster.restart(lagging)
    assert cluster.replicas[lagging].node.membership == Membership((1, 2, 3, 4))


def test_a_restarted_node_rebuilds_its_configuration_from_its_snapshot() -> None:
    cluster = grown_cluster()
    leader = cluster.leader()
    assert leader is not None
    follower = next(i for i in (1, 2, 4) if i != leader and cluster.replicas[i].up)
    storage = cluster.replicas[follower].storage
    assert storage.snapshot() is not None and storage.first_index() > 10
    cluster.crash(follower)
    cluster.restart(follower)
    assert cluster.replicas[follower].node.membership == Membership((1, 2, 3, 4))
    cluster.network.heal()
    cluster.crash(leader)  # three of the four voters are left: a majority of the new set
    new_leader = cluster.elect()
    assert new_leader != leader
    assert cluster.replicas[new_leader].node.role is Role.LEADER


def test_a_snapshot_records_the_configuration_at_its_index_not_a_pending_one() -> None:
    """A CONFIG entry takes effect once appended, but a snapshot at an earlier applied index
    must record the configuration in effect there: a node restoring it has not seen the
    later entry yet."""
    cluster = Cluster((1, 2, 3), spares=(4,), seed=3, state_machine_factory=KVStore)
    leader = cluster.elect()
    node = cluster.replicas[leader].node
    cluster.run_until(lambda: node.commit_index >= 1, 2 * _SECOND)
    cluster.run_for(_SECOND // 10)
    node.add_learner(4)  # appended, in effect on the leader, not yet applied
    assert node.membership == Membership((1, 2, 3), learners=(4,))
    metadata = node.snapshot_metadata()
    assert metadata.index == node.applied_index
    assert metadata.membership == Membership((1, 2, 3))


def test_a_joining_node_takes_no_snapshot_before_it_applied_a_configuration() -> None:
    """The cluster's first configuration is not in the log (it comes from each node's
    `Config`), so a joining node that applied entries only up to before its first CONFIG entry
    cannot tell what a snapshot there would record: it waits until it applied one."""
    storage = MemoryStorage()
    node = RaftNode(Config(node_id=4, voters=()), storage, random.Random(4))
    joined = Membership((1, 2, 3), learners=(4,))
    entries = [Entry(1, index, b"cmd") for index in range(1, 7)]
    entries.append(Entry(1, 7, encode_membership(joined), EntryKind.CONFIG.value))
    node.step(AppendEntries(1, 1, 4, 0, 0, tuple(entries), 6, carries_config=True))
    _persist_and_apply(node, storage)
    assert node.membership == joined and node.applied_index == 6
    assert not node.snapshot_due(threshold=1)
    with pytest.raises(UsageError, match="no configuration applied yet"):
        node.snapshot_metadata()

    node.step(Heartbeat(1, 1, 4, commit=7))
    _persist_and_apply(node, storage)
    assert node.applied_index == 7
    assert node.snapshot_due(threshold=1)
    assert node.snapshot_metadata() == SnapshotMetadata(7, 1, joined)


def _persist_and_apply(node: RaftNode, storage: MemoryStorage) -> None:
    ready = node.ready()
    storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
    node.advance(ready)


def test_the_monitor_counts_durability_on_a_configuration_compacted_into_a_snapshot() -> None:
    """Once the CONFIG entries are compacted away, the configuration the durability check
    counts on comes from the snapshot, not from the voters the cluster started with."""
    cluster = grown_cluster()
    leader = cluster.leader()
    assert leader is not None
    assert cluster.replicas[leader].storage.first_index() > 10
    assert committed_membership(cluster) == Membership((1, 2, 3, 4))
