"""Storage: the protocol the core reads, and the backends that implement it."""

from raft.core._storage import Storage
from raft.storage._memory import MemoryStorage

__all__ = ["MemoryStorage", "Storage"]
