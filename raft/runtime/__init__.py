"""The trio runtime: what drives a `raft.core.RaftNode` in a real process.

`RaftServer` runs one node (ticker, Ready loop with persistence off the event loop, client API,
sessions); see docs/runtime.md. Beneath it: the wire format (`encode_message`,
`decode_message`, `FrameReader`), the `Transport` interface with an in-memory hub for tests, and
the TCP transport with authenticated peers.
"""

from raft.runtime._codec import (
    DEFAULT_MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    FrameError,
    FrameReader,
    decode_message,
    encode_message,
    encode_preamble,
    frame,
)
from raft.runtime._errors import (
    NoQuorum,
    NotLeader,
    Overloaded,
    ServerStopped,
    SessionExpired,
    Timeout,
)
from raft.runtime._memory_transport import MemoryHub, MemoryTransport
from raft.runtime._server import PeerProgress, RaftServer, ServerStatus
from raft.runtime._sessions import (
    MalformedEnvelope,
    SessionTable,
    decode_envelope,
    encode_envelope,
)
from raft.runtime._tcp import Backoff, TcpTransport, TlsConfig
from raft.runtime._transport import Transport, TransportCounters

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "Backoff",
    "FrameError",
    "FrameReader",
    "MalformedEnvelope",
    "MemoryHub",
    "MemoryTransport",
    "NoQuorum",
    "NotLeader",
    "Overloaded",
    "PeerProgress",
    "RaftServer",
    "ServerStatus",
    "ServerStopped",
    "SessionExpired",
    "SessionTable",
    "TcpTransport",
    "Timeout",
    "TlsConfig",
    "Transport",
    "TransportCounters",
    "decode_envelope",
    "decode_message",
    "encode_envelope",
    "encode_message",
    "encode_preamble",
    "frame",
]
