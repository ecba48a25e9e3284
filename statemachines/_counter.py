"""Named replicated counters: the `Counter` state machine.

Wire format, version 1 (see `statemachines._msgpack_codec`)::

    [b"\\x01"] ["add", name, delta]           add delta (may be negative); answers the new value
               ["get", name]                  read through the log
               ["cas", name, expected, new]   set to new if the counter now holds expected

``name`` is a non-empty string (at most 1024 bytes of UTF-8); numbers are signed 64-bit
integers. An absent counter holds 0. An add whose result would leave the signed 64-bit range is
refused and changes nothing, so every replica, whatever its integers, agrees.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import attrs

from statemachines._kv_codec import MalformedCommand
from statemachines._msgpack_codec import (
    INT64_MAX,
    INT64_MIN,
    decode_command,
    decode_snapshot,
    encode_command,
    encode_snapshot,
    int64_field,
    name_field,
)

COUNTER_FORMAT_VERSION = 1
"""The format byte that starts every counter command this module writes."""

COUNTER_SNAPSHOT_VERSION = 1
"""The version byte of the snapshots `Counter.snapshot` writes."""

_MAGIC = b"CTRSNAP"
_SCHEMAS = {
    "add": (("name", name_field), ("delta", int64_field)),
    "get": (("name", name_field),),
    "cas": (("name", name_field), ("expected", int64_field), ("new", int64_field)),
}


def counter_add(name: str, delta: int) -> bytes:
    """Add `delta` to counter `name`."""
    return encode_command(COUNTER_FORMAT_VERSION, _SCHEMAS, "add", name, delta)


def counter_get(name: str) -> bytes:
    """Read counter `name` through the log (a linearizable read)."""
    return encode_command(COUNTER_FORMAT_VERSION, _SCHEMAS, "get", name)


def counter_cas(name: str, expected: int, new: int) -> bytes:
    """Set counter `name` to `new` if it now holds `expected`."""
    return encode_command(COUNTER_FORMAT_VERSION, _SCHEMAS, "cas", name, expected, new)


@attrs.frozen
class CounterResult:
    """What one applied counter command gave its proposer.

    ==================  =====  ===============================================
    command             ok     value
    ==================  =====  ===============================================
    add                 True   the value after adding
    add, overflow       False  the value now held (unchanged); `error` says why
    get                 True   the value now held
    cas, matched        True   the value replaced (equal to `expected`)
    cas, not matched    False  the value now held
    malformed command   False  None; `error` names the problem
    ==================  =====  ===============================================
    """

    ok: bool
    value: int | None = None
    error: str | None = None


class Counter:
    """Named signed 64-bit counters (absent ones hold 0), changed only by `apply` and
    `restore`; implements `raft.StateMachine`."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        """Every counter at 0."""
        self._values: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<Counter: {len(self._values)} counters>"

    def apply(self, command: bytes) -> CounterResult:
        """Apply one committed command and return its result (see `CounterResult`); never
        raises."""
        try:
            op, fields = _decode_shared(command)
        except MalformedCommand as error:
            return CounterResult(ok=False, error=str(error))
        name = fields[0]
        current = self._values.get(name, 0)
        if op == "get":
            return CounterResult(ok=True, value=current)
        if op == "add":
            total = current + fields[1]
            if not INT64_MIN <= total <= INT64_MAX:
                return CounterResult(
                    ok=False, value=current, error="the sum leaves the signed 64-bit range"
                )
            self._set(name, total)
            return CounterResult(ok=True, value=total)
        if current != fields[1]:
            return CounterResult(ok=False, value=current)
        self._set(name, fields[2])
        return CounterResult(ok=True, value=current)

    def _set(self, name: str, value: int) -> None:
        # A counter at 0 is absent: equal states have one representation, and one snapshot.
        if value:
            self._values[name] = value
        else:
            self._values.pop(name, None)

    def get(self, name: str) -> int:
        """Counter `name` on this replica now (a stale read if it lags)."""
        return self._values.get(name, 0)

    def items(self) -> list[tuple[str, int]]:
        """Every non-zero counter on this replica now, sorted by name."""
        return sorted(self._values.items())

    def snapshot(self) -> bytes:
        """Every non-zero counter as a canonical, checksummed snapshot."""
        return encode_snapshot(
            _MAGIC, COUNTER_SNAPSHOT_VERSION, [[name, value] for name, value in self.items()]
        )

    def restore(self, data: bytes) -> None:
        """Replace every counter with what `data` (from `snapshot`) holds; `ValueError`, and
        nothing changed, if it is not a valid counter snapshot."""
        rows = decode_snapshot(data, _MAGIC, COUNTER_SNAPSHOT_VERSION, "counter")
        values: dict[str, int] = {}
        try:
            previous = ""
            for name, value in rows:
                if name_field("name", name) <= previous:
                    raise ValueError("counters out of order or repeated")
                if int64_field("value", value) == 0:
                    raise ValueError("a zero counter is never stored")
                previous = name
                values[name] = value
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid counter snapshot: {error}") from None
        self._values = values

    def state_digest(self) -> str:
        """A SHA-256 hex digest of every counter, for comparing replicas."""
        return hashlib.sha256(self.snapshot()).hexdigest()


@functools.lru_cache(maxsize=4096)
def _decode_shared(command: bytes) -> tuple[str, tuple[Any, ...]]:
    # Decoding is a pure function of the bytes: replicas in one process may share the work.
    return decode_command(command, COUNTER_FORMAT_VERSION, _SCHEMAS)
