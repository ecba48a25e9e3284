"""The key-value store's snapshot format (paper §7): its whole mapping as bytes.

A snapshot may be restored on another replica, or years later, so like a command its encoding
is versioned and canonical: one mapping always gives the same bytes, and replicas holding equal
mappings produce identical snapshots (the simulator compares them).

Format, version 1: the magic ``b"KVSNAP"``, one version byte ``0x01``, the 32-byte SHA-256 of
the body, then the body: the mapping as one JSON object in the commands' canonical form (see
`statemachines._kv_codec`), keys and values following the commands' rules. A decoder rejects
anything else, a wrong checksum or a body not in canonical form included.
"""

from __future__ import annotations

import hashlib

from statemachines._kv_codec import (
    _DECODER,
    JSONValue,
    _check_key,
    _check_nested,
    _nests_too_deeply,
    canonical_json,
)

KV_SNAPSHOT_VERSION = 1
"""The version byte of the snapshots `encode_snapshot` writes."""

_MAGIC = b"KVSNAP"
_HEADER = len(_MAGIC) + 1 + 32


def encode_snapshot(values: dict[str, JSONValue]) -> bytes:
    """The canonical version-1 snapshot of `values`."""
    body = canonical_json(values).encode("utf-8")
    return _MAGIC + bytes([KV_SNAPSHOT_VERSION]) + hashlib.sha256(body).digest() + body


def decode_snapshot(data: bytes) -> dict[str, JSONValue]:
    """The mapping a snapshot holds; `ValueError` saying what is wrong if `data` is not a
    valid snapshot (whatever it holds, nothing else is raised)."""
    if not isinstance(data, bytes):
        raise ValueError(f"not a KV snapshot: expected bytes, got {type(data).__name__}")
    if len(data) < _HEADER or not data.startswith(_MAGIC):
        raise ValueError("not a KV snapshot: missing the KVSNAP header")
    version = data[len(_MAGIC)]
    if version != KV_SNAPSHOT_VERSION:
        raise ValueError(
            f"unsupported KV snapshot version {version} (this store reads {KV_SNAPSHOT_VERSION})"
        )
    body = data[_HEADER:]
    if hashlib.sha256(body).digest() != data[len(_MAGIC) + 1 : _HEADER]:
        raise ValueError("corrupt KV snapshot: checksum mismatch")
    try:
        text = body.decode("utf-8")
        if _nests_too_deeply(text):
            raise ValueError("values nest too deeply")
        values = _DECODER.decode(text)
        if not isinstance(values, dict):
            raise ValueError(f"body must be a JSON object, got {type(values).__name__}")
        for key, value in values.items():
            _check_key(None, None, key)  # type: ignore[arg-type]
            if value is None:
                raise ValueError(f"key {key!r} holds null, which is never stored")
            _check_nested("value", value, 0)
        if canonical_json(values) != text:
            raise ValueError("body is not in canonical form")
    except ValueError as error:  # MalformedCommand and UnicodeDecodeError are ValueErrors
        raise ValueError(f"invalid KV snapshot: {error}") from None
    return values
