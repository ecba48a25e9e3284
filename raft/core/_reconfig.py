"""Membership changes, the leader's side (thesis ch. 4): checking a request and entering,
or leaving, a joint configuration.

Every change of voters goes through a joint configuration (thesis §4.3): the leader appends
`Membership(new voters, outgoing=old voters)`, in effect at once on each node that holds it
(§4.1), so from then on every decision needs a majority of both sets; once it commits, the
leader appends the new voters alone (automatically, unless `Config.auto_leave` is off). A
change of learners only needs no joint phase: learners never count.

A leader takes a change only when the previous one committed and once an entry of its own
term committed: a new leader may hold an uncommitted configuration of an earlier term, and
a change based on it could produce two disjoint majorities (Ongaro, raft-dev, 2015, "bug in
single-server membership changes").
"""

from __future__ import annotations

from collections.abc import Iterable

from raft.core._errors import MembershipChangeError
from raft.core._membership import Membership
from raft.core._reads import committed_in_own_term
from raft.core._replication import append_config, leave_joint
from raft.core._state import NodeState


def current(state: NodeState) -> Membership:
    """The leader's configuration in effect (a leader always has one)."""
    membership = state.membership
    assert membership is not None, "a leader always has a configuration"
    return membership


def _check_settled(state: NodeState) -> None:
    log = state.log
    if not committed_in_own_term(state):
        raise MembershipChangeError(
            f"leader {state.node_id} has not committed an entry of its term {state.term} yet; "
            "retry shortly"
        )
    index = state.memberships.index
    if index > log.committed:
        raise MembershipChangeError(
            f"another membership change is pending at index {index} (commit index "
            f"{log.committed}); retry once it commits"
        )


def change(state: NodeState, voters: Iterable[int], learners: Iterable[int]) -> int:
    """Leader: start moving to `voters` and `learners`; returns the index of the entry."""
    _check_settled(state)
    old = current(state)
    if old.joint:
        raise MembershipChangeError(
            f"the joint configuration at index {state.memberships.index} must be left first "
            "(leave_joint())"
        )
    try:
        wanted = Membership(tuple(voters), (), tuple(learners))
    except (TypeError, ValueError) as error:
        if "must not be empty" in str(error):
            raise MembershipChangeError("cannot remove the last voter") from error
        raise MembershipChangeError(f"invalid membership: {error}") from error
    if wanted == old:
        raise MembershipChangeError(f"the configuration already is {old}")
    demoted = sorted(set(old.voters) & set(wanted.learners))
    if demoted and wanted.voters != old.voters:
        raise MembershipChangeError(
            f"voters {demoted} cannot become learners in the same change that replaces voters; "
            "change the voters first"
        )
    committed = state.log.committed
    for promoted in wanted.voters:
        if promoted in old.learners:
            match = state.progress[promoted].match_index
            if match < committed:
                raise MembershipChangeError(
                    f"learner {promoted} is not caught up: match {match}, commit {committed}"
                )
    if wanted.voters == old.voters:
        return append_config(state, wanted)
    return append_config(state, Membership(wanted.voters, old.voters, wanted.learners))


def leave(state: NodeState) -> int:
    """Leader: leave the committed joint configuration; returns the index of the entry."""
    membership = current(state)
    index = state.memberships.index
    if not membership.joint:
        raise MembershipChangeError("the configuration is not joint: there is nothing to leave")
    if index > state.log.committed:
        raise MembershipChangeError(
            f"the joint configuration at index {index} is not committed yet "
            f"(commit index {state.log.committed}); retry once it commits"
        )
    return leave_joint(state)


def add_voter(state: NodeState, node_id: int) -> int:
    """Leader: make a new node a voter (through a joint configuration)."""
    old = current(state)
    if old.is_voter(node_id):
        raise MembershipChangeError(f"node {node_id} is already a voter")
    if node_id in old.learners:
        raise MembershipChangeError(
            f"node {node_id} is a learner: promote_learner({node_id}) once it caught up"
        )
    return change(state, (*old.voters, node_id), old.learners)


def remove_voter(state: NodeState, node_id: int) -> int:
    """Leader: remove a voter (through a joint configuration)."""
    old = current(state)
    if node_id not in old.voters:
        raise MembershipChangeError(f"node {node_id} is not a voter (voters: {list(old.voters)})")
    return change(state, [voter for voter in old.voters if voter != node_id], old.learners)


def add_learner(state: NodeState, node_id: int) -> int:
    """Leader: make a new node a learner (one entry: learners never count)."""
    old = current(state)
    if node_id in old.members():
        raise MembershipChangeError(f"node {node_id} is already a member")
    return change(state, old.voters, (*old.learners, node_id))


def promote_learner(state: NodeState, node_id: int) -> int:
    """Leader: make a caught-up learner a voter (through a joint configuration)."""
    old = current(state)
    if node_id not in old.learners:
        raise MembershipChangeError(f"node {node_id} is not a learner")
    learners = [learner for learner in old.learners if learner != node_id]
    return change(state, (*old.voters, node_id), learners)


def remove_learner(state: NodeState, node_id: int) -> int:
    """Leader: stop replicating to a learner (one entry)."""
    old = current(state)
    if node_id not in old.learners:
        raise MembershipChangeError(f"node {node_id} is not a learner")
    return change(state, old.voters, [learner for learner in old.learners if learner != node_id])
