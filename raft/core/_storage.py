"""The storage interface the core reads: what survived on stable storage.

The core never writes storage. The caller persists each `Ready`'s hard state and entries (its
own way: a file, a database, memory) and only then calls `advance`; the core reads back through
this protocol. Backends live in `raft.storage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from raft.core._messages import Entry, HardState
from raft.core._snapshot import Snapshot


class Storage(Protocol):
    """Read access to a node's durable Raft state.

    Indexes are 1-based. The log holds entries `first_index() .. last_index()`; `term()` also
    answers for `first_index() - 1` (the entry just before the log, 0 for an empty log): the
    last entry of the latest snapshot, once the log was compacted (paper §7). Then
    `first_index() == snapshot().metadata.index + 1`.
    """

    def initial_state(self) -> HardState:
        """The hard state last persisted (all zero for a new node)."""
        ...

    def entries(self, low: int, high: int) -> Sequence[Entry]:
        """Entries with `low <= index < high`; the range lies inside the log."""
        ...

    def term(self, index: int) -> int:
        """The term of the entry at `index`, for `first_index() - 1 <= index <= last_index()`."""
        ...

    def first_index(self) -> int:
        """The index of the first entry held."""
        ...

    def last_index(self) -> int:
        """The index of the last entry held (`first_index() - 1` when there are none)."""
        ...

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot stored (taken here or installed from a leader), None if none."""
        ...
