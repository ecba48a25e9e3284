"""The trio runtime: what drives a `raft.core.RaftNode` in a real process.

So far: the wire format (`encode_message`, `decode_message`, `FrameReader`).
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

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "FrameError",
    "FrameReader",
    "decode_message",
    "encode_message",
    "encode_preamble",
    "frame",
]
