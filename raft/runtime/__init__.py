"""The trio runtime: what drives a `raft.core.RaftNode` in a real process.

So far: the wire format (`encode_message`, `decode_message`, `FrameReader`), and the `Transport`
interface with an in-memory hub for tests.
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
from raft.runtime._transport import Transport, TransportCounters

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "FrameError",
    "FrameReader",
    "MemoryHub",
    "MemoryTransport",
    "Transport",
    "TransportCounters",
    "decode_message",
    "encode_message",
    "encode_preamble",
    "frame",
]
