"""The `membership` nemesis and membership changes under the simulator (thesis ch. 4): random
adds, removals, replacements and promotions under other faults hold every property; the
durability check follows the configuration in effect; forced reconfiguration after a lost
majority brings the survivors back with one leader per term."""

from __future__ import annotations

import pytest

from raft import Membership, MembershipChangeError, Role
from sim._invariants import election_safety, log_matching
from sim._membership_nemesis import SPARES, spare_ids
from sim._monitor import committed_membership
from sim._run import RunOptions, run_simulation
from tests.builders import make_cluster

CHANGES = RunOptions(
    nodes=5, nemesis="membership,kill,partition-halves,isolate-leader", duration=20
)


def test_spares_join_only_with_the_membership_nemesis() -> None:
    assert spare_ids(5, ("kill",)) == ()
    assert spare_ids(5, ("kill", "membership")) == tuple(range(6, 6 + SPARES))


@pytest.mark.parametrize("seed", range(4))
def test_random_membership_changes_under_faults_hold_every_property(seed: int) -> None:
    result = run_simulation(seed, CHANGES)
    assert result.ok, f"{result.violations} — replay: {result.replay_command()}"
    changes = [fault for fault in result.faults if fault.startswith("membership")]
    assert changes and not all("refused" in fault or "no leader" in fault for fault in changes)


def test_membership_runs_replay_exactly() -> None:
    options = RunOptions(nodes=5, nemesis="membership", duration=10)
    assert run_simulation(3, options).trace_sha256 == run_simulation(3, options).trace_sha256


def test_durability_counts_the_voters_of_the_committed_configuration() -> None:
    cluster = make_cluster(3, spares=(4, 5))
    leader = cluster.elect()
    assert committed_membership(cluster) == Membership((1, 2, 3))
    cluster.run_for(500_000_000)
    cluster.replicas[leader].node.change_membership(
        [voter for voter in (1, 2, 3) if voter != leader] + [4, 5]
    )
    cluster.flush(leader)
    cluster.run_for(3_000_000_000)
    final = committed_membership(cluster)
    assert not final.joint and 4 in final.voters and 5 in final.voters


def test_forced_reconfiguration_after_losing_a_majority_for_good() -> None:
    """Three of five nodes die for good; the most up-to-date survivor forces a two-node
    configuration; the survivors elect it, take new writes, and never see two leaders."""
    cluster = make_cluster(5, seed=3)
    leader = cluster.elect()
    for number in range(20):
        cluster.propose(leader, b"w%d" % number)
    cluster.run_for(1_000_000_000)
    lost = [*[node for node in (1, 2, 3, 4, 5) if node != leader][:2], leader]
    for node_id in lost:
        cluster.crash(node_id)
    survivors = [node for node in (1, 2, 3, 4, 5) if node not in lost]
    cluster.run_for(5_000_000_000)
    assert cluster.leader() is None  # no majority: no leader, no progress
    chosen = max(
        survivors,
        key=lambda node: (
            cluster.replicas[node].node.log_entries(1, 10**6)[-1].term,
            cluster.replicas[node].node.last_index,
        ),
    )
    with pytest.raises(MembershipChangeError):
        cluster.replicas[chosen].node.force_new_membership_unsafe(lost)
    cluster.replicas[chosen].node.force_new_membership_unsafe(survivors)
    cluster.flush(chosen)
    assert cluster.run_until(lambda: cluster.leader() is not None, 10_000_000_000)
    new_leader = cluster.leader()
    assert new_leader in survivors
    _, index = cluster.propose(new_leader, b"after")
    cluster.run_for(2_000_000_000)
    for node in survivors:
        replica = cluster.replicas[node]
        assert replica.node.membership == Membership(tuple(survivors))
        assert replica.node.commit_index >= index
        assert replica.node.role in (Role.LEADER, Role.FOLLOWER)
    assert election_safety(cluster.leaders_by_term) is None
    logs = {node: cluster.replicas[node].node.log_entries(1, 10**6) for node in survivors}
    assert log_matching(logs) is None
