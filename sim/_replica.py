"""One simulated server: a `RaftNode`, what it persisted, and its state machine."""

from __future__ import annotations

import random
from collections.abc import Callable

from raft import (
    Config,
    Entry,
    EntryKind,
    Message,
    RaftNode,
    ReadState,
    Ready,
    Role,
    SnapshotMetadata,
    StateMachine,
)
from raft.storage import MemoryStorage

ReadListener = Callable[[int, ReadState], None]
"""Called as `(node_id, read)` when a confirmed read may be served on that node."""

ApplyListener = Callable[[int, Entry, object], None]
"""Called as `(node_id, entry, result)` for every committed entry a replica applies, in order
(`result` is None for entries that are not commands)."""

SnapshotListener = Callable[[int, SnapshotMetadata, bytes, int], None]
"""Called as `(node_id, metadata, data, applied)` whenever a replica takes a snapshot or
installs one from its leader; `applied` is the index its state machine had applied before."""


class Replica:
    """A server in the simulation, following the `Ready` contract exactly: persist, then send,
    then apply, then advance.

    `storage` (empty unless given) is what survives a crash; the node and the state machine
    do not. A restarted replica rebuilds both from storage: it restores the state machine from
    the stored snapshot, if any, and re-applies the committed log after it. When its node says
    a snapshot is due (or every `snapshot_threshold` applied entries, when that is set), it
    takes one and compacts its log (paper §7). Confirmed reads (`Ready.read_states`) wait until
    the state machine has applied their index, then go to `on_read`.
    """

    def __init__(
        self,
        config: Config,
        rng: random.Random,
        state_machine_factory: Callable[[], StateMachine],
        on_apply: ApplyListener | None = None,
        *,
        storage: MemoryStorage | None = None,
        on_read: ReadListener | None = None,
        on_snapshot: SnapshotListener | None = None,
    ) -> None:
        self.config = config
        self.rng = rng
        self.storage = storage if storage is not None else MemoryStorage()
        self._state_machine_factory = state_machine_factory
        self._on_apply = on_apply
        self._on_read = on_read
        self._on_snapshot = on_snapshot
        self.snapshot_threshold: int | None = None
        """Compact every this many applied entries, overriding the node's configuration."""
        self._waiting_reads: list[ReadState] = []
        self.node = RaftNode(config, self.storage, rng)
        self.state_machine = self._restored_state_machine()
        self.up = True
        self.overwrites: list[tuple[Role, int, int]] = []
        """(role, term, first index) each time persisted entries were replaced; a leader
        never does this (Figure 3, leader append-only)."""

    @property
    def node_id(self) -> int:
        """The id of this server's node."""
        return self.config.node_id

    def process_ready(self) -> tuple[Message, ...]:
        """Do the node's pending work; return the messages it wants sent."""
        ready = self.handle_ready()
        return () if ready is None else ready.messages

    def handle_ready(self) -> Ready | None:
        """Do the node's pending work; return the `Ready` it was (None if there was none)."""
        node = self.node
        if not node.has_ready():
            return None
        ready = node.ready()
        snapshot = ready.snapshot
        applied_before = node.applied_index
        if snapshot is not None:
            self.storage.apply_snapshot(snapshot)
        if ready.hard_state is not None:
            self.storage.set_hard_state(ready.hard_state)
        if ready.entries:
            first = ready.entries[0].index
            if first <= self.storage.last_index():
                self.overwrites.append((node.role, node.term, first))
            self.storage.append(ready.entries)
        state_machine = self.state_machine
        if snapshot is not None:
            state_machine.restore(snapshot.data)
            if self._on_snapshot is not None:
                self._on_snapshot(self.node_id, snapshot.metadata, snapshot.data, applied_before)
        on_apply = self._on_apply
        command = EntryKind.COMMAND
        for entry in ready.committed_entries:
            result = state_machine.apply(entry.data) if entry.kind == command else None
            if on_apply is not None:
                on_apply(self.node_id, entry, result)
        if ready.read_states or self._waiting_reads:
            if ready.committed_entries:
                applied = ready.committed_entries[-1].index
            else:
                applied = 0 if snapshot is None else snapshot.metadata.index
            self._serve_reads(ready.read_states, max(applied, node.applied_index))
        node.advance(ready)
        if node.snapshot_due(self.snapshot_threshold):
            self._compact()
        return ready

    def _compact(self) -> None:
        """Snapshot the state machine at the applied index and drop the log up to there."""
        metadata = self.node.snapshot_metadata()
        data = self.state_machine.snapshot()
        self.storage.create_snapshot(metadata, data)
        if self._on_snapshot is not None:
            self._on_snapshot(self.node_id, metadata, data, metadata.index)

    def _serve_reads(self, confirmed: tuple[ReadState, ...], applied: int) -> None:
        waiting = self._waiting_reads
        waiting.extend(confirmed)
        if self._on_read is None:
            waiting.clear()
            return
        self._waiting_reads = [read for read in waiting if read.index > applied]
        for read in waiting:
            if read.index <= applied:
                self._on_read(self.node_id, read)

    def _restored_state_machine(self) -> StateMachine:
        """A new state machine holding the stored snapshot's state, if there is one."""
        state_machine = self._state_machine_factory()
        snapshot = self.storage.snapshot()
        if snapshot is not None:
            state_machine.restore(snapshot.data)
        return state_machine

    def crash(self) -> None:
        """Stop: the node and its state machine are gone, storage remains."""
        self.up = False

    def restart(self) -> None:
        """Come back from storage with a fresh node and an empty state machine."""
        self.node = RaftNode(self.config, self.storage, self.rng)
        self.state_machine = self._restored_state_machine()
        self._waiting_reads = []
        self.up = True
