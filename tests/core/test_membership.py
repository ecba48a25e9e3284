"""Paper tests for membership changes (thesis ch. 4).

A configuration takes effect on a node as soon as its entry is in that node's log (§4.1);
changes of voters go through a joint configuration whose decisions need a majority of the
old and of the new voters (§4.3); learners receive the log but never vote (§4.2.1); a removed
leader steps down once the configuration without it commits (§4.2.2); a removed node cannot
disrupt the cluster (§4.2.3). Small scenarios step real replicas by hand (`deliver_all`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from raft import (
    AppendEntries,
    Config,
    Entry,
    EntryKind,
    HardState,
    LeadershipTransferInProgress,
    Membership,
    MembershipChangeError,
    Message,
    NodeFailed,
    NotLeader,
    Role,
    TimeoutNow,
    UsageError,
    VoteRequest,
    VoteResponse,
)
from raft.core._membership import MembershipDecodeError, encode_membership
from raft.storage import MemoryStorage
from sim._replica import Replica
from tests.builders import (
    AppliedLog,
    deliver_all,
    elect,
    make_group,
    make_leader,
    make_replica,
    messages_of,
)


def involving(*node_ids: int) -> Callable[[Message], bool]:
    """A `drop` that loses every message from or to one of `node_ids` (a partition)."""
    return lambda message: message.sender in node_ids or message.recipient in node_ids


def group_with_joiners(
    size: int, joiners: tuple[int, ...], **options: object
) -> dict[int, Replica]:
    """Voters 1..size, plus nodes `joiners` started with no membership (`Config.voters == ()`)."""
    replicas = make_group(size, **options)
    for node_id in joiners:
        replicas[node_id] = make_replica(node_id, (), seed=node_id, **options)
    return replicas


def settle(
    replicas: dict[int, Replica], leader_id: int = 1, drop: Callable[[Message], bool] | None = None
) -> None:
    """Deliver the leader's pending work, then a heartbeat round (so followers learn the commit
    index and catch up)."""
    leader = replicas[leader_id]
    deliver_all(replicas, messages_of(leader), drop)
    for _ in range(3):
        leader.node.tick()
        deliver_all(replicas, messages_of(leader), drop)


def config_entry(term: int, index: int, membership: Membership) -> Entry:
    return Entry(term, index, encode_membership(membership), EntryKind.CONFIG.value)


# ---- learners (§4.2.1) ------------------------------------------------------------------


def test_a_joining_node_waits_for_the_leader_and_never_campaigns() -> None:
    joiner = make_replica(4, (), seed=4)
    for _ in range(100):
        joiner.node.tick()
    assert messages_of(joiner) == []
    assert joiner.node.membership is None
    assert joiner.node.role is Role.FOLLOWER


def test_a_learner_receives_the_log_but_never_counts_for_commitment() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    leader = replicas[1].node
    _, index = leader.add_learner(4)
    settle(replicas)
    assert leader.membership == Membership((1, 2, 3), learners=(4,))
    assert leader.commit_index >= index
    learner = replicas[4].node
    assert learner.membership == leader.membership
    assert learner.log_entries(1, 100) == leader.log_entries(1, 100)
    assert learner.commit_index == leader.commit_index
    assert set(leader.progress()) == {1, 2, 3, 4}
    # With the voters 2 and 3 cut off, the leader and its learner are no majority.
    _, index = leader.propose(b"x")
    settle(replicas, drop=involving(2, 3))
    assert replicas[4].node.last_index == index
    assert leader.commit_index < index


def test_a_learner_never_campaigns_nor_is_asked_to_vote() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    replicas[1].node.add_learner(4)
    settle(replicas)
    learner = replicas[4]
    for _ in range(100):
        learner.node.tick()
    assert messages_of(learner) == []
    replicas[2].node.campaign()
    sent = deliver_all(replicas, messages_of(replicas[2]))
    assert not [m for m in sent if isinstance(m, VoteRequest) and m.recipient == 4]


def test_a_learner_ignores_timeout_now() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    replicas[1].node.add_learner(4)
    settle(replicas)
    learner = replicas[4].node
    learner.step(TimeoutNow(learner.term, 1, 4))
    assert learner.role is Role.FOLLOWER
    assert messages_of(replicas[4]) == []


def test_a_leader_heard_only_by_learners_steps_down() -> None:
    """Check-quorum counts voters only (thesis §6.2): a learner's answers keep no leader."""
    replicas = group_with_joiners(3, (4, 5))
    elect(replicas)
    leader = replicas[1].node
    leader.add_learner(4)
    settle(replicas)
    leader.add_learner(5)
    settle(replicas)
    for _ in range(25):
        leader.tick()
        deliver_all(replicas, messages_of(replicas[1]), drop=involving(2, 3))
    assert leader.role is not Role.LEADER  # stepped down (and campaigns again, in vain)


