"""FileStorage against a model, under random sequences of appends (with truncation), hard
states, snapshots taken and installed, and reopens, with tiny segments so every path through
rollover, replay and compaction is taken."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raft import Entry, HardState, Snapshot, SnapshotMetadata
from raft.core._membership import Membership
from raft.storage import FileStorage

MEMBERS = Membership((1, 2, 3))


class FileStorageModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp())
        self.segment_bytes = 80
        self.storage = FileStorage(self.directory, segment_bytes=self.segment_bytes)
        self.start = Entry(0, 0, b"")
        self.log: list[Entry] = []
        self.hard_state = HardState()
        self.snapshot: Snapshot | None = None
        self.term = 1

    def last(self) -> int:
        return self.start.index + len(self.log)

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.directory)

    @rule(data=st.data(), count=st.integers(1, 6), new_term=st.booleans())
    def append(self, data: st.DataObject, count: int, new_term: bool) -> None:
        low = max(self.hard_state.commit, self.start.index) + 1
        first = data.draw(st.integers(low, self.last() + 1), label="first")
        self.term += new_term
        entries = [
            Entry(self.term, i, b"%d.%d" % (i, self.term)) for i in range(first, first + count)
        ]
        self.storage.append(entries)
        del self.log[first - self.start.index - 1 :]
        self.log.extend(entries)

    @rule(data=st.data(), vote=st.none() | st.integers(1, 3), new_term=st.booleans())
    def set_hard_state(self, data: st.DataObject, vote: int | None, new_term: bool) -> None:
        commit = data.draw(st.integers(self.hard_state.commit, self.last()), label="commit")
        term = self.hard_state.term + new_term
        self.hard_state = HardState(term, vote, commit)
        self.storage.set_hard_state(self.hard_state)

    @precondition(lambda self: self.hard_state.commit > self.start.index)
    @rule(data=st.data())
    def create_snapshot(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(self.start.index + 1, self.hard_state.commit), label="at")
        entry = self.log[index - self.start.index - 1]
        self.snapshot = Snapshot(SnapshotMetadata(index, entry.term, MEMBERS), b"s%d" % index)
        self.storage.create_snapshot(self.snapshot.metadata, self.snapshot.data)
        self.log = self.log[index - self.start.index :]
        self.start = Entry(entry.term, index, b"")

    @rule(ahead=st.integers(0, 5))
    def apply_snapshot(self, ahead: int) -> None:
        index = max(self.last(), self.hard_state.commit, self.start.index + 1) + ahead
        self.term += 1
        self.snapshot = Snapshot(SnapshotMetadata(index, self.term, MEMBERS), b"i%d" % index)
        self.storage.apply_snapshot(self.snapshot)
        self.log = []
        self.start = Entry(self.term, index, b"")
        self.hard_state = HardState(self.hard_state.term, self.hard_state.vote, index)

    @rule()
    def reopen(self) -> None:
        self.storage.close()
        self.storage = FileStorage(self.directory, segment_bytes=self.segment_bytes)

    @invariant()
    def agrees_with_the_model(self) -> None:
        storage = self.storage
        assert (storage.first_index(), storage.last_index()) == (self.start.index + 1, self.last())
        assert storage.term(self.start.index) == self.start.term
        assert list(storage.entries(self.start.index + 1, self.last() + 1)) == self.log
        assert storage.initial_state() == self.hard_state
        assert storage.snapshot() == self.snapshot


TestFileStorageModel = FileStorageModel.TestCase
TestFileStorageModel.settings = settings(max_examples=25, stateful_step_count=20)
