"""The wire format: Raft messages as msgpack, framed and checked.

A connection carries, in each direction, one *preamble* (magic, protocol version, cluster id) and
then *frames*: a 4-byte big-endian length and that many bytes of msgpack. A message's body is the
array ``[type_code, field, field, ...]`` with its attrs fields in declaration order; an `Entry` is
``[term, index, data, kind]``.

Everything a peer controls is checked here, and every way it can be wrong raises `FrameError`,
never another exception: the transport closes the connection and counts it, the node goes on.
"""

from __future__ import annotations

import struct
import typing
from collections.abc import Callable
from typing import Any, Final

import attrs
import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from raft.core import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
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

MAGIC: Final = b"TRFT"
"""The first bytes each side of a connection sends."""
PROTOCOL_VERSION: Final = 1
"""Bumped whenever a message's fields or the framing change: peers of other versions are refused."""
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""The default largest frame body, in bytes: comfortably above an AppendEntries at the core's
default `Config.max_bytes_per_message` (1 MiB of commands)."""
MAX_CLUSTER_ID_BYTES: Final = 255

_LENGTH = struct.Struct(">I")
_PREAMBLE_FIXED = len(MAGIC) + 2  # magic, version byte, cluster id length byte

_Decoder = Callable[[Any], Any]
_Encoder = Callable[[Any], Any]


class FrameError(Exception):
    """Bytes from a peer that are not a valid preamble, frame or message; `reason` says why.

    The only exception decoding raises: whatever a peer sends, the caller needs one `except`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _natural(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise FrameError(f"expected a non-negative integer, got {value!r:.60}")
    return value


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise FrameError(f"expected a boolean, got {value!r:.60}")
    return value


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise FrameError(f"expected bytes, got {value!r:.60}")
    return value


def _optional_natural(value: Any) -> int | None:
    return None if value is None else _natural(value)


def _tuple_of(item: _Decoder) -> _Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        if type(value) is not tuple:
            raise FrameError(f"expected an array, got {value!r:.60}")
        return tuple(item(element) for element in value)

    return decode


def _entries(value: Any) -> tuple[Entry, ...]:
    # The hot path of every AppendEntries: checks inlined, and each Entry made straight from
    # its checked tuple (NamedTuple's own constructor is a Python call per entry): 2x faster.
    if type(value) is not tuple:
        raise FrameError(f"expected an array of entries, got {value!r:.60}")
    make, kinds, width = tuple.__new__, _ENTRY_KINDS, len(Entry._fields)
    entries = []
    for item in value:
        if type(item) is not tuple or len(item) != width:
            raise FrameError(
                f"each entry must be an array [term, index, data, kind], got {item!r:.60}"
            )
        term, index, data, kind = item
        if type(term) is not int or term < 0 or type(index) is not int or index < 0:
            raise FrameError(
                f"an entry's term and index must be non-negative integers: {item!r:.60}"
            )
        if type(data) is not bytes:
            raise FrameError(f"an entry's data must be bytes, got {data!r:.60}")
        if type(kind) is not int or kind not in kinds:
            raise FrameError(f"unknown entry kind {kind!r:.60}")
        entries.append(make(Entry, item))
    return tuple(entries)


_ENTRY_KINDS: Final = frozenset(kind.value for kind in EntryKind)


@attrs.frozen
class _Shape:
    """How instances of one attrs class travel: field values in declaration order, each checked
    by its decoder on the way in (and converted by its encoder on the way out, where needed)."""

    cls: type[Any]
    names: tuple[str, ...]
    encoders: tuple[_Encoder | None, ...]
    decoders: tuple[_Decoder, ...]

    @classmethod
    def of(cls, target: type[Any]) -> _Shape:
        hints = typing.get_type_hints(target)
        names = tuple(field.name for field in attrs.fields(target))
        pairs = [_field_codec(target, name, hints[name]) for name in names]
        return cls(target, names, tuple(e for e, _ in pairs), tuple(d for _, d in pairs))

    def encode(self, instance: Any) -> list[Any]:
        return [
            getattr(instance, name) if encoder is None else encoder(getattr(instance, name))
            for name, encoder in zip(self.names, self.encoders, strict=True)
        ]

    def decode(self, values: Any) -> Any:
        if type(values) is not tuple or len(values) != len(self.names):
            raise FrameError(
                f"{self.cls.__name__} needs an array of {len(self.names)} fields, "
                f"got {values!r:.60}"
            )
        decoded = [decode(value) for decode, value in zip(self.decoders, values, strict=True)]
        try:
            return self.cls(*decoded)
        except (TypeError, ValueError) as error:
            raise FrameError(f"invalid {self.cls.__name__}: {error}") from None


def _field_codec(owner: type[Any], name: str, hint: Any) -> tuple[_Encoder | None, _Decoder]:
    """The (encoder, decoder) for one field, from its type annotation."""
    simple: dict[Any, _Decoder] = {
        int: _natural,
        bool: _boolean,
        bytes: _bytes,
        int | None: _optional_natural,
        tuple[int, ...]: _tuple_of(_natural),
        tuple[Entry, ...]: _entries,
    }
    if hint in simple:
        return None, simple[hint]
    if isinstance(hint, type) and attrs.has(hint):
        shape = _Shape.of(hint)
        return shape.encode, shape.decode
    raise TypeError(
        f"the codec has no rule for {owner.__name__}.{name} of type {hint!r}: "
        "add one to raft.runtime._codec._field_codec"
    )


_MESSAGE_TYPES: Final[tuple[tuple[int, type[Any]], ...]] = (
    # One line per message type. A code is forever: never reuse or renumber one.
    (1, VoteRequest),
    (2, VoteResponse),
    (3, AppendEntries),
    (4, AppendEntriesResponse),
    (5, Heartbeat),
    (6, HeartbeatResponse),
    (7, ReadIndexRequest),
    (8, ReadIndexResponse),
    (9, TimeoutNow),
    (10, InstallSnapshot),
    (11, InstallSnapshotResponse),
)

_SHAPE_BY_CODE: Final = {code: _Shape.of(cls) for code, cls in _MESSAGE_TYPES}
_CODE_AND_SHAPE_BY_TYPE: Final = {
    shape.cls: (code, shape) for code, shape in _SHAPE_BY_CODE.items()
}


def encode_message(message: Message) -> bytes:
    """The msgpack body of `message`. Raises `TypeError` for an object that is not a message."""
    try:
        code, shape = _CODE_AND_SHAPE_BY_TYPE[type(message)]
    except KeyError:
        raise TypeError(f"not a Raft message: {message!r:.80}") from None
    body: bytes = msgpack.packb([code, *shape.encode(message)], use_bin_type=True)
    return body


def decode_message(body: bytes) -> Message:
    """The message whose msgpack body is `body`; `FrameError` for anything else."""
    try:
        values = msgpack.unpackb(body, use_list=False, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types for malformed input
        raise FrameError(f"not valid msgpack: {type(error).__name__}: {error}") from None
    if type(values) is not tuple or not values:
        raise FrameError(f"a message must be a non-empty array, got {values!r:.60}")
    code = values[0]
    shape = _SHAPE_BY_CODE.get(code) if type(code) is int else None
    if shape is None:
        raise FrameError(f"unknown message type code {code!r:.60}")
    message: Message = shape.decode(values[1:])
    return message


def frame(body: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """`body` with its length prefix. Raises `FrameError` when it is empty or too large."""
    if not 0 < len(body) <= max_frame_size:
        raise FrameError(f"a frame body of {len(body)} bytes is outside 1..{max_frame_size}")
    return _LENGTH.pack(len(body)) + body


def encode_preamble(cluster_id: str) -> bytes:
    """What each side sends first: magic, protocol version, and the cluster id."""
    raw = check_cluster_id(cluster_id)
    return MAGIC + bytes((PROTOCOL_VERSION, len(raw))) + raw


def check_cluster_id(cluster_id: str) -> bytes:
    """`cluster_id` as the preamble carries it; `ValueError` when it cannot be carried."""
    raw = cluster_id.encode()
    if not 0 < len(raw) <= MAX_CLUSTER_ID_BYTES:
        raise ValueError(
            f"cluster_id must be 1..{MAX_CLUSTER_ID_BYTES} bytes of UTF-8, got {cluster_id!r}"
        )
    return raw


class FrameReader:
    """Splits the byte stream from one peer into frame bodies, checking the preamble first.

    Sans-IO: `feed` it what the socket gave, then take `next_body()` until it returns None. A
    frame's length is checked before its body is awaited, so the buffer never holds more than
    one maximum frame plus the last chunk fed.
    """

    def __init__(self, cluster_id: str, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be >= 1, got {max_frame_size}")
        self._cluster_id = check_cluster_id(cluster_id)
        self.max_frame_size = max_frame_size
        """The largest frame body accepted; may be raised once the peer is authenticated."""
        self._buffer = bytearray()
        self._offset = 0
        self._preamble_seen = False

    def feed(self, data: bytes | bytearray) -> None:
        """Append bytes received from the peer."""
        if self._offset:
            del self._buffer[: self._offset]
            self._offset = 0
        self._buffer += data

    def next_body(self) -> bytes | None:
        """The next complete frame body, or None until more bytes arrive; `FrameError` when the
        stream is not what this cluster's protocol allows."""
        if not self._preamble_seen and not self._read_preamble():
            return None
        start = self._offset + _LENGTH.size
        if len(self._buffer) < start:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer, self._offset)
        if not 0 < length <= self.max_frame_size:
            raise FrameError(f"frame length {length} is outside 1..{self.max_frame_size}")
        end = start + length
        if len(self._buffer) < end:
            return None
        self._offset = end
        return bytes(self._buffer[start:end])

    def _read_preamble(self) -> bool:
        buffer = self._buffer
        available = len(buffer)
        if buffer[: min(available, len(MAGIC))] != MAGIC[: min(available, len(MAGIC))]:
            raise FrameError("not a trio-raft connection: bad magic")
        if available < _PREAMBLE_FIXED:
            return False
        version, id_length = buffer[len(MAGIC)], buffer[len(MAGIC) + 1]
        if version != PROTOCOL_VERSION:
            raise FrameError(
                f"peer speaks protocol version {version}, this node {PROTOCOL_VERSION}"
            )
        end = _PREAMBLE_FIXED + id_length
        if available < end:
            return False
        if buffer[_PREAMBLE_FIXED:end] != self._cluster_id:
            raise FrameError("peer belongs to another cluster (wrong cluster id)")
        self._offset = end
        self._preamble_seen = True
        return True
