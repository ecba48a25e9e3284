"""`RaftNode`: the sans-IO face of the core.

Theory of operation. A `RaftNode` is a state machine that never blocks and never performs I/O.
The caller feeds it inputs — `tick()` at a steady pace (the only notion of time it has),
`step(message)` for each message from a peer, `propose()` for client commands, `campaign()` to
force an election — and collects the resulting work with `ready()`: a snapshot from the leader,
hard state and entries to persist, messages to send, committed entries to apply. After doing
that work, in that order, the caller hands the batch back with `advance(ready)`. Between
`advance` and the next `ready()`, `snapshot_due()` tells the caller when to compact its log, and
`snapshot_metadata()` what to store with the state machine's snapshot (paper §7). Randomness
(election timeouts) comes only from the `random.Random` the caller passes in, so a simulator
that seeds it replays a run exactly.

`step` first applies the term rules that hold in every role (§5.1), then hands the message to
the election or replication logic for the node's role.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, NoReturn

from raft.core import _election, _reads, _reconfig, _replication, _snapshots
from raft.core._config import Config
from raft.core._errors import (
    CommandTooLarge,
    LeadershipTransferInProgress,
    MembershipChangeError,
    NodeFailed,
    NotLeader,
    UsageError,
)
from raft.core._membership import Membership
from raft.core._messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from raft.core._progress import Progress
from raft.core._ready import Ready, SoftState
from raft.core._snapshot import SnapshotMetadata
from raft.core._state import NodeState, Role
from raft.core._storage import Storage

_Handler = Callable[[NodeState, Any], None]
_data_of = attrgetter("data")


def _follow_and(handler: _Handler) -> _Handler:
    """A leader's message in our term: whoever we were, we now follow its sender (§5.2)."""

    def handle(state: NodeState, message: AppendEntries | Heartbeat | InstallSnapshot) -> None:
        if state.role is not Role.FOLLOWER:
            _election.become_follower(state, state.term, message.sender)
        state.leader_id = message.sender
        state.election_elapsed = 0
        handler(state, message)

    return handle


def _handle_append_response(state: NodeState, message: AppendEntriesResponse) -> None:
    _replication.handle_append_response(state, message)
    if not state.is_voter:
        _election.step_down_if_removed(state)


def _ignore(state: NodeState, message: Message) -> None:
    """A message with nothing to do in this role (for example a vote reply after winning)."""


_CANDIDATE_HANDLERS: dict[type, _Handler] = {
    AppendEntries: _follow_and(_replication.handle_append_entries),
    Heartbeat: _follow_and(_replication.handle_heartbeat),
    InstallSnapshot: _follow_and(_snapshots.handle_install_snapshot),
    VoteRequest: _election.handle_vote_request,
    VoteResponse: _election.handle_vote_response,
}
_HANDLERS: dict[Role, dict[type, _Handler]] = {
    Role.FOLLOWER: {
        AppendEntries: _follow_and(_replication.handle_append_entries),
        Heartbeat: _follow_and(_replication.handle_heartbeat),
        InstallSnapshot: _follow_and(_snapshots.handle_install_snapshot),
        VoteRequest: _election.handle_vote_request,
        TimeoutNow: _election.handle_timeout_now,
        ReadIndexResponse: _reads.handle_read_index_response,
    },
    Role.PRE_CANDIDATE: _CANDIDATE_HANDLERS,
    Role.CANDIDATE: _CANDIDATE_HANDLERS,
    Role.LEADER: {
        VoteRequest: _election.handle_vote_request,
        AppendEntriesResponse: _handle_append_response,
        HeartbeatResponse: _replication.handle_heartbeat_response,
        InstallSnapshotResponse: _snapshots.handle_install_snapshot_response,
        ReadIndexRequest: _reads.handle_read_index_request,
    },
}


