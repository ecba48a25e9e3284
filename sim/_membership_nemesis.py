"""The `membership` nemesis: random membership changes on the leader, while other faults go on.

With this nemesis on, the cluster gets `SPARES` more nodes, started with `Config(voters=())`:
joining nodes with no membership, which wait for a leader to send them the log. Each fault is
one change on the current leader, drawn from what its configuration allows: add a learner (and
keep trying to promote it while the fault lasts: the leader refuses until it caught up), promote
a learner, add a voter directly, remove a voter (the leader itself included; never below
`MIN_VOTERS`), replace one voter, or replace two at once (a change of several voters, which only
joint consensus makes safe, thesis §4.3). Refusals (`MembershipChangeError`, `NotLeader`, a
leadership transfer) are part of the game: they are recorded and the next fault tries again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from raft import LeadershipTransferInProgress, MembershipChangeError, NotLeader, RaftNode
from sim._cluster import Cluster

SPARES = 2
"""Nodes added beyond `--nodes` when the membership nemesis is on, to join and leave."""
MIN_VOTERS = 3
"""Voters are never removed below this, so the other faults stay survivable."""
_PROMOTE_EVERY_NS = 300_000_000

Undo = Callable[[], None]


def spare_ids(nodes: int, kinds: tuple[str, ...]) -> tuple[int, ...]:
    """The ids of the spare nodes a run with these nemesis kinds gets (none without
    `membership`, so runs without it are exactly what they were before it existed)."""
    return tuple(range(nodes + 1, nodes + 1 + SPARES)) if "membership" in kinds else ()


class MembershipChanges:
    """Starts one random membership change per fault; `start` returns (detail, undo)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._promoting: int | None = None
        """The fault number whose learner is being promoted; older retries lapse."""
        self._faults = 0

    def start(self, cluster: Cluster) -> tuple[str, Undo]:
        """Try one change at the current leader; what was tried and how it went."""
        self._faults += 1
        fault = self._faults
        self._promoting = None

        def stop() -> None:
            self._promoting = None

        leader = cluster.leader()
        if leader is None or cluster.is_paused(leader):
            return "no leader to ask", stop
        membership = cluster.replicas[leader].node.membership
        assert membership is not None
        rng = self._rng
        voters = list(membership.voters)
        outsiders = [node for node in sorted(cluster.replicas) if node not in membership.members()]
        choices = []
        if outsiders:
            choices += ["add-learner", "add-voter", "replace"]
        if membership.learners:
            choices.append("promote")
        if len(voters) > MIN_VOTERS:
            choices.append("remove")
        if len(outsiders) >= 2 and len(voters) >= 2:
            # Twice as likely: a change of several voters is the one only joint consensus
            # makes safe (thesis §4.3), the one most worth exercising.
            choices += ["replace-two", "replace-two"]
        if not choices:
            return f"nothing to change in {membership}", stop
        action = rng.choice(choices)
        change: Callable[[RaftNode], object]
        if action == "add-learner":
            learner = rng.choice(outsiders)
            what, change = f"add learner {learner}", lambda node: node.add_learner(learner)
            self._promoting = fault
            cluster.schedule(
                cluster.now + _PROMOTE_EVERY_NS, lambda: self._promote(cluster, fault, learner)
            )
        elif action == "promote":
            learner = rng.choice(membership.learners)
            what, change = f"promote {learner}", lambda node: node.promote_learner(learner)
        elif action == "add-voter":
            voter = rng.choice(outsiders)
            what, change = f"add voter {voter}", lambda node: node.add_voter(voter)
        elif action == "remove":
            voter = rng.choice(voters)
            what, change = f"remove voter {voter}", lambda node: node.remove_voter(voter)
        else:
            count = 2 if action == "replace-two" else 1
            # Followers when there are enough: `remove` already takes leaders away, and a
            # leader that stays while the old majority loses it is the sharpest test.
            followers = [voter for voter in voters if voter != leader]
            gone = rng.sample(followers if len(followers) >= count else voters, count)
            new = rng.sample(outsiders, count)
            wanted = sorted([*(voter for voter in voters if voter not in gone), *new])
            learners = [learner for learner in membership.learners if learner not in new]
            what = f"replace voters {sorted(gone)} by {sorted(new)}"
            change = lambda node: node.change_membership(wanted, learners)  # noqa: E731
        return self._try(cluster, leader, what, change), stop

    def _try(
        self, cluster: Cluster, leader: int, what: str, change: Callable[[RaftNode], object]
    ) -> str:
        node = cluster.replicas[leader].node
        try:
            change(node)
        except (MembershipChangeError, NotLeader, LeadershipTransferInProgress) as error:
            return f"{what} at node {leader}: refused ({error})"
        cluster.flush(leader)
        return f"{what} at node {leader}"

    def _promote(self, cluster: Cluster, fault: int, learner: int) -> None:
        """While the fault lasts: ask the current leader to promote `learner` until it does
        (it refuses while the learner is behind) or the learner is no longer one."""
        if self._promoting != fault:
            return
        leader = cluster.leader()
        if leader is not None and not cluster.is_paused(leader):
            node = cluster.replicas[leader].node
            membership = node.membership
            if membership is None or learner not in membership.learners:
                return
            try:
                node.promote_learner(learner)
            except (MembershipChangeError, NotLeader, LeadershipTransferInProgress):
                pass
            else:
                cluster.flush(leader)
                return
        cluster.schedule(
            cluster.now + _PROMOTE_EVERY_NS, lambda: self._promote(cluster, fault, learner)
        )
