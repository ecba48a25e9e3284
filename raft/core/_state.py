"""The state every part of the role logic shares: term, vote, role, log, peers, timers."""

from __future__ import annotations

import enum
import random

from raft.core._config import Config
from raft.core._log import RaftLog
from raft.core._messages import Message
from raft.core._progress import Progress
from raft.core._quorum import MajorityConfig
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
        "leader_id",
        "log",
        "membership",
        "messages",
        "node_id",
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
        self.quorum = MajorityConfig(config.voters)
        self.membership = base_membership(config, storage.snapshot())
        """The configuration in effect at the latest snapshot: what a snapshot taken now
        records (membership changes will apply the log's configuration entries on top)."""
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

    def peers(self) -> tuple[int, ...]:
        """The other voters, in configuration order (deterministic)."""
        node_id = self.node_id
        return tuple(voter for voter in self.quorum.voters if voter != node_id)

    def reset_election_timer(self) -> None:
        """Restart the election timer with a fresh random timeout (§5.2: randomized so split
        votes are rare and resolve quickly)."""
        ticks = self.config.election_ticks
        self.election_elapsed = 0
        self.randomized_election_timeout = self.rng.randrange(ticks, 2 * ticks)

    def send(self, message: Message) -> None:
        """Queue a message for the next `Ready`."""
        self.messages.append(message)