def test_leadership_cannot_go_to_a_learner() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    replicas[1].node.add_learner(4)
    settle(replicas)
    with pytest.raises(UsageError, match="pick one of the other voters"):
        replicas[1].node.transfer_leadership(4)


def test_a_learner_is_promoted_only_once_caught_up() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    leader = replicas[1].node
    leader.add_learner(4)
    settle(replicas, drop=involving(4))
    leader.propose_batch([b"a", b"b"])
    settle(replicas, drop=involving(4))
    with pytest.raises(
        MembershipChangeError,
        match=rf"learner 4 is not caught up: match 0, commit {leader.commit_index}",
    ):
        leader.promote_learner(4)
    settle(replicas)
    _, joint = leader.promote_learner(4)
    assert leader.membership == Membership((1, 2, 3, 4), outgoing=(1, 2, 3))
    settle(replicas)
    assert leader.commit_index > joint
    assert leader.membership == Membership((1, 2, 3, 4))
    assert replicas[4].node.membership == Membership((1, 2, 3, 4))


# ---- joint consensus (§4.3) --------------------------------------------------------------


def test_a_joint_configuration_commits_only_with_a_majority_of_both() -> None:
    """Replacing 2 and 3 by 4 and 5: the old voters alone cannot commit the change."""
    replicas = group_with_joiners(3, (4, 5))
    elect(replicas)
    leader = replicas[1].node
    _, joint = leader.change_membership((1, 4, 5))
    assert leader.membership == Membership((1, 4, 5), outgoing=(1, 2, 3))
    settle(replicas, drop=involving(4, 5))
    assert replicas[2].node.membership == leader.membership  # in effect there, uncommitted
    assert leader.commit_index < joint
    settle(replicas, drop=involving(5))
    assert leader.commit_index > joint  # joint committed, then the final one (1 and 4 of it)
    assert leader.membership == Membership((1, 4, 5))
    kinds = [entry.kind for entry in leader.log_entries(joint, joint + 2)]
    assert kinds == [EntryKind.CONFIG, EntryKind.CONFIG]


def test_committed_config_entries_reach_the_driver_but_not_the_state_machine() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    seen: list[Entry] = []
    replicas[2]._on_apply = lambda node_id, entry, result: seen.append(entry)
    replicas[1].node.add_learner(4)
    settle(replicas)
    assert [entry.kind for entry in seen] == [EntryKind.NOOP, EntryKind.CONFIG]
    state_machine = replicas[2].state_machine
    assert isinstance(state_machine, AppliedLog) and state_machine.commands == []


def test_a_joint_election_needs_a_majority_of_both() -> None:
    joint = Membership((1, 4, 5), outgoing=(1, 2, 3))
    storage = MemoryStorage()
    storage.append([Entry(1, 1, b"", EntryKind.NOOP.value), config_entry(1, 2, joint)])
    storage.set_hard_state(HardState(1, None, 1))
    replica = Replica(
        Config(node_id=1, voters=(1, 2, 3), pre_vote=False),
        random.Random(1),
        AppliedLog,
        storage=storage,
    )
    node = replica.node
    assert node.membership == joint
    node.campaign()
    requests = [m for m in messages_of(replica) if isinstance(m, VoteRequest)]
    assert sorted(m.recipient for m in requests) == [2, 3, 4, 5]
    for voter in (2, 3):  # the old majority
        node.step(VoteResponse(node.term, voter, 1, True))
    assert node.role is Role.CANDIDATE
    node.step(VoteResponse(node.term, 4, 1, True))
    assert node.role is Role.LEADER


def test_a_joint_election_is_lost_when_lost_in_either_half() -> None:
    joint = Membership((1, 4, 5), outgoing=(1, 2, 3))
    storage = MemoryStorage()
    storage.append([config_entry(1, 1, joint)])
    replica = Replica(
        Config(node_id=1, voters=(1, 2, 3), pre_vote=False),
        random.Random(1),
        AppliedLog,
        storage=storage,
    )
    node = replica.node
    node.campaign()
    node.step(VoteResponse(node.term, 2, 1, True))
    node.step(VoteResponse(node.term, 3, 1, True))
    node.step(VoteResponse(node.term, 4, 1, False))
    node.step(VoteResponse(node.term, 5, 1, False))
    assert node.role is Role.FOLLOWER


