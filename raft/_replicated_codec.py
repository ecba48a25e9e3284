"""The wire formats behind `@replicated`: one call of a command, and one snapshot of the state.

Both are msgpack documents, read by every replica and possibly years later when a log or a
snapshot is replayed, so both are versioned.

Call, version 1: the msgpack array ``[1, name, args, kwargs]``: the format version, the
command's wire name (a str), its positional arguments (an array) and its keyword arguments (a
map from str). Strings are msgpack str (UTF-8), byte strings msgpack bin.

Snapshot, version 1: the msgpack array ``["raft.replicated", 1, class_name, state]``, where
`state` is what the class's ``__getstate__`` returned (by default a map of its attributes).

Values are what msgpack encodes natively: None, bool, int in [-2**63, 2**64), float, str
(valid UTF-8: no lone surrogates), bytes, bytearray, and lists, tuples and dicts of these, nested
at most `MAX_DEPTH` deep, with dict keys that are scalars (None, bool, int, float, str, bytes).
msgpack has one array type: a tuple comes back as a list, a bytearray as bytes.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

REPLICATED_FORMAT_VERSION: Final = 1
"""The version of the call and snapshot formats this module writes."""

SNAPSHOT_MAGIC: Final = "raft.replicated"
MAX_DEPTH: Final = 64
"""How deeply lists and dicts may nest inside one argument, result or state."""

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_SCALAR_KEYS: Final = (str, bytes, int, float, type(None))


class MalformedCall(ValueError):
    """Bytes that are not a version-1 call; the message says what is wrong."""


def _reject_ext(code: int, _data: bytes) -> object:
    raise ValueError(f"msgpack extension type {code} is not a plain value")


def unpack(data: bytes) -> Any:
    """The value msgpack bytes hold; `ValueError` (only) for bytes that are not one value."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"expected bytes, got {type(data).__name__}")
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, use_list=True, ext_hook=_reject_ext
        )
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        # UnicodeDecodeError, StackError, ExtraData, FormatError are ValueErrors; an array used
        # as a map key is a TypeError (unhashable).
        raise ValueError(f"not msgpack: {type(error).__name__}: {error}") from None


def round_trip(value: object, where: str) -> Any:
    """A copy of `value` as another process would decode it (tuples become lists); shares
    nothing mutable with `value`. `TypeError` naming the culprit if msgpack cannot hold it."""
    if value is None or type(value) in (bool, int, str, float, bytes):
        if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
            check_encodable(value, where)
        return value
    check_encodable(value, where)
    return unpack(msgpack.packb(value, use_bin_type=True))


def check_encodable(value: object, where: str, depth: int = 0) -> None:
    """Raise `TypeError` naming `where` (a path such as ``argument 'n'[2]``) unless `value` is
    a plain msgpack value within the limits above."""
    if value is None or isinstance(value, bool | float | bytes | bytearray):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise TypeError(f"{where} is an integer outside msgpack's range [-2**63, 2**64)")
        return
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise TypeError(
                    f"{where} is a string with a lone surrogate, which has no UTF-8 form"
                ) from None
        return
    if isinstance(value, list | tuple | dict):
        if depth >= MAX_DEPTH:
            raise TypeError(f"{where} nests lists and dicts deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, _SCALAR_KEYS):
                    raise TypeError(
                        f"{where} has a dict key of type {type(key).__name__}; keys must be "
                        "None, bool, int, float, str or bytes"
                    )
                check_encodable(key, f"{where} key {key!r}", depth + 1)
                check_encodable(item, f"{where}[{key!r}]", depth + 1)
        else:
            for position, item in enumerate(value):
                check_encodable(item, f"{where}[{position}]", depth + 1)
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}, which msgpack cannot encode (use None, bool, "
        "int, float, str, bytes, list, tuple or dict)"
    )


def encode_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """The version-1 bytes of a call of command `name`; `TypeError` naming the argument that
    msgpack cannot encode."""
    for position, value in enumerate(args):
        check_encodable(value, f"argument {position + 1} of {name}()")
    for key, value in kwargs.items():
        check_encodable(value, f"argument {key!r} of {name}()")
    data: bytes = msgpack.packb(
        [REPLICATED_FORMAT_VERSION, name, list(args), kwargs], use_bin_type=True
    )
    return data


def decode_call(data: bytes) -> tuple[str, list[Any], dict[str, Any]]:
    """(name, args, kwargs) from `encode_call`'s bytes; `MalformedCall`, and nothing else,
    whatever `data` holds."""
    try:
        fields = unpack(data)
    except ValueError as error:
        raise MalformedCall(f"not a call: {error}") from None
    if not isinstance(fields, list) or len(fields) != 4:
        raise MalformedCall("not a call: expected a msgpack array of 4 fields")
    version, name, args, kwargs = fields
    if type(version) is not int or version != REPLICATED_FORMAT_VERSION:
        raise MalformedCall(
            f"unsupported call format version {_excerpt(version)} "
            f"(this replica reads version {REPLICATED_FORMAT_VERSION})"
        )
    if not isinstance(name, str):
        raise MalformedCall(f"the command name must be a str, got {type(name).__name__}")
    if not isinstance(args, list):
        raise MalformedCall(f"args must be an array, got {type(args).__name__}")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise MalformedCall("kwargs must be a map from str")
    return name, args, kwargs


def encode_snapshot(class_name: str, state: object) -> bytes:
    """A version-1 snapshot; `TypeError` naming the part of `state` msgpack cannot encode."""
    try:
        check_encodable(state, f"the state of {class_name}")
    except TypeError as error:
        raise TypeError(
            f"{error}; a snapshot holds only what msgpack encodes: convert it in "
            f"{class_name}.__getstate__ and back in __setstate__"
        ) from None
    data: bytes = msgpack.packb(
        [SNAPSHOT_MAGIC, REPLICATED_FORMAT_VERSION, class_name, state], use_bin_type=True
    )
    # A snapshot that cannot be read back would be found out only when a follower needs it.
    unpack(data)
    return data


def decode_snapshot(class_name: str, data: bytes) -> Any:
    """The state a snapshot of `class_name` holds; `ValueError` saying what is wrong."""
    try:
        fields = unpack(data)
    except ValueError as error:
        raise ValueError(f"not a {class_name} snapshot: {error}") from None
    if not isinstance(fields, list) or len(fields) != 4 or fields[0] != SNAPSHOT_MAGIC:
        raise ValueError(f"not a {class_name} snapshot: missing the {SNAPSHOT_MAGIC!r} header")
    _, version, name, state = fields
    if type(version) is not int or version != REPLICATED_FORMAT_VERSION:
        raise ValueError(
            f"unsupported snapshot version {_excerpt(version)} "
            f"(this replica reads version {REPLICATED_FORMAT_VERSION})"
        )
    if name != class_name:
        raise ValueError(f"a snapshot of {_excerpt(name)}, not of {class_name}")
    return state


def _excerpt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}..."
