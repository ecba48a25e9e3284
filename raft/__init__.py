"""trio-raft: Raft consensus for Python.

Everything a user needs is importable from here; the pure core lives in `raft.core`, storage
backends in `raft.storage`.
"""

from raft._state_machine import StateMachine
from raft.core import (
    AppendEntries,
    AppendEntriesResponse,
    CommandTooLarge,
    Config,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    Message,
    NodeFailed,
    NotLeader,
    Progress,
    ProgressState,
    RaftError,
    RaftNode,
    Ready,
    Role,
    SoftState,
    Storage,
    UsageError,
    VoteRequest,
    VoteResponse,
)
from raft.storage import MemoryStorage

__all__ = [
    "AppendEntries",
    "AppendEntriesResponse",
    "CommandTooLarge",
    "Config",
    "Entry",
    "EntryKind",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "MemoryStorage",
    "Message",
    "NodeFailed",
    "NotLeader",
    "Progress",
    "ProgressState",
    "RaftError",
    "RaftNode",
    "Ready",
    "Role",
    "SoftState",
    "StateMachine",
    "Storage",
    "UsageError",
    "VoteRequest",
    "VoteResponse",
]
