"""`FileStorage`: a node's Raft state in a directory of files, fsynced before it is believed.

Layout (one directory per node)::

    LOCK                              held (flock) while a FileStorage has the directory open
    state                             hard state, log start, oldest segment, current snapshot
    log-000000000001.seg ...          the log: append-only segments of checksummed records
    snapshot-<index>-<term>.snap      the current snapshot, if any

Reads are served from memory: the live log (everything after the last compaction) is loaded
on open and kept, as etcd's raft keeps it in its MemoryStorage beside the WAL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

from raft.core import Entry, HardState, Snapshot, SnapshotMetadata
from raft.storage._errors import CorruptedStorage, StorageError, StorageFull
from raft.storage._files import fsync_directory, translated
from raft.storage._segments import SegmentLog
from raft.storage._snapshot_file import PATTERN, read_snapshot, snapshot_path, write_snapshot
from raft.storage._state_file import State, read_state, write_state

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


class FileStorage:
    """Durable `Storage`: what a write method returns from is on disk, fsynced.

    Per `Ready`, call `save(ready.hard_state, ready.entries)`: the entries go to the log as
    one record, with a COMMIT record beside them when only the commit index moved, and one
    fsync covers both. When the term or vote changed, the state file (hard state and what
    the directory holds) is then replaced atomically: temp file, fsync, rename, fsync of the
    directory. Entries first, so a hard state never commits entries a crash could lose.
    `append(entries)` then `set_hard_state(hard_state)` is the same in two steps (and with
    two fsyncs of the log, when only the commit moved).

    Opening recovers: a torn last record (a crash mid-write) is cut away; any other damage
    raises `CorruptedStorage` naming the file and byte offset. A full disk raises `StorageFull`
    with nothing changed, so the call can be retried once space returns. Any other I/O error
    while writing leaves the object refusing further writes; open the directory again.

    Use it as a context manager, or call `close()`: one process may hold a directory at once.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> None:
        if segment_bytes < 1:
            raise ValueError(f"FileStorage segment_bytes must be >= 1, got {segment_bytes}")
        self._directory = Path(directory)
        self._failed: BaseException | None = None
        self._closed = False
        if not self._directory.is_dir():
            with translated(self._directory, "create"):
                self._directory.mkdir(parents=True)
            fsync_directory(self._directory.parent)  # or a power cut could forget the directory
        self._lock = _lock(self._directory)
        try:
            self._open(segment_bytes)
        except BaseException:
            os.close(self._lock)
            raise

    def _open(self, segment_bytes: int) -> None:
        """Recover the directory: the state file, then the log it points at, then the
        snapshot it names; remove whatever it does not name."""
        state_path = self._directory / "state"
        with translated(self._directory, "open"):
            for leftover in self._directory.glob("*.tmp"):
                leftover.unlink()
            fresh = not state_path.exists()
            state = State() if fresh else read_state(state_path)
            self._log, entries, commit = SegmentLog.open(
                self._directory,
                state.first_segment,
                state.start,
                state.hard_state.commit,
                segment_bytes,
                create=fresh,
            )
        try:
            with translated(self._directory, "open"):
                if fresh and entries:
                    raise CorruptedStorage(state_path, 0, "state file is missing, the log is not")
                if fresh:
                    write_state(state_path, state)
                self._snapshot: Snapshot | None = None
                current = None
                if state.snapshot is not None:
                    self._snapshot = read_snapshot(self._directory, *state.snapshot)
                    current = snapshot_path(self._directory, *state.snapshot)
                for path in self._directory.glob(PATTERN):
                    if path != current:
                        path.unlink()
        except BaseException:
            self._log.close()
            raise
        self._entries = [state.start, *entries]
        self._state = attrs.evolve(state, hard_state=attrs.evolve(state.hard_state, commit=commit))

    def __repr__(self) -> str:
        return (
            f"FileStorage({str(self._directory)!r}, hard_state={self._state.hard_state}, "
            f"log={self.first_index()}..{self.last_index()})"
        )

    def __enter__(self) -> FileStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the files and release the directory; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._log.close()
        os.close(self._lock)

    @property
    def directory(self) -> Path:
        """The directory this storage lives in."""
        return self._directory

    # The Storage protocol: answered from memory.

    def initial_state(self) -> HardState:
        """The hard state last persisted."""
        return self._state.hard_state

    def entries(self, low: int, high: int) -> Sequence[Entry]:
        """Entries with `low <= index < high`."""
        offset = self._entries[0].index
        if low <= offset or high > self.last_index() + 1 or low > high:
            raise IndexError(
                f"entries [{low}, {high}) outside the log "
                f"({self.first_index()}..{self.last_index()})"
            )
        return self._entries[low - offset : high - offset]

    def term(self, index: int) -> int:
        """The term of the entry at `index`, for `first_index() - 1 <= index <= last_index()`."""
        position = index - self._entries[0].index
        if position < 0 or position >= len(self._entries):
            raise IndexError(
                f"term of {index} outside the log ({self.first_index() - 1}..{self.last_index()})"
            )
        return self._entries[position].term

    def first_index(self) -> int:
        """The index of the first entry held."""
        return self._entries[0].index + 1

    def last_index(self) -> int:
        """The index of the last entry held."""
        return self._entries[0].index + len(self._entries) - 1

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot persisted (created here or installed), or None."""
        return self._snapshot

    # Writes: each is durable when it returns.

    def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        """Persist one `Ready`: an incoming `snapshot`, then `entries` and `hard_state`.

        Entries and a hard state whose term and vote did not change (only the commit index
        moved, the common case) cost one write and one fsync of the log together. A new term
        or vote also replaces the state file atomically, after the entries are durable.
        """
        if snapshot is not None:
            self.apply_snapshot(snapshot)
        self._persist(entries, hard_state)

    def append(self, entries: Sequence[Entry]) -> None:
        """Persist `entries` with one fsync, replacing any held from the first one's index on
        (a new leader overwrote an uncommitted suffix). Committed entries are never replaced."""
        self._persist(entries, None)

    def set_hard_state(self, hard_state: HardState) -> None:
        """Persist the hard state (nothing to do when it is unchanged).

        Its commit index may not pass the last index nor go back: persist entries before the
        hard state that commits them, or a crash between the two would commit lost entries.
        """
        self._persist((), hard_state)

    def _persist(self, entries: Sequence[Entry], hard_state: HardState | None) -> None:
        current = self._state.hard_state
        if entries:
            self._check_entries(entries, current.commit)
        if hard_state == current:
            hard_state = None
        if hard_state is not None:
            last = entries[-1].index if entries else self.last_index()
            if not current.commit <= hard_state.commit <= last:
                raise ValueError(
                    f"commit index {hard_state.commit} must lie between the last one persisted "
                    f"({current.commit}) and the last index ({last}): append the entries "
                    "before the hard state that commits them"
                )
        commit_only = hard_state is not None and (hard_state.term, hard_state.vote) == (
            current.term,
            current.vote,
        )
        if entries or commit_only:
            with self._writing():
                self._log.append(entries, hard_state.commit if hard_state and commit_only else None)
        if entries:
            offset = self._entries[0].index
            del self._entries[entries[0].index - offset :]
            self._entries.extend(entries)
        if hard_state is not None and commit_only:
            self._state = attrs.evolve(self._state, hard_state=hard_state)
        elif hard_state is not None:
            self._replace_state(attrs.evolve(self._state, hard_state=hard_state))

    def _check_entries(self, entries: Sequence[Entry], commit: int) -> None:
        first = entries[0].index
        if first > self.last_index() + 1:
            raise ValueError(f"gap: appending at {first} after last index {self.last_index()}")
        offset = self._entries[0].index
        if first <= offset:
            raise ValueError(f"appending at {first}, at or before the log's start {offset}")
        if first <= commit:
            raise ValueError(f"appending at {first} would replace committed entries (to {commit})")
        for expected, entry in enumerate(entries, first):
            if entry.index != expected or not isinstance(entry.data, bytes):
                raise ValueError(f"entries must have consecutive indexes and bytes data: {entry!r}")

    def create_snapshot(self, metadata: SnapshotMetadata, data: bytes) -> None:
        """Store a snapshot this node took (paper §7) and compact the log: the entries up to
        `metadata.index` are dropped (whole segments holding nothing later are deleted).

        ValueError if the index is not above the current log start, not a committed entry
        held here, or its term differs; TypeError if `data` is not bytes.
        """
        index = metadata.index
        if not isinstance(data, bytes):
            raise TypeError(f"snapshot data must be bytes, got {type(data).__name__}")
        offset = self._entries[0].index
        if index <= offset:
            raise ValueError(f"snapshot at {index} is not newer than the current one at {offset}")
        commit = self._state.hard_state.commit
        if index > self.last_index() or index > commit:
            raise ValueError(
                f"snapshot at {index} beyond the last committed entry held "
                f"(last {self.last_index()}, commit {commit})"
            )
        if self.term(index) != metadata.term:
            raise ValueError(
                f"snapshot at {index} has term {metadata.term}, the entry there {self.term(index)}"
            )
        first_segment = self._log.first_seq_after_dropping(index)
        self._store_snapshot(
            Snapshot(metadata, data), first_segment, self._state.hard_state, keep_log=True
        )

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Persist a snapshot installed from the leader (`Ready.snapshot`): it replaces the
        whole log, and the commit index rises to its index if it was below (paper §7).

        ValueError if it is not newer than the log start, or lies below the commit index
        (installing it would roll back committed entries).
        """
        index = snapshot.metadata.index
        offset = self._entries[0].index
        hard_state = self._state.hard_state
        if index <= offset or index < hard_state.commit:
            raise ValueError(
                f"installed snapshot at {index} is not newer than the current one at {offset} "
                f"or lies below the commit index {hard_state.commit}"
            )
        with self._writing():
            first_segment = self._log.roll()
        self._store_snapshot(
            snapshot, first_segment, attrs.evolve(hard_state, commit=index), keep_log=False
        )

    def _store_snapshot(
        self, snapshot: Snapshot, first_segment: int, hard_state: HardState, *, keep_log: bool
    ) -> None:
        """Write the snapshot's file, then the state file that makes it current (the one
        atomic step), then remove what that made garbage: old segments, the old snapshot.
        With `keep_log`, the entries after the snapshot stay; otherwise none do."""
        meta = snapshot.metadata
        previous = self._state.snapshot
        start = Entry(meta.term, meta.index, b"")
        with self._writing():
            write_snapshot(self._directory, snapshot)
            self._replace_state(State(hard_state, start, first_segment, (meta.index, meta.term)))
        kept = self._entries[meta.index - self._entries[0].index + 1 :] if keep_log else []
        self._entries = [start, *kept]
        self._snapshot = snapshot
        with self._writing():
            self._log.remove_before(first_segment)
            if previous is not None:
                old = snapshot_path(self._directory, *previous)
                with translated(old, "remove"):
                    old.unlink(missing_ok=True)

    def _replace_state(self, state: State) -> None:
        with self._writing():
            write_state(self._directory / "state", state)
        self._state = state

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Refuse writes once closed or after a write failed in a way that left the disk in
        doubt; remember such a failure."""
        if self._closed:
            raise StorageError(f"{self._directory}: storage is closed")
        if self._failed is not None:
            raise StorageError(
                f"{self._directory}: an earlier write failed ({self._failed}); reopen the storage"
            ) from self._failed
        try:
            yield
        except StorageFull:
            raise
        except StorageError as error:
            self._failed = error
            raise


def _lock(directory: Path) -> int:
    """Hold the directory's LOCK file, so two processes never write one node's files."""
    path = directory / "LOCK"
    with translated(path, "open"):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(f"{directory} is already open in another FileStorage") from None
    return fd
