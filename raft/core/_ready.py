"""The batch of work a node hands its caller: `Ready`, and the volatile `SoftState`."""

from __future__ import annotations

import attrs

from raft.core._messages import Entry, HardState, Message
from raft.core._read_only import ReadState
from raft.core._snapshot import Snapshot
from raft.core._state import Role


@attrs.frozen
class SoftState:
    """Who leads and in which role this node is; not persisted, useful to observers."""

    role: Role
    leader_id: int | None


@attrs.frozen
class Ready:
    """Everything the caller must do, in this order, before calling `RaftNode.advance`:

    1. persist `snapshot` (when not None: a snapshot installed from the leader, which replaces
       the whole log, e.g. `MemoryStorage.apply_snapshot`), then `hard_state` (when not None)
       and `entries` durably. `entries` may start at an
       index the storage already holds: the stored entries from there on are replaced (a new
       leader overwrote an uncommitted suffix). A vote or acknowledgement in `messages` must
       never leave for state a crash could forget (§5.2, Figure 2).
    2. send `messages`, each to its `recipient`;
    3. restore the state machine from `snapshot.data` (when not None: `StateMachine.restore`),
       then apply `committed_entries` to it, in order (skipping `EntryKind.NOOP`);
    4. serve each read in `read_states` once the state machine has applied its `index` (now,
       or after later Readies' entries are applied);
    5. then call `advance(ready)`.

    `committed_entries` may include entries of this same `Ready`'s `entries` (a single-node
    cluster commits what it appends at once); doing step 1 before step 3 is what keeps that safe.
    `soft_state` is set when the role or known leader changed since the last `Ready`.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    soft_state: SoftState | None
    read_states: tuple[ReadState, ...] = ()
    snapshot: Snapshot | None = None
    """A snapshot from the leader to install (paper §7); `committed_entries` follow it."""
