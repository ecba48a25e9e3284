"""The trio runtime: what drives a `raft.core.RaftNode` in a real process.

So far: the wire format (`encode_message`, `decode_message`, `FrameReader`), the `Transport`
interface with an in-memory hub for tests, and the TCP transport with authenticated peers.
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
from raft.runtime._memory_transport import MemoryHub, MemoryTransport
from raft.runtime._tcp import Backoff, TcpTransport, TlsConfig
from raft.runtime._transport import Transport, TransportCounters

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "Backoff",
    "FrameError",
    "FrameReader",
    "MemoryHub",
    "MemoryTransport",
    "TcpTransport",
    "TlsConfig",
    "Transport",
    "TransportCounters",
    "decode_message",
    "encode_message",
    "encode_preamble",
    "frame",
]
