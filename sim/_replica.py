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
    StateMachine,
)
from raft.storage import MemoryStorage

ReadListener = Callable[[int, ReadState], None]
"""Called as `(node_id, read)` when a confirmed read may be served on that node."""

ApplyListener = Callable[[int, Entry, object], None]
"""Called as `(node_id, entry, result)` for every committed entry a replica applies, in order
(`result` is None for entries that are not commands)."""


class Replica:
    """A server in the simulation, following the `Ready` contract exactly: persist, then send,
    then apply, then advance.

    `storage` (empty unless given) is what survives a crash; the node and the state machine
    do not. A restarted replica rebuilds both from storage, re-applying the committed log from
    its start. Confirmed reads (`Ready.read_states`) wait until the state machine has applied
    their index, then go to `on_read`.
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
    ) -> None:
        self.config = config
        self.rng = rng
        self.storage = storage if storage is not None else MemoryStorage()
        self._state_machine_factory = state_machine_factory
        self._on_apply = on_apply
        self._on_read = on_read
        self._waiting_reads: list[ReadState] = []
        self.node = RaftNode(config, self.storage, rng)
        self.state_machine = state_machine_factory()
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
        if ready.hard_state is not None:
            self.storage.set_hard_state(ready.hard_state)
        if ready.entries:
            first = ready.entries[0].index
            if first <= self.storage.last_index():
                self.overwrites.append((node.role, node.term, first))
            self.storage.append(ready.entries)
        state_machine = self.state_machine
        on_apply = self._on_apply
        command = EntryKind.COMMAND
        for entry in ready.committed_entries:
            result = state_machine.apply(entry.data) if entry.kind == command else None
            if on_apply is not None:
                on_apply(self.node_id, entry, result)
        if ready.read_states or self._waiting_reads:
            applied = ready.committed_entries[-1].index if ready.committed_entries else 0
            self._serve_reads(ready.read_states, max(applied, node.applied_index))
        node.advance(ready)
        return ready

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

    def crash(self) -> None:
        """Stop: the node and its state machine are gone, storage remains."""
        self.up = False

    def restart(self) -> None:
        """Come back from storage with a fresh node and an empty state machine."""
        self.node = RaftNode(self.config, self.storage, self.rng)
        self.state_machine = self._state_machine_factory()
        self._waiting_reads = []
        self.up = True
