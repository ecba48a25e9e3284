"""Record framing and payload codecs shared by the log segments and the checked files.

A frame is a 12-byte header and a payload::

    u32 length | u32 crc32c(payload) | u32 crc32c(the 8 bytes before)   (little-endian)

The header has its own checksum so a damaged length is never trusted: without it, a flipped
bit in a length could make the rest of a segment look like a torn tail and be dropped.
Payloads are msgpack arrays whose first element says what the record is.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information
from crc32c import crc32c

from raft.core import Entry
from raft.storage._errors import CorruptedStorage

HEADER = struct.Struct("<III")
_LENGTH_AND_CRC = struct.Struct("<II")


class RecordType(enum.IntEnum):
    """The first element of every log payload."""

    SEGMENT_HEADER = 0
    """`[0, seq, previous segment's final size]`: the first record of every segment."""
    ENTRIES = 1
    """`[1, first_index, [[term, kind, data], ...]]`: a batch of consecutive entries; a
    batch starting at or before the log's last index replaces the suffix from there on."""
    COMMIT = 2
    """`[2, commit_index]`: the commit index moved (term and vote did not); it rides in the
    log's fsync instead of costing a rewrite of the state file."""


def frame(payload: bytes) -> bytes:
    """`payload` with its checksummed header in front."""
    head = _LENGTH_AND_CRC.pack(len(payload), crc32c(payload))
    return head + crc32c(head).to_bytes(4, "little") + payload


def pack(obj: object) -> bytes:
    """msgpack bytes for `obj` (bytes stay bytes; no pickle, no extension types)."""
    data = msgpack.packb(obj, use_bin_type=True)
    assert isinstance(data, bytes)
    return data


def unpack(payload: bytes, path: Path, offset: int) -> Any:
    """Decode a payload whose checksum already matched; a decoding failure is corruption."""
    try:
        return msgpack.unpackb(payload, raw=False, use_list=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types for malformed input
        raise CorruptedStorage(path, offset, f"undecodable record: {error!r}") from error


def entries_record(entries: Sequence[Entry]) -> bytes:
    """One framed ENTRIES record holding `entries` (consecutive indexes)."""
    batch = [(entry.term, entry.kind, entry.data) for entry in entries]
    return frame(pack((RecordType.ENTRIES.value, entries[0].index, batch)))


def commit_record(commit: int) -> bytes:
    """One framed COMMIT record."""
    return frame(pack((RecordType.COMMIT.value, commit)))


def segment_header_record(seq: int, previous_size: int) -> bytes:
    """The framed record that opens segment `seq`."""
    return frame(pack((RecordType.SEGMENT_HEADER.value, seq, previous_size)))


@attrs.frozen
class Scan:
    """What a scan of one segment found: its records, and where the valid bytes end.

    `end < size` only for a torn tail, which the caller truncates away.
    """

    records: tuple[tuple[int, Any], ...]
    end: int
    size: int


def scan(data: bytes, path: Path, *, last: bool) -> Scan:
    """Read every frame of one segment file's bytes.

    In the `last` segment a crash may have cut the final write short, so an incomplete
    header, a header zeroed from some byte on to the end of the file, a payload running past
    the end, or a bad checksum on the very last record ends the scan there (a torn tail).
    Anything else that fails a check, and anything at all in a segment that is not the last,
    raises `CorruptedStorage`.
    """
    records: list[tuple[int, Any]] = []
    for offset, payload in _frames(data, path, last=last):
        if payload is None:
            return Scan(tuple(records), offset, len(data))
        records.append((offset, unpack(payload, path, offset)))
    return Scan(tuple(records), len(data), len(data))


def _frames(data: bytes, path: Path, *, last: bool) -> Iterator[tuple[int, bytes | None]]:
    """(offset, payload) per frame; a final (offset, None) marks a torn tail at `offset`."""
    offset, size = 0, len(data)
    while offset < size:
        if size - offset < HEADER.size:
            _torn(path, offset, "incomplete record header", last=last)
            yield offset, None
            return
        length, payload_crc, header_crc = HEADER.unpack_from(data, offset)
        if crc32c(data[offset : offset + 8]) != header_crc:
            # The file grew but the write landed only in part: the bytes from somewhere
            # inside this header to the end are zeros.
            if last and len(data[offset:].rstrip(b"\0")) < HEADER.size:
                yield offset, None
                return
            raise CorruptedStorage(path, offset, "record header checksum mismatch")
        end = offset + HEADER.size + length
        if end > size:
            _torn(path, offset, "record runs past the end of the file", last=last)
            yield offset, None
            return
        payload = data[offset + HEADER.size : end]
        if crc32c(payload) != payload_crc:
            _torn(path, offset, "record checksum mismatch", last=last and end == size)
            yield offset, None
            return
        yield offset, payload
        offset = end


def _torn(path: Path, offset: int, reason: str, *, last: bool) -> None:
    """A torn tail is only believable at the end of the last segment; elsewhere it is damage."""
    if not last:
        raise CorruptedStorage(path, offset, reason)


def seal(magic: bytes, payload: bytes) -> bytes:
    """A whole checked file: 8 magic bytes, then `payload` framed."""
    return magic + frame(payload)


def unseal(data: bytes, magic: bytes, path: Path) -> bytes:
    """The payload of a checked file written by `seal`; any damage is `CorruptedStorage`."""
    if data[: len(magic)] != magic:
        raise CorruptedStorage(path, 0, f"not a {magic!r} file (bad magic)")
    body = data[len(magic) :]
    if len(body) < HEADER.size:
        raise CorruptedStorage(path, len(magic), "file is shorter than its header")
    length, payload_crc, header_crc = HEADER.unpack_from(body)
    if crc32c(body[:8]) != header_crc:
        raise CorruptedStorage(path, len(magic), "header checksum mismatch")
    if len(body) != HEADER.size + length:
        raise CorruptedStorage(
            path, len(magic), f"file holds {len(body) - HEADER.size} payload bytes, not {length}"
        )
    payload = body[HEADER.size :]
    if crc32c(payload) != payload_crc:
        raise CorruptedStorage(path, len(magic) + HEADER.size, "checksum mismatch")
    return payload
