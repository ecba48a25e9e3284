"""The key-value store's commands and their wire format.

A command is what a client proposes and what every replica's `KVStore.apply` decodes, possibly
years later when a log is replayed, so its encoding is a contract between processes and across
releases. It is versioned, so that a later format can be told apart from this one, and
canonical, so that the same command always encodes to the same bytes.

Wire format, version 1
----------------------

A command is one version byte, ``0x01``, followed by a JSON object (RFC 8259) in UTF-8. The
object has an ``"op"`` field and exactly the fields that op takes, no others::

    {"key":K,"op":"get"}                             read K through the log
    {"key":K,"op":"put","value":V}                   set K to V
    {"key":K,"op":"delete"}                          remove K
    {"expected":E,"key":K,"new":V,"op":"cas"}        set K to V if K now holds E

- ``K`` is a non-empty string of at most `KV_MAX_KEY_BYTES` (1024) bytes in UTF-8.
- ``V`` is a JSON value with no ``null`` anywhere in it: a string, a number, ``true``,
  ``false``, or an array or object of those. Integers lie in the signed 64-bit range, floats are
  finite, and arrays and objects nest at most `KV_MAX_VALUE_DEPTH` (32) deep.
- ``E`` is such a value, or ``null`` for "K is absent". ``null`` is never stored: it *is*
  absence.
- No string anywhere may hold a lone surrogate (``"\\ud800"``): it has no UTF-8 form.

Encoders write the canonical form: fields and object keys sorted, no whitespace (separators
``,`` and ``:``), non-ASCII characters as raw UTF-8 rather than ``\\u`` escapes, floats in
Python's shortest round-trip form. For example ``encode_put("x", [1, "é"])`` is
``b'\\x01{"key":"x","op":"put","value":[1,"\\xc3\\xa9"]}'``. Decoders accept any JSON text that
follows the rules above (other whitespace, escapes or field order), and reject duplicate keys in
any object, fields the op does not take, ``NaN`` and ``Infinity``, out-of-range numbers, and
nesting past the limit (counted before parsing, so that no replica's recursion limit decides).

A decoder for version 1 rejects every other first byte. A new format gets a new version byte,
and the store keeps decoding version 1 for as long as logs holding it may be replayed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn, TypeAlias

import attrs

KV_FORMAT_VERSION = 1
"""The version byte that starts every command this module writes."""

KV_MAX_KEY_BYTES = 1024
"""The longest key, in bytes of UTF-8."""

KV_MAX_VALUE_DEPTH = 32
"""How deeply arrays and objects may nest inside one value (a scalar is depth 0)."""

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
# The object around a value adds one level of nesting on the wire.
_MAX_WIRE_DEPTH = KV_MAX_VALUE_DEPTH + 1
# More characters than the longest signed 64-bit integer has (20, with its sign).
_MAX_INT_CHARS = 20

JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue]"
"""A value the store can hold. JSON null (None) is not one: it means "absent"."""


class MalformedCommand(ValueError):
    """Bytes that are not a valid command in any format this store reads.

    The message names the problem, for example ``unsupported command version 7``,
    ``malformed JSON: ...``, ``unknown op 'frob'`` or ``missing field 'key'``.
    """


def _check_key(_instance: object, _attribute: attrs.Attribute[str], key: object) -> None:
    if not isinstance(key, str):
        raise ValueError(f"key must be a str, got {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("key holds a lone surrogate, which has no UTF-8 form") from None
    if size > KV_MAX_KEY_BYTES:
        raise ValueError(f"key is {size} bytes in UTF-8, over the limit of {KV_MAX_KEY_BYTES}")


def _check_value(_instance: object, attribute: attrs.Attribute[JSONValue], value: object) -> None:
    if value is None:
        raise ValueError(
            f"{attribute.name} must not be None (JSON null): None means 'absent' and is never "
            "stored; delete the key instead"
        )
    _check_nested(attribute.name, value, 0)


def _check_expected(
    _instance: object, attribute: attrs.Attribute[JSONValue | None], value: object
) -> None:
    if value is not None:
        _check_nested(attribute.name, value, 0)


def _check_nested(field: str, value: object, depth: int) -> None:
    """Raise `ValueError` unless `value` is a `JSONValue` within the limits."""
    # bool before int: bool is a subclass of int, and must not meet the integer range check.
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_string(field, value)
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"{field} holds an integer outside the signed 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field} holds the non-finite float {value}, which JSON cannot carry")
    elif isinstance(value, list | dict):
        # Checked before descending, so a cyclic or absurdly deep value stops here rather than
        # exhausting the stack.
        if depth == KV_MAX_VALUE_DEPTH:
            raise ValueError(f"{field} nests lists and dicts deeper than {KV_MAX_VALUE_DEPTH}")
        if isinstance(value, list):
            for item in value:
                _check_nested(field, item, depth + 1)
        else:
            for name, item in value.items():
                if not isinstance(name, str):
                    raise ValueError(
                        f"{field} holds a dict key of type {type(name).__name__}; "
                        "JSON object keys must be str"
                    )
                _check_string(field, name)
                _check_nested(field, item, depth + 1)
    elif value is None:
        raise ValueError(f"{field} holds None (JSON null) inside it, which is not storable")
    else:
        raise ValueError(
            f"{field} holds a {type(value).__name__}, which is not a storable value "
            "(use str, int, float, bool, list or dict)"
        )


def _check_string(field: str, text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{field} holds a string with a lone surrogate, which has no UTF-8 form"
            ) from None


@attrs.frozen
class KVGet:
    """Read `key` through the log: a linearizable read, at the cost of a log entry."""

    key: str = attrs.field(validator=_check_key)


@attrs.frozen
class KVPut:
    """Set `key` to `value`, whatever it held before."""

    key: str = attrs.field(validator=_check_key)
    value: JSONValue = attrs.field(validator=_check_value)


@attrs.frozen
class KVDelete:
    """Remove `key`; deleting an absent key is not an error."""

    key: str = attrs.field(validator=_check_key)


@attrs.frozen
class KVCompareAndSet:
    """Set `key` to `new` only if it now holds `expected` (None: only if `key` is absent)."""

    key: str = attrs.field(validator=_check_key)
    expected: JSONValue | None = attrs.field(validator=_check_expected)
    new: JSONValue = attrs.field(validator=_check_value)


KVCommand: TypeAlias = KVGet | KVPut | KVDelete | KVCompareAndSet
"""One decoded command. Constructing one validates it, raising `ValueError` naming the field."""


def encode_command(command: KVCommand) -> bytes:
    """The canonical version-1 bytes of `command` (see the module docstring)."""
    fields: dict[str, object]
    match command:
        case KVGet(key):
            fields = {"op": "get", "key": key}
        case KVPut(key, value):
            fields = {"op": "put", "key": key, "value": value}
        case KVDelete(key):
            fields = {"op": "delete", "key": key}
        case KVCompareAndSet(key, expected, new):
            fields = {"op": "cas", "key": key, "expected": expected, "new": new}
    return bytes([KV_FORMAT_VERSION]) + canonical_json(fields).encode("utf-8")


def canonical_json(value: object) -> str:
    """`value` as canonical JSON text: sorted keys, no whitespace, non-ASCII unescaped."""
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
    )


def encode_get(key: str) -> bytes:
    """A command reading `key` through the log; `ValueError` if `key` is not a valid key."""
    return encode_command(KVGet(key))


def encode_put(key: str, value: JSONValue) -> bytes:
    """A command setting `key` to `value`; `ValueError` naming the field if either is invalid."""
    return encode_command(KVPut(key, value))


def encode_delete(key: str) -> bytes:
    """A command removing `key`; `ValueError` if `key` is not a valid key."""
    return encode_command(KVDelete(key))


def encode_cas(key: str, expected: JSONValue | None, new: JSONValue) -> bytes:
    """A command setting `key` to `new` if it holds `expected` (None: if absent).

    Raises `ValueError` naming the field if any argument is invalid.
    """
    return encode_command(KVCompareAndSet(key, expected, new))


_FIELDS: dict[str, tuple[str, ...]] = {
    "get": ("key",),
    "put": ("key", "value"),
    "delete": ("key",),
    "cas": ("expected", "key", "new"),
}


def decode_command(data: bytes) -> KVCommand:
    """The command that `data` encodes, in any format version this store reads.

    Raises `MalformedCommand` naming the problem, and nothing else, whatever `data` holds. The
    outcome depends only on `data`: not on the interpreter's recursion or integer-size limits,
    which may differ between replicas.
    """
    if not data:
        raise MalformedCommand("empty command")
    if data[0] != KV_FORMAT_VERSION:
        raise MalformedCommand(
            f"unsupported command version {data[0]} (this store reads version {KV_FORMAT_VERSION})"
        )
    try:
        text = data[1:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedCommand(
            f"command is not valid UTF-8: {error.reason} at byte {error.start + 1}"
        ) from None
    if _nests_too_deeply(text):
        raise MalformedCommand(f"value nests arrays and objects deeper than {KV_MAX_VALUE_DEPTH}")
    try:
        fields = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise MalformedCommand(f"malformed JSON: {error}") from None
    if not isinstance(fields, dict):
        raise MalformedCommand(f"command must be a JSON object, got {type(fields).__name__}")
    return _command_from_fields(fields)


def _command_from_fields(fields: dict[str, Any]) -> KVCommand:
    if "op" not in fields:
        raise MalformedCommand("missing field 'op'")
    op = fields["op"]
    if not isinstance(op, str):
        raise MalformedCommand(f"field 'op' must be a string, got {type(op).__name__}")
    if op not in _FIELDS:
        raise MalformedCommand(
            f"unknown op {_excerpt(op)!r} (expected one of: get, put, delete, cas)"
        )
    for name in _FIELDS[op]:
        if name not in fields:
            raise MalformedCommand(f"missing field {name!r} for op {op!r}")
    unexpected = sorted(fields.keys() - {"op", *_FIELDS[op]})
    if unexpected:
        raise MalformedCommand(f"unexpected field {_excerpt(unexpected[0])!r} for op {op!r}")
    try:
        match op:
            case "get":
                return KVGet(fields["key"])
            case "put":
                return KVPut(fields["key"], fields["value"])
            case "delete":
                return KVDelete(fields["key"])
            case _:
                return KVCompareAndSet(fields["key"], fields["expected"], fields["new"])
    except ValueError as error:
        raise MalformedCommand(str(error)) from None


# A JSON string literal, or any one bracket. Matching whole literals skips the brackets inside
# strings without a Python-level loop over every character. An unterminated literal runs to the
# end of the text: were it left unmatched, the search would rescan the rest of the text from
# every later quote, quadratic in the length of a hostile command.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


def _nests_too_deeply(text: str) -> bool:
    """Whether arrays and objects in `text`, if it is JSON, nest deeper than a command may.

    `json.loads` recurses once per level, and how deep it may go before `RecursionError` depends
    on the interpreter and on how deep the caller's stack already is: two replicas could then
    disagree about one command. Refusing deep commands before parsing keeps the outcome a
    function of the bytes alone.
    """
    # Nesting depth never exceeds the number of opening brackets: most commands stop here.
    if text.count("[") + text.count("{") <= _MAX_WIRE_DEPTH:
        return False
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest > _MAX_WIRE_DEPTH


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise MalformedCommand(f"duplicate key {_excerpt(name)!r} in a JSON object")
            seen.add(name)
    return result


def _parse_int(digits: str) -> int:
    # Converting a long digit string may raise ValueError under the interpreter's
    # int_max_str_digits setting, which replicas need not share; out-of-range is decided here.
    if len(digits) > _MAX_INT_CHARS:
        raise MalformedCommand(f"integer {_excerpt(digits)} is outside the signed 64-bit range")
    return int(digits)


def _parse_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise MalformedCommand(f"number {_excerpt(digits)} is too large for a float")
    return number


def _reject_constant(name: str) -> NoReturn:
    raise MalformedCommand(f"{name} is not valid JSON")


# Built once: `json.loads` with hooks would build a decoder per command, a quarter of the cost.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_reject_constant,
)


def _excerpt(text: str) -> str:
    # A hostile name or number may be megabytes long; an error message need only point at it.
    return text if len(text) <= 24 else f"{text[:24]}..."
