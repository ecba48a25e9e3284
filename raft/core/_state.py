"""The state every part of the role logic shares: term, vote, role, log, peers, timers."""

from __future__ import annotations

import enum
import random

from raft.core._config import Config
from raft.core._log import RaftLog
from raft.core._membership import (
    Membership,
    MembershipHistory,
    decode_membership,
)
from raft.core._messages import EntryKind, Message
from raft.core._progress import Progress
from raft.core._quorum import JointQuorum
from raft.core._read_only import ReadOnly, ReadState
from raft.core._snapshot import PartialSnapshot, base_membership
from raft.core._storage import Storage


class Role(enum.Enum):
    """A node's role (§5.1), plus the pre-candidate of pre-vote (thesis §9.6)."""

    FOLLOWER = 1
    PRE_CANDIDATE = 2
    CANDIDATE = 3
    LEADER = 4


class NodeState:
    """Term, vote, role and timers of one node, with its log and (as leader) its peers' progress.

    Owned by `RaftNode`; the election and replication modules read and change it. Invariant:
    `leader_id`, when set, is the leader of `term`; `progress` is only meaningful while LEADER.
    """

    __slots__ = (
        "acked_rounds",
        "clock",
        "config",
        "election_elapsed",
        "heartbeat_elapsed",
        "held_reads",
        "is_voter",
        "leader_id",
        "log",
        "memberships",
        "messages",
        "node_id",
        "peers",
        "progress",
        "quorum",
        "randomized_election_timeout",
        "read_only",
        "read_states",
        "receiving_snapshot",
        "restarted_with_lease_promise",
        "rng",
        "role",
        "term",
        "timeout_now_sent",
        "transfer_elapsed",
        "transfer_target",
        "vote",
        "votes",
        "voting_peers",
    )

    def __init__(self, config: Config, storage: Storage, rng: random.Random) -> None:
        hard_state = storage.initial_state()
        self.config = config
        self.node_id = config.node_id
        self.rng = rng
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.role = Role.FOLLOWER
        self.leader_id: int | None = None
        self.log = RaftLog(storage)
        self.memberships = membership_history(config, storage)
        self.quorum = JointQuorum(())
        """Who decides: the voters of the configuration in effect, both halves while joint."""
        self.peers: tuple[int, ...] = ()
        """The other members, in id order: whom a leader replicates to and heartbeats."""
        self.voting_peers: tuple[int, ...] = ()
        """The other voters (of either half), in id order: whom a candidate asks for votes."""
        self.is_voter = False
        """Whether this node votes in the configuration in effect."""
        self.adopt_membership()
        self.receiving_snapshot: PartialSnapshot | None = None
        """As follower: the snapshot whose chunks are arriving (paper §7, InstallSnapshot)."""
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.messages: list[Message] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = 0
        self.reset_election_timer()
        self.clock = 0
        """Ticks since this node started: the leader's lease clock."""
        self.restarted_with_lease_promise = config.lease_reads and hard_state.term > 0
        """With lease reads, a node that had joined a term may have acknowledged a heartbeat
        just before it went down; it keeps ignoring vote requests for an election timeout
        after it starts again, as it promised (thesis §6.4.1). A term-0 node acknowledged none."""
        self.read_only = ReadOnly()
        self.read_states: list[ReadState] = []
        """Confirmed reads for the next `Ready`."""
        self.held_reads: list[tuple[bytes, int]] = []
        """(context, requester) of reads a new leader holds until it commits in its term."""
        self.acked_rounds: dict[int, int] = {}
        """As leader: the latest heartbeat round (lease clock) each follower answered."""
        self.transfer_target: int | None = None
        self.transfer_elapsed = 0
        self.timeout_now_sent = False
        """As leader: a `TimeoutNow` went out this term. Its campaign may come at any later time
        (the message may be delayed) and voters grant it despite their lease promise, so the
        lease is void for the rest of the term, even once the transfer was abandoned."""

    def forget_leadership(self) -> None:
        """Drop what only a leader tracks: progress, waiting reads, lease rounds, a transfer."""
        self.progress = {}
        self.read_only.clear()
        self.held_reads = []
        self.acked_rounds = {}
        self.transfer_target = None
        self.transfer_elapsed = 0
        self.timeout_now_sent = False

    @property
    def membership(self) -> Membership | None:
        """The configuration in effect: the latest in the log (thesis §4.1), else the base."""
        return self.memberships.current

    def adopt_membership(self) -> None:
        """Derive quorum and peers from the configuration in effect (call after it changes)."""
        membership = self.membership
        node_id = self.node_id
        if membership is None:
            self.quorum = JointQuorum(())
            self.peers = self.voting_peers = ()
            self.is_voter = False
            return
        self.quorum = JointQuorum(membership.voters, membership.outgoing)
        self.peers = tuple(member for member in membership.members() if member != node_id)
        self.voting_peers = tuple(voter for voter in self.quorum.voters if voter != node_id)
        self.is_voter = membership.is_voter(node_id)

    def reset_election_timer(self) -> None:
        """Restart the election timer with a fresh random timeout (§5.2: randomized so split
        votes are rare and resolve quickly)."""
        ticks = self.config.election_ticks
        self.election_elapsed = 0
        self.randomized_election_timeout = self.rng.randrange(ticks, 2 * ticks)

    def send(self, message: Message) -> None:
        """Queue a message for the next `Ready`."""
        self.messages.append(message)


def membership_history(config: Config, storage: Storage) -> MembershipHistory:
    """The base configuration and every CONFIG entry the stored log holds (on restart)."""
    history = MembershipHistory(base_membership(config, storage.snapshot()))
    config_kind = EntryKind.CONFIG.value
    first, last = storage.first_index(), storage.last_index()
    if last >= first:
        for entry in storage.entries(first, last + 1):
            if entry.kind == config_kind:
                history.record(entry.index, decode_membership(entry.data))
    return history