def test_without_auto_leave_the_cluster_stays_joint_until_told() -> None:
    replicas = group_with_joiners(3, (4,), auto_leave=False)
    elect(replicas)
    leader = replicas[1].node
    _, joint = leader.add_voter(4)
    with pytest.raises(
        MembershipChangeError, match=rf"joint configuration at index {joint} is not committed"
    ):
        leader.leave_joint()
    settle(replicas)
    assert leader.commit_index >= joint
    assert leader.membership == Membership((1, 2, 3, 4), outgoing=(1, 2, 3))
    with pytest.raises(
        MembershipChangeError, match=rf"joint configuration at index {joint} must be left first"
    ):
        leader.add_learner(5)
    _, final = leader.leave_joint()
    assert final == joint + 1
    settle(replicas)
    assert leader.commit_index >= final
    assert {replica.node.membership for replica in replicas.values()} == {Membership((1, 2, 3, 4))}
    with pytest.raises(MembershipChangeError, match="not joint"):
        leader.leave_joint()


def test_a_new_leader_leaves_the_joint_configuration_its_predecessor_entered() -> None:
    replicas = group_with_joiners(3, (4,), check_quorum=False)
    elect(replicas)
    leader = replicas[1].node
    _, joint = leader.add_voter(4)
    # The joint entry reaches everyone, but node 1 goes down before it learns of the commit.
    deliver_all(replicas, messages_of(replicas[1]), drop=lambda m: m.recipient == 1)
    replicas[1].crash()
    elect(replicas, 2)
    settle(replicas, 2)
    assert replicas[2].node.membership == Membership((1, 2, 3, 4))
    assert replicas[2].node.commit_index > joint


# ---- removed nodes (§4.2.2, §4.2.3) ----------------------------------------------------


def test_a_removed_leader_steps_down_once_the_change_commits() -> None:
    replicas = make_group(3)
    elect(replicas)
    leader = replicas[1].node
    _, joint = leader.remove_voter(1)
    # The new majority is 2 and 3: the leader does not count itself toward it.
    settle(replicas, drop=involving(3))
    assert leader.commit_index < joint
    assert leader.role is Role.LEADER
    settle(replicas)
    assert leader.membership == Membership((2, 3))
    assert leader.role is Role.FOLLOWER
    assert leader.commit_index == joint + 1  # the followers learn of it from their next leader
    for _ in range(100):
        leader.tick()
    assert not [m for m in messages_of(replicas[1]) if isinstance(m, VoteRequest)]
    for _ in range(40):
        for node_id in (2, 3):
            replicas[node_id].node.tick()
            deliver_all(replicas, messages_of(replicas[node_id]))
    leaders = [
        replicas[node_id].node for node_id in (2, 3) if replicas[node_id].node.role is Role.LEADER
    ]
    assert len(leaders) == 1
    new_leader = leaders[0]
    assert new_leader.membership == Membership((2, 3))
    assert new_leader.commit_index > joint + 1


def test_a_removed_node_does_not_disrupt_the_cluster() -> None:
    """Node 3 never hears of its removal: its latest configuration still lists it, so it
    campaigns, but its pre-votes go unanswered while 1 and 2 hear from their leader."""
    replicas = make_group(3)
    elect(replicas)
    leader = replicas[1].node
    leader.remove_voter(3)
    settle(replicas, drop=involving(3))
    assert leader.membership == Membership((1, 2))
    assert replicas[3].node.membership == Membership((1, 2, 3))
    term = leader.term
    for _ in range(200):
        for replica in replicas.values():
            replica.node.tick()
            deliver_all(replicas, messages_of(replica))
    assert leader.role is Role.LEADER
    assert leader.term == replicas[2].node.term == term
    assert replicas[3].node.role is Role.PRE_CANDIDATE


def test_pre_vote_alone_keeps_a_removed_node_out() -> None:
    """Without check-quorum the others answer its pre-votes, but refuse them: it never
    received the configuration that removed it, so its log is behind theirs (§4.2.3, §9.6)."""
    replicas = make_group(3, check_quorum=False)
    elect(replicas)
    leader = replicas[1].node
    leader.remove_voter(3)
    settle(replicas, drop=involving(3))
    term = leader.term
    for _ in range(200):
        for replica in replicas.values():
            replica.node.tick()
            deliver_all(replicas, messages_of(replica))
    assert leader.role is Role.LEADER
    assert leader.term == replicas[2].node.term == term


# ---- the log is the record -------------------------------------------------------------


def test_truncating_an_uncommitted_config_entry_reverts_the_configuration() -> None:
    follower = make_replica(2, terms=[1], term=1)
    node = follower.node
    changed = Membership((1, 2, 3), learners=(4,))
    node.step(AppendEntries(1, 1, 2, 1, 1, (config_entry(1, 2, changed),), 1, carries_config=True))
    assert node.membership == changed
    node.step(AppendEntries(2, 3, 2, 1, 1, (Entry(2, 2, b"", EntryKind.NOOP.value),), 1))
    assert node.membership == Membership((1, 2, 3))


