"""The wire format shared by the counter, lock, ownership and queue machines' commands and
snapshots: versioned, canonical msgpack.

A command is one format byte, then one msgpack array ``[op, field, ...]`` whose first element
names the operation and whose other elements are that operation's fields, in a fixed order.
Only strings, binary strings and integers appear (no maps, floats, booleans or extension types),
and the encoding is msgpack's shortest form, so one command has exactly one encoding: a decoder
re-encodes what it read and rejects bytes that differ (a non-minimal integer, a string sent as
binary). A decoder rejects every format byte it does not know; a new format gets a new byte.

A snapshot is a magic string naming the machine, one version byte, the SHA-256 of the body, and
the body: one msgpack value in the same canonical form. Equal states give identical snapshots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from statemachines._kv_codec import MalformedCommand

MAX_NAME_BYTES = 1024
"""The longest name (of a counter, lock, election, queue, owner or worker), in bytes of UTF-8."""

MAX_PAYLOAD_BYTES = 1 << 20
"""The largest payload a command may carry (a queue item, an owner's proclaimed value)."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Field = Callable[[str, object], object]
"""Checks one decoded field (given its name) and returns it, or raises `ValueError`."""


def name_field(field: str, value: object) -> str:
    """A non-empty str of at most `MAX_NAME_BYTES` bytes of UTF-8."""
    if type(value) is not str:
        raise ValueError(f"{field} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{field} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{field} holds a lone surrogate, which has no UTF-8 form") from None
    if size > MAX_NAME_BYTES:
        raise ValueError(f"{field} is {size} bytes in UTF-8, over the limit of {MAX_NAME_BYTES}")
    return value


def int64_field(field: str, value: object) -> int:
    """An int (not a bool) in the signed 64-bit range."""
    if type(value) is not int:
        raise ValueError(f"{field} must be an int, got {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{field} is outside the signed 64-bit range")
    return value


def time_field(field: str, value: object) -> int:
    """A non-negative int64: a time or a token."""
    number = int64_field(field, value)
    if number < 0:
        raise ValueError(f"{field} must not be negative, got {number}")
    return number


def duration_field(field: str, value: object) -> int:
    """A positive int64: a lease or a timeout, in nanoseconds."""
    number = int64_field(field, value)
    if number <= 0:
        raise ValueError(f"{field} must be positive, got {number}")
    return number


def payload_field(field: str, value: object) -> bytes:
    """A bytes of at most `MAX_PAYLOAD_BYTES`."""
    if type(value) is not bytes:
        raise ValueError(f"{field} must be bytes, got {type(value).__name__}")
    if len(value) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{field} is {len(value)} bytes, over the limit of {MAX_PAYLOAD_BYTES}")
    return value


def pack(value: object) -> bytes:
    """`value` in canonical msgpack."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unpack_canonical(body: bytes, what: str) -> Any:
    """The one msgpack value `body` holds in canonical form; `ValueError` otherwise."""
    try:
        value = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types for bad input
        raise ValueError(f"malformed msgpack in {what}: {type(error).__name__}: {error}") from None
    try:
        canonical = pack(value) == body
    except Exception:  # an extension type, say: nothing this format writes
        canonical = False
    if not canonical:
        raise ValueError(f"{what} is not in canonical msgpack form")
    return value


def encode_command(
    version: int, schemas: Mapping[str, Sequence[tuple[str, Field]]], op: str, *fields: object
) -> bytes:
    """The command ``[op, *fields]`` in format `version`; `ValueError` naming the field if one
    breaks its rule in `schemas` (so that no client sends a command every replica refuses)."""
    for (name, check), value in zip(schemas[op], fields, strict=True):
        check(name, value)
    return bytes([version]) + pack([op, *fields])


def decode_command(
    data: bytes, version: int, schemas: Mapping[str, Sequence[tuple[str, Field]]]
) -> tuple[str, tuple[Any, ...]]:
    """`(op, fields)` of a command whose op `schemas` lists with its fields' names and checks;
    `MalformedCommand` naming the problem otherwise. Nothing else is raised."""
    if not isinstance(data, bytes):
        raise MalformedCommand(f"a command must be bytes, got {type(data).__name__}")
    if not data:
        raise MalformedCommand("empty command")
    if data[0] != version:
        raise MalformedCommand(f"unsupported command version {data[0]}")
    try:
        decoded = unpack_canonical(data[1:], "command")
    except ValueError as error:
        raise MalformedCommand(str(error)) from None
    if type(decoded) is not list or not decoded:
        raise MalformedCommand("a command must be a non-empty msgpack array [op, ...]")
    op = decoded[0]
    schema = schemas.get(op) if type(op) is str else None
    if schema is None:
        raise MalformedCommand(f"unknown op {op!r}")
    if len(decoded) != len(schema) + 1:
        raise MalformedCommand(
            f"op {op!r} takes {len(schema)} fields "
            f"({', '.join(name for name, _ in schema)}), got {len(decoded) - 1}"
        )
    try:
        fields = tuple(
            check(name, value) for (name, check), value in zip(schema, decoded[1:], strict=True)
        )
    except ValueError as error:
        raise MalformedCommand(f"op {op!r}: {error}") from None
    return op, fields


def encode_snapshot(magic: bytes, version: int, state: object) -> bytes:
    """A checksummed snapshot of `state` (a msgpack-able value)."""
    body = pack(state)
    return magic + bytes([version]) + hashlib.sha256(body).digest() + body


def decode_snapshot(data: bytes, magic: bytes, version: int, what: str) -> Any:
    """The msgpack value a snapshot written by `encode_snapshot` holds; `ValueError` saying what
    is wrong otherwise (the caller still checks the value's shape)."""
    header = len(magic) + 1 + 32
    if not isinstance(data, bytes):
        raise ValueError(f"not a {what} snapshot: expected bytes, got {type(data).__name__}")
    if len(data) < header or not data.startswith(magic):
        raise ValueError(f"not a {what} snapshot: missing the {magic.decode()} header")
    found = data[len(magic)]
    if found != version:
        raise ValueError(f"unsupported {what} snapshot version {found} (this reads {version})")
    body = data[header:]
    if hashlib.sha256(body).digest() != data[len(magic) + 1 : header]:
        raise ValueError(f"corrupt {what} snapshot: checksum mismatch")
    return unpack_canonical(body, f"{what} snapshot")


def saturating_add(time: int, duration: int) -> int:
    """`time + duration`, capped at the largest int64 (a deadline that never comes)."""
    return min(time + duration, INT64_MAX)
