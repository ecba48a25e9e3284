"""Storage: the protocol the core reads, and the backends that implement it."""

from raft.core._storage import Storage
from raft.storage._errors import CorruptedStorage, StorageError, StorageFull
from raft.storage._file import FileStorage
from raft.storage._memory import MemoryStorage

__all__ = [
    "CorruptedStorage",
    "FileStorage",
    "MemoryStorage",
    "Storage",
    "StorageError",
    "StorageFull",
]