def test_a_restarted_node_rebuilds_its_configuration_from_the_log() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    replicas[1].node.add_learner(4)
    settle(replicas)
    for node_id in (1, 4):
        replicas[node_id].restart()
        assert replicas[node_id].node.membership == Membership((1, 2, 3), learners=(4,))


def test_a_corrupt_config_entry_fails_the_node_loudly() -> None:
    follower = make_replica(2, terms=[1], term=1)
    bad = Entry(1, 2, b"\x09junk", EntryKind.CONFIG.value)
    with pytest.raises(MembershipDecodeError):
        follower.node.step(AppendEntries(1, 1, 2, 1, 1, (bad,), 1, carries_config=True))
    with pytest.raises(NodeFailed):
        follower.node.tick()


# ---- refusals ----------------------------------------------------------------------------


def test_changes_are_refused_with_clear_errors() -> None:
    replicas = group_with_joiners(3, (4,))
    elect(replicas)
    leader = replicas[1].node
    for call, message in [
        (lambda: leader.remove_voter(7), "node 7 is not a voter"),
        (lambda: leader.promote_learner(7), "node 7 is not a learner"),
        (lambda: leader.remove_learner(7), "node 7 is not a learner"),
        (lambda: leader.add_voter(2), "node 2 is already a voter"),
        (lambda: leader.add_learner(3), "node 3 is already a member"),
        (lambda: leader.add_voter(0), "invalid membership"),
        (lambda: leader.add_learner(2**64), "invalid membership"),
        (lambda: leader.change_membership(5), "invalid membership"),  # type: ignore[arg-type]
        (lambda: leader.change_membership((1, 2, 3)), "already is"),
        (lambda: leader.change_membership(()), "cannot remove the last voter"),
        (lambda: leader.change_membership((1, 2), learners=(3,)), "cannot become learners"),
    ]:
        with pytest.raises(MembershipChangeError, match=message):
            call()
    assert leader.membership == Membership((1, 2, 3))
    leader.propose(b"still usable")
    with pytest.raises(NotLeader):
        replicas[2].node.add_voter(4)
    _, index = leader.add_learner(4)
    with pytest.raises(
        MembershipChangeError, match=f"another membership change is pending at index {index}"
    ):
        leader.remove_voter(3)
    settle(replicas)
    with pytest.raises(MembershipChangeError, match="node 4 is a learner: promote_learner"):
        leader.add_voter(4)
    leader.transfer_leadership(2)
    with pytest.raises(LeadershipTransferInProgress):
        leader.remove_voter(3)


def test_the_last_voter_cannot_be_removed() -> None:
    replicas = make_group(1)
    elect(replicas)
    with pytest.raises(MembershipChangeError, match="cannot remove the last voter"):
        replicas[1].node.remove_voter(1)


def test_a_new_leader_takes_no_change_before_committing_in_its_term() -> None:
    """Ongaro's raft-dev note: a change based on an uncommitted configuration of an earlier
    term could make two disjoint majorities."""
    leader = make_leader(1).node  # its no-op is not acknowledged yet
    with pytest.raises(MembershipChangeError, match="has not committed an entry of its term"):
        leader.add_learner(4)


# ---- disaster recovery -------------------------------------------------------------------


def test_forcing_a_configuration_on_one_survivor_brings_the_cluster_back() -> None:
    replicas = make_group(5)
    elect(replicas)
    leader = replicas[1].node
    leader.propose(b"before")
    settle(replicas)
    for node_id in (1, 4, 5):  # a majority lost for good
        replicas[node_id].crash()
    survivors = {node_id: replicas[node_id] for node_id in (2, 3)}
    for _ in range(20):  # long enough that no survivor still counts on the old leader
        survivors[3].node.tick()
        messages_of(survivors[3])
    term = survivors[2].node.term
    survivors[2].node.force_new_membership_unsafe((2, 3))
    assert survivors[2].node.membership == Membership((2, 3))
    deliver_all(survivors, messages_of(survivors[2]))
    new = survivors[2].node
    assert new.role is Role.LEADER and new.term == term + 1
    assert survivors[3].node.membership == Membership((2, 3))
    _, index = new.propose(b"after")
    settle(survivors, 2)
    assert new.commit_index >= index
    assert survivors[3].node.commit_index >= index
    applied = survivors[3].state_machine
    assert isinstance(applied, AppliedLog) and applied.commands == [b"before", b"after"]


def test_forcing_refuses_a_membership_without_the_node() -> None:
    replica = make_replica(2)
    with pytest.raises(MembershipChangeError, match="must be one of the voters"):
        replica.node.force_new_membership_unsafe((3, 4))
