"""Both built-in backends pass the storage conformance suite of `raft.testing.storage`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from raft import Entry
from raft.storage import FileStorage, MemoryStorage
from raft.testing.storage import StorageConformance, WritableStorage


def _last_segment(path: Path) -> Path:
    return max(path.glob("log-*.seg"))


class TestMemoryStorage(StorageConformance):
    """In memory: the object is what a crash leaves, so a reopen returns it unchanged."""

    snapshots = True

    def make_storage(self, path: Path) -> WritableStorage:
        return MemoryStorage()

    def reopen(self, storage: WritableStorage, path: Path) -> WritableStorage:
        return storage


class TestFileStorage(StorageConformance):
    """On disk, with small segments so that rollover happens inside the suite."""

    snapshots = True
    crash_points = True

    def make_storage(self, path: Path) -> WritableStorage:
        return FileStorage(path, segment_bytes=128)

    def reopen(self, storage: WritableStorage, path: Path) -> WritableStorage:
        assert isinstance(storage, FileStorage)
        storage.close()
        return FileStorage(path, segment_bytes=128)

    def crash_mid_append(
        self, storage: WritableStorage, path: Path, entries: Sequence[Entry], keep: float
    ) -> None:
        assert isinstance(storage, FileStorage)
        sizes = {segment: segment.stat().st_size for segment in path.glob("log-*.seg")}
        storage.append(entries)
        storage.close()
        segment = _last_segment(path)
        before = sizes.get(segment, 0)
        after = segment.stat().st_size
        with segment.open("r+b") as file:
            file.truncate(before + int(keep * (after - before)))

    def damage_durable_record(self, path: Path) -> None:
        segment = min(path.glob("log-*.seg"))
        data = bytearray(segment.read_bytes())
        data[30] ^= 0x40  # past the segment's header record, inside the first entries record
        segment.write_bytes(bytes(data))
