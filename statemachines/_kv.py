"""A replicated key-value store: the ready-made `raft.StateMachine`.

Keys are strings and values are JSON values (`JSONValue`); commands are the bytes that
`statemachines._kv_codec` specifies, made by `encode_get`, `encode_put`, `encode_delete` and
`encode_cas`. Every replica that applies the same commands in the same order holds the same
mapping, and `KVStore.state_digest` proves it cheaply.
"""

from __future__ import annotations

import functools
import hashlib
from typing import overload

import attrs

from statemachines._kv_codec import (
    JSONValue,
    KVCommand,
    KVCompareAndSet,
    KVDelete,
    KVGet,
    KVPut,
    MalformedCommand,
    canonical_json,
    decode_command,
)
from statemachines._kv_snapshot import decode_snapshot, encode_snapshot


def _no_value_with_error(
    instance: KVResult, _attribute: attrs.Attribute[str | None], error: str | None
) -> None:
    if error is not None and (instance.ok or instance.value is not None):
        raise ValueError("a KVResult with an error has ok=False and value=None")


@attrs.frozen
class KVResult:
    """What one applied command gave the client that proposed it.

    ==================  =====  ================================================  =========
    command             ok     value                                             error
    ==================  =====  ================================================  =========
    get                 True   the value now held, None if the key is absent     None
    put                 True   the value replaced, None if the key was absent    None
    delete              True   the value removed, None if the key was absent     None
    cas, matched        True   the value replaced (equal to `expected`)          None
    cas, not matched    False  the value now held, None if the key is absent     None
    malformed command   False  None                                              the problem
    ==================  =====  ================================================  =========

    Deleting an absent key succeeds: afterwards the key is absent, as asked. A cas that did not
    match is a normal outcome, not an error: it certainly had no effect, and `value` tells the
    client what to expect next time. `error` is set only for bytes that are not a valid command
    (`MalformedCommand`), for example ``"unsupported command version 7"``.
    """

    ok: bool
    value: JSONValue | None = None
    error: str | None = attrs.field(default=None, validator=_no_value_with_error)


class KVStore:
    """A mapping from `str` keys to `JSONValue` values, changed only by `apply` and `restore`.

    `apply`, `snapshot` and `restore` implement `raft.StateMachine`: `apply`'s result depends
    only on the command and the store's contents, and bytes that are not a valid command give a
    `KVResult` with an `error` instead of raising, so a bad proposal cannot stop a replica.

    Values are equal when they are the same JSON value: same type, and equal numbers, strings or
    elements. So ``1``, ``1.0`` and ``true`` are three different values (a cas expecting ``1``
    does not match ``true``), as they are to the simulator's linearizability checker.

    `get`, `items` and `len` read this replica's state as it is now: a stale read if the replica
    lags the leader. For a linearizable read, propose `encode_get` through the log.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        """An empty store."""
        self._values: dict[str, JSONValue] = {}

    def __repr__(self) -> str:
        return f"<KVStore: {len(self._values)} keys, digest {self.state_digest()[:16]}>"

    def __len__(self) -> int:
        """The number of keys present."""
        return len(self._values)

    def apply(self, command: bytes) -> KVResult:
        """Apply one committed command and return its result (see `KVResult`); never raises."""
        try:
            decoded = _decode_shared(command)
        except MalformedCommand as error:
            return KVResult(ok=False, error=str(error))
        values = self._values
        # A value leaving the store (replaced or deleted) is handed over as it is; one that stays
        # is copied, so that a client mutating its result cannot change this replica's state.
        # Values entering the store are copied too: decoded commands are shared (see
        # `_decode_shared`), and no two stores may hold the same list or dict.
        match decoded:
            case KVGet(key):
                return KVResult(ok=True, value=_copy(values.get(key)))
            case KVPut(key, value):
                previous = values.get(key)
                values[key] = _copy(value)
                return KVResult(ok=True, value=previous)
            case KVDelete(key):
                return KVResult(ok=True, value=values.pop(key, None))
            case KVCompareAndSet(key, expected, new):
                current = values.get(key)
                if not _same_value(current, expected):
                    return KVResult(ok=False, value=_copy(current))
                values[key] = _copy(new)
                return KVResult(ok=True, value=current)

    def snapshot(self) -> bytes:
        """The whole mapping as a canonical, checksummed snapshot (`statemachines._kv_snapshot`):
        equal stores give identical bytes (paper §7)."""
        return encode_snapshot(self._values)

    def restore(self, data: bytes) -> None:
        """Replace the whole mapping with the one `data` (from `snapshot`) holds. `ValueError`
        saying what is wrong, and the store unchanged, if `data` is not a valid snapshot."""
        self._values = decode_snapshot(data)

    def get(self, key: str) -> JSONValue | None:
        """A copy of the value `key` holds on this replica now, or None if it is absent.

        Not linearizable: see the class docstring.
        """
        return _copy(self._values.get(key))

    def items(self) -> list[tuple[str, JSONValue]]:
        """Copies of every `(key, value)` pair on this replica now, sorted by key."""
        return [(key, _copy(self._values[key])) for key in sorted(self._values)]

    def state_digest(self) -> str:
        """A SHA-256 hex digest of the whole mapping, for comparing replicas.

        It hashes the mapping as one JSON object in the wire format's canonical form, so it does
        not depend on the order in which keys were inserted: two stores have the same digest
        when they hold the same keys with identically encoded values (which tells ``0.0`` from
        ``-0.0``, though a cas does not). It costs time proportional to the store's size plus a
        sort of its keys: compare replicas at checkpoints, not after every command.
        """
        return hashlib.sha256(canonical_json(self._values).encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=4096)
def _decode_shared(command: bytes) -> KVCommand:
    """`decode_command`, remembered: every replica in a process (the simulator runs many)
    decodes each command once between them instead of once each. Decoding is a pure function
    of the bytes, so this cannot make replicas differ; callers never mutate what it returns."""
    return decode_command(command)


def _same_value(left: JSONValue | None, right: JSONValue | None) -> bool:
    # Python's == says 1 == 1.0 == True; JSON, and the linearizability checker, do not.
    if type(left) is not type(right):
        return False
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same_value, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            _same_value(item, right[name]) for name, item in left.items()
        )
    return left == right


@overload
def _copy(value: JSONValue) -> JSONValue: ...
@overload
def _copy(value: None) -> None: ...
def _copy(value: JSONValue | None) -> JSONValue | None:
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {name: _copy(item) for name, item in value.items()}
    return value
