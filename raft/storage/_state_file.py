"""The `state` file: the one small record that says what the rest of the directory means.

It holds the hard state, the entry just before the log (index and term: where compaction or
an installed snapshot left the log's start), the oldest segment still in use, and which
snapshot is current. It is only ever replaced whole (`write_atomically`), so each change to
it is one crash-atomic step; files it does not name are leftovers and are removed on open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from raft.core import Entry, HardState
from raft.storage._errors import CorruptedStorage
from raft.storage._files import read_file, write_atomically
from raft.storage._records import pack, seal, unpack, unseal

MAGIC = b"RAFT-ST1"


@attrs.frozen
class State:
    """The contents of the state file."""

    hard_state: HardState = attrs.field(factory=HardState)
    start: Entry = attrs.field(factory=lambda: Entry(0, 0, b""))
    """The entry just before the log (its data is always empty)."""
    first_segment: int = 1
    snapshot: tuple[int, int] | None = None
    """(index, term) of the current snapshot, or None."""


def write_state(path: Path, state: State) -> None:
    """Replace the state file with `state`, durably and atomically."""
    hard = state.hard_state
    body = {
        "term": hard.term,
        "vote": hard.vote,
        "commit": hard.commit,
        "start": (state.start.index, state.start.term),
        "first_segment": state.first_segment,
        "snapshot": state.snapshot,
    }
    write_atomically(path, seal(MAGIC, pack(body)))


def read_state(path: Path) -> State:
    """The state file's contents; a damaged or malformed file is `CorruptedStorage`."""
    body = unpack(unseal(read_file(path), MAGIC, path), path, 0)
    try:
        vote = body["vote"]
        start_index, start_term = body["start"]
        snapshot = body["snapshot"]
        state = State(
            HardState(
                _count(body["term"]), None if vote is None else _count(vote), _count(body["commit"])
            ),
            Entry(_count(start_term), _count(start_index), b""),
            _count(body["first_segment"]),
            None if snapshot is None else (_count(snapshot[0]), _count(snapshot[1])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptedStorage(path, 0, f"malformed state file: {error!r}") from error
    return state


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value
