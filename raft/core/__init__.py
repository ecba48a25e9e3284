"""The pure Raft core: no I/O, no clock, no randomness of its own (see DESIGN.md)."""

from raft.core._config import Config
from raft.core._errors import (
    CommandTooLarge,
    LeadershipTransferInProgress,
    MembershipChangeError,
    NodeFailed,
    NotLeader,
    RaftError,
    UsageError,
)
from raft.core._membership import Membership, decode_membership
from raft.core._messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from raft.core._node import RaftNode
from raft.core._progress import Progress, ProgressState
from raft.core._read_only import ReadState
from raft.core._ready import Ready, SoftState
from raft.core._snapshot import Snapshot, SnapshotMetadata
from raft.core._state import Role
from raft.core._storage import Storage

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
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "LeadershipTransferInProgress",
    "Membership",
    "MembershipChangeError",
    "Message",
    "NodeFailed",
    "NotLeader",
    "Progress",
    "ProgressState",
    "RaftError",
    "RaftNode",
    "ReadIndexRequest",
    "ReadIndexResponse",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMetadata",
    "SoftState",
    "Storage",
    "TimeoutNow",
    "UsageError",
    "VoteRequest",
    "VoteResponse",
    "decode_membership",
]