class RaftNode:
    """One Raft participant, driven by its caller (see the module's theory of operation).

    Build it from a `Config`, a `Storage` holding what survived of this node (empty for a new
    node) and a `random.Random` that is the node's only source of randomness.
    """

    def __init__(self, config: Config, storage: Storage, rng: random.Random) -> None:
        self._state = NodeState(config, storage, rng)
        self._failed: BaseException | None = None
        self._last_hard_state = storage.initial_state()
        self._last_soft_state = SoftState(Role.FOLLOWER, None)
        self._pending: Ready | None = None
        self._applied_bytes = 0
        """Command bytes applied after index `_bytes_counted_after` (only with
        `Config.snapshot_threshold_bytes`)."""
        self._bytes_counted_after = storage.first_index() - 1

    def __repr__(self) -> str:
        state = self._state
        return (
            f"<RaftNode {state.node_id} {state.role.name} term={state.term} "
            f"leader={state.leader_id} commit={state.log.committed} last={state.log.last_index()}>"
        )

    # ---- observation -------------------------------------------------------------------

    @property
    def node_id(self) -> int:
        """This node's id."""
        return self._state.node_id

    @property
    def role(self) -> Role:
        """The current role."""
        return self._state.role

    @property
    def term(self) -> int:
        """The current term (§5.1)."""
        return self._state.term

    @property
    def vote(self) -> int | None:
        """Whom this node voted for in the current term."""
        return self._state.vote

    @property
    def leader_id(self) -> int | None:
        """The leader of the current term, if this node knows it."""
        return self._state.leader_id

    @property
    def commit_index(self) -> int:
        """The highest index known committed."""
        return self._state.log.committed

    @property
    def applied_index(self) -> int:
        """The highest index the caller has applied (as reported through `advance`)."""
        return self._state.log.applied

    @property
    def last_index(self) -> int:
        """The index of the last entry in the log, persisted or not."""
        return self._state.log.last_index()

    def log_entries(self, low: int, high: int) -> list[Entry]:
        """Entries with `low <= index < high` from this node's log (for inspection and tests)."""
        log = self._state.log
        return log.slice(max(low, log.first_index()), min(high, log.last_index() + 1))

    def progress(self) -> dict[int, Progress]:
        """As leader: each member's replication progress (voters, learners and itself); empty
        otherwise."""
        return dict(self._state.progress)

    @property
    def membership(self) -> Membership | None:
        """The configuration in effect on this node: the latest in its log, committed or not
        (thesis §4.1), else the one it started with; None for a joining node that has not yet
        received one. A driver learns of new members here."""
        return self._state.membership

    # ---- inputs ------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance logical time by one tick: elections time out, leaders heartbeat."""
        self._check_usable()
        try:
            _election.tick(self._state)
        except BaseException as error:
            self._fail(error)

    def campaign(self) -> None:
        """Start an election now (with pre-vote when configured), as if the timer had fired."""
        self._check_usable()
        try:
            _election.start_election(self._state)
        except BaseException as error:
            self._fail(error)

    def step(self, message: Message) -> None:
        """Take one message from a peer. Messages for another node, or of a kind this role
        does not expect, are dropped; stale ones are answered as the paper says."""
        self._check_usable()
        state = self._state
        if message.recipient != state.node_id:
            return
        try:
            if message.term != state.term and not self._apply_term_rules(message):
                return
            handler = _HANDLERS[state.role].get(type(message), _ignore)
            handler(state, message)
        except BaseException as error:
            self._fail(error)

    def propose(self, command: bytes) -> tuple[int, int]:
        """Append one command to the leader's log; returns its (term, index).

        The command is committed once a later `Ready` lists it in `committed_entries` with the
        same term and index; if another term's entry shows up at that index instead, it was lost
        in a leader change and may be retried. Raises `NotLeader` on a non-leader and
        `CommandTooLarge` when it could not fit in one message.
        """
        return self.propose_batch((command,))

    def propose_batch(self, commands: Sequence[bytes]) -> tuple[int, int]:
        """Append many commands at once (one `Ready`, one fsync for all); returns the term and
        the index of the first. The i-th command gets index `first + i`."""
        self._check_usable()
        state = self._state
        if state.role is not Role.LEADER:
            raise NotLeader(state.node_id, state.leader_id)
        if state.transfer_target is not None:
            raise LeadershipTransferInProgress(state.node_id, state.transfer_target)
        if not commands:
            raise UsageError("propose_batch needs at least one command")
        kinds = set(map(type, commands))
        if kinds != {bytes}:
            kinds.discard(bytes)
            raise TypeError(f"commands must be bytes, got {kinds.pop().__name__}")
        limit = state.config.max_bytes_per_message
        largest = max(map(len, commands))
        if largest > limit:
            raise CommandTooLarge(largest, limit)
        try:
            first = _replication.append_commands(state, commands)
        except BaseException as error:
            self._fail(error)
        return state.term, first

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read (thesis §6.4): a later `Ready` lists a `ReadState` with
        this `context` (non-empty bytes, never reused: a late answer to an old round with the
        same context could confirm a new read too early) and an index; serve the
        read once the state machine has applied that index. A follower asks its leader; with
        `Config.lease_reads` a leader whose lease holds answers at once. Raises `NotLeader` when
        no leader is known. A read lost with a leader change never completes: time it out."""
        self._check_usable()
        if type(context) is not bytes or not context:
            raise UsageError("read_index needs a non-empty bytes context")
        state = self._state
        try:
            if state.role is Role.LEADER:
                _reads.request_read(state, context, state.node_id)
                return
            forwarded = _reads.forward_read(state, context)
        except BaseException as error:
            self._fail(error)
        if not forwarded:
            raise NotLeader(state.node_id, state.leader_id)

    def transfer_leadership(self, target: int) -> None:
        """Hand leadership to voter `target` (thesis §3.10): proposals are refused with
        `LeadershipTransferInProgress` until it takes over or an election timeout passes."""
        self._check_usable()
        state = self._state
        if state.role is not Role.LEADER:
            raise NotLeader(state.node_id, state.leader_id)
        if type(target) is not int or target not in state.voting_peers:
            raise UsageError(
                f"cannot transfer leadership to {target}: pick one of the other voters "
                f"{list(state.voting_peers)}"
            )
        try:
            _election.transfer_leadership(state, target)
        except BaseException as error:
            self._fail(error)

    def change_membership(
        self, voters: Iterable[int], learners: Iterable[int] = ()
    ) -> tuple[int, int]:
        """Leader: move the cluster to `voters` and `learners`; returns the (term, index) of
        the CONFIG entry appended.

        A change of voters enters the joint configuration (new `voters`, `outgoing` = the old
        ones) in which every decision needs a majority of both (thesis §4.3); once that commits
        the leader appends the new voters alone (unless `Config.auto_leave` is off: then call
        `leave_joint`). A change of learners only is a single entry. Each configuration takes
        effect on a node as soon as it is in its log (thesis §4.1). Learners becoming voters
        must have caught up with the commit index.

        Raises `NotLeader` on a non-leader, `LeadershipTransferInProgress` during a transfer,
        and `MembershipChangeError` when the change is refused: another one is pending, the
        leader has not committed an entry of its term yet, the configuration is joint, no
        voter would be left, a learner is behind, or the ids make no sense.
        """
        return self._reconfigure(_reconfig.change, voters, learners)

    def leave_joint(self) -> tuple[int, int]:
        """Leader: leave a committed joint configuration, keeping its incoming voters (only
        needed with `Config.auto_leave` off); returns the (term, index) of the entry."""
        return self._reconfigure(_reconfig.leave)

    def add_voter(self, node_id: int) -> tuple[int, int]:
        """Leader: make a new node a voter, through a joint configuration. A learner first
        (`add_learner`, then `promote_learner`) keeps the cluster available while it catches
        up (thesis §4.2.1)."""
        return self._reconfigure(_reconfig.add_voter, node_id)

    def remove_voter(self, node_id: int) -> tuple[int, int]:
        """Leader: remove a voter, through a joint configuration; a leader removing itself
        steps down once the change commits (thesis §4.2.2)."""
        return self._reconfigure(_reconfig.remove_voter, node_id)

    def add_learner(self, node_id: int) -> tuple[int, int]:
        """Leader: start replicating to a new non-voting member."""
        return self._reconfigure(_reconfig.add_learner, node_id)

    def promote_learner(self, node_id: int) -> tuple[int, int]:
        """Leader: make a learner a voter once its log reached the commit index."""
        return self._reconfigure(_reconfig.promote_learner, node_id)

    def remove_learner(self, node_id: int) -> tuple[int, int]:
        """Leader: stop replicating to a learner."""
        return self._reconfigure(_reconfig.remove_learner, node_id)

    def force_new_membership_unsafe(self, voters: Iterable[int]) -> None:
        """DISASTER RECOVERY ONLY, UNSAFE: make `voters` the configuration, without the lost
        majority's consent, and campaign under it.

        Call it on exactly one survivor, the one with the most up-to-date log, once a majority
        of the voters is lost for good. The node moves to a new term as a candidate, appends
        the configuration (in effect at once) and asks `voters` for their votes, skipping
        pre-vote; the other survivors adopt it when it replicates. Risks: entries committed by
        the lost majority but missing here are lost; the nodes of the old configuration must
        never come back with their old data (they could elect a second leader among
        themselves); calling it on two nodes can elect two leaders. See docs/core.md.
        """
        self._check_usable()
        try:
            membership = Membership(tuple(voters))
        except (TypeError, ValueError) as error:
            raise MembershipChangeError(f"invalid membership: {error}") from error
        if self._state.node_id not in membership.voters:
            raise MembershipChangeError(
                f"node {self._state.node_id} must be one of the voters it forces, {voters}"
            )
        try:
            _election.force_membership(self._state, membership)
        except BaseException as error:
            self._fail(error)

    def snapshot_due(self, threshold: int | None = None) -> bool:
        """Whether `Config.snapshot_threshold_entries` (or `threshold`, when given) entries, or
        `Config.snapshot_threshold_bytes` command bytes, were applied since the latest snapshot,
        so the caller should take one now (paper §7; see `snapshot_metadata`). Always False
        between `ready()` and `advance()`."""
        self._check_usable()
        config = self._state.config
        if threshold is None:
            threshold = config.snapshot_threshold_entries
        limit = config.snapshot_threshold_bytes
        if self._pending is not None or not (threshold or limit):
            return False  # the caller asks after every Ready: keep the common answer cheap
        log = self._state.log
        snapshot_index = log.first_index() - 1
        if snapshot_index != self._bytes_counted_after:
            self._bytes_counted_after = snapshot_index
            self._applied_bytes = 0
        due = (threshold and log.applied - snapshot_index >= threshold) or (
            limit and self._applied_bytes >= limit
        )
        # A joining node that has not applied a configuration yet cannot say what a snapshot
        # would record (see `snapshot_metadata`).
        return bool(due) and self._state.memberships.at(log.applied) is not None

    def snapshot_metadata(self) -> SnapshotMetadata:
        """Metadata for a snapshot of the state machine as it is now, at `applied_index`.

        Call it between `advance` and the next `ready()`, when the state machine holds exactly
        the entries up to `applied_index`; store its result with the state machine's
        `snapshot()` (`MemoryStorage.create_snapshot`), which compacts the log up to there.
        Raises `UsageError` while a `Ready` is out, when nothing was applied since the
        latest snapshot, or on a joining node that has not applied a configuration yet
        (`snapshot_due` says no in both of the latter cases).
        """
        self._check_usable()
        if self._pending is not None:
            raise UsageError("snapshot_metadata() between ready() and advance(): apply first")
        state = self._state
        log = state.log
        index = log.applied
        if index < log.first_index():
            raise UsageError(f"nothing applied since the latest snapshot (at {index})")
        membership = state.memberships.at(index)
        if membership is None:
            raise UsageError(
                f"no configuration applied yet at {index}: a joining node snapshots once it has"
            )
        return SnapshotMetadata(index, log.term(index), membership)

    # ---- outputs -----------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Whether `ready()` would hand out any work."""
        self._check_usable()
        state = self._state
        log = state.log
        # Compared field by field: this runs after every input, and building and comparing
        # attrs instances here was a tenth of the simulator's time.
        hard = self._last_hard_state
        soft = self._last_soft_state
        return bool(
            state.messages
            or state.read_states
            or log.snapshot_to_persist is not None
            or log.persisting < log.last_index()
            or log.applying < log.committed
            or state.term != hard.term
            or state.vote != hard.vote
            or log.committed != hard.commit
            or state.role is not soft.role
            or state.leader_id != soft.leader_id
        )

    def ready(self) -> Ready:
        """Take the work accumulated since the last `ready()`; see `Ready` for what to do."""
        self._check_usable()
        if self._pending is not None:
            raise UsageError("ready() called again before advance() of the previous Ready")
        state = self._state
        log = state.log
        hard = self._last_hard_state
        new_hard_state = None
        if state.term != hard.term or state.vote != hard.vote or log.committed != hard.commit:
            new_hard_state = self._last_hard_state = HardState(
                state.term, state.vote, log.committed
            )
        soft = self._last_soft_state
        new_soft_state = None
        if state.role is not soft.role or state.leader_id != soft.leader_id:
            new_soft_state = self._last_soft_state = SoftState(state.role, state.leader_id)
        try:
            # Reading entries marks them handed out, so a storage error half-way must fail the
            # node: a retried ready() would send acknowledgements for entries never persisted.
            ready = Ready(
                snapshot=log.take_snapshot_to_persist(),
                hard_state=new_hard_state,
                entries=tuple(log.unpersisted()),
                messages=tuple(state.messages),
                committed_entries=tuple(log.unapplied()),
                soft_state=new_soft_state,
                read_states=tuple(state.read_states),
            )
        except BaseException as error:
            self._fail(error)
        state.messages = []
        state.read_states = []
        self._pending = ready
        return ready

    def advance(self, ready: Ready) -> None:
        """Report that `ready`'s work is done: its snapshot and entries durable, its
        snapshot restored and its commands applied."""
        self._check_usable()
        if ready is not self._pending:
            raise UsageError("advance() must be given the Ready last returned by ready()")
        self._pending = None
        log = self._state.log
        if ready.snapshot is not None:
            log.snapshot_persisted(ready.snapshot)
            self._bytes_counted_after = ready.snapshot.metadata.index
            self._applied_bytes = 0
        if ready.entries:
            last = ready.entries[-1]
            log.persisted(last.index, last.term)
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)
            if self._state.config.snapshot_threshold_bytes:
                self._applied_bytes += sum(map(len, map(_data_of, ready.committed_entries)))

    # ---- internals ---------------------------------------------------------------------

    def _reconfigure(self, change: Callable[..., int], *arguments: Any) -> tuple[int, int]:
        """Run a leader's membership change; refusals leave the node as it was."""
        self._check_usable()
        state = self._state
        if state.role is not Role.LEADER:
            raise NotLeader(state.node_id, state.leader_id)
        if state.transfer_target is not None:
            raise LeadershipTransferInProgress(state.node_id, state.transfer_target)
        try:
            index = change(state, *arguments)
        except MembershipChangeError:
            raise
        except BaseException as error:
            self._fail(error)
        return state.term, index

    def _apply_term_rules(self, message: Message) -> bool:
        """The rules every role follows for a message from another term (§5.1, thesis §9.6,
        §4.2.3); True if the message should go on to the role's handler."""
        state = self._state
        if message.term > state.term:
            if isinstance(message, VoteRequest):
                if _election.in_leader_lease(state) and not message.transfer:
                    return False
                if message.pre_vote:
                    return True
            elif isinstance(message, VoteResponse) and message.pre_vote and message.granted:
                return True
            leader = (
                message.sender
                if isinstance(message, AppendEntries | Heartbeat | InstallSnapshot)
                else None
            )
            _election.become_follower(state, message.term, leader)
            return True
        # A stale term. A stale leader must learn of our term so it steps down; with pre-vote
        # or check-quorum it would otherwise never hear of it (thesis §9.6).
        if isinstance(message, AppendEntries | Heartbeat | InstallSnapshot):
            state.send(AppendEntriesResponse(state.term, state.node_id, message.sender, False))
        elif isinstance(message, VoteRequest) and message.pre_vote:
            state.send(
                VoteResponse(state.term, state.node_id, message.sender, False, pre_vote=True)
            )
        return False

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise NodeFailed(
                f"node {self._state.node_id} failed earlier and must be rebuilt from storage"
            ) from self._failed

    def _fail(self, error: BaseException) -> NoReturn:
        self._failed = error
        raise error
