"""Client histories in Jepsen's shape, paired into operations.

A history is a sequence of events, one JSON object per line (see "Simulator conventions" in
DESIGN.md)::

    {"process": 3, "type": "invoke", "f": "write", "key": "x", "value": 1, "time": 1000}
    {"process": 3, "type": "ok",     "f": "write", "key": "x", "value": 1, "time": 2500}

Theory of operation: each process has at most one operation outstanding, so an invocation is
paired with the *next* completion of the same process. The completion's type is the outcome:

- ``ok``: the operation took effect, between its invocation and completion times;
- ``fail``: it certainly did not take effect;
- ``info``: nobody knows; it may take effect at any time after its invocation, or never.

An invocation that is never completed before the history ends is also ``info``. The checker in
``sim._linearizability`` consumes the resulting ``Op`` records; this module only validates and
pairs, so every complaint about the input names the line it came from.
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import TypeAlias, TypeVar

import attrs

Scalar: TypeAlias = bool | int | float | str | None
"""A register value: any JSON scalar."""

OpValue: TypeAlias = Scalar | tuple[Scalar, Scalar]
"""An operation's value: a scalar, or ``(expected, new)`` for a compare-and-set."""


class OpKind(enum.Enum):
    """What a client asked the register to do (Jepsen's ``f``)."""

    READ = "read"
    WRITE = "write"
    CAS = "cas"


class Outcome(enum.Enum):
    """How an operation ended, as far as its client knows (Jepsen's completion ``type``)."""

    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class HistoryError(ValueError):
    """A history that cannot be read as pairs of invocations and completions.

    ``line`` is the 1-based line (or record) number the problem was found at; ``str()`` gives
    ``"line N: message"``.
    """

    def __init__(self, line: int, message: str) -> None:
        # Both go to ValueError, so that the error pickles (e.g. across a process pool).
        super().__init__(line, message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@attrs.frozen
class Op:
    """One client operation: an invocation and what became of it.

    ``value`` is what was written for a write, ``(expected, new)`` for a cas, and for a read the
    value the read returned when ``outcome`` is ok (otherwise None: nothing was observed).
    ``complete_time`` is None exactly when the outcome is info: the operation is never known to
    have completed, so it stays concurrent with everything invoked after it. ``invoke_line`` and
    ``complete_line`` are the history file lines the op came from, when it came from one.
    """

    process: int
    kind: OpKind
    key: str | None
    value: OpValue
    outcome: Outcome
    invoke_time: int
    complete_time: int | None
    invoke_line: int | None = None
    complete_line: int | None = None

    def __attrs_post_init__(self) -> None:
        """Refuse (``ValueError``) a value or completion time that contradicts the kind or
        outcome: such an op could only come from a bug in whoever built it."""
        if (self.kind is OpKind.CAS) != isinstance(self.value, tuple):
            raise ValueError(f"a {self.kind.value} op cannot have the value {self.value!r}")
        if isinstance(self.value, tuple) and len(self.value) != 2:
            raise ValueError(f"a cas op's value must be an (expected, new) pair: {self.value!r}")
        if (self.outcome is Outcome.INFO) != (self.complete_time is None):
            raise ValueError("complete_time must be None exactly when the outcome is info")
        if self.complete_time is not None and self.complete_time < self.invoke_time:
            raise ValueError(f"complete_time {self.complete_time} < invoke_time {self.invoke_time}")

    def describe(self) -> str:
        """One human-readable line: process, f, key, value, outcome, times and file lines."""
        key = "" if self.key is None else f" key={json.dumps(self.key)}"
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        end = "?" if self.complete_time is None else str(self.complete_time)
        text = (
            f"process {self.process} {self.kind.value}{key} value={json.dumps(value)} "
            f"{self.outcome.value} t={self.invoke_time}..{end}"
        )
        if self.invoke_line is None:
            return text
        if self.complete_line is None:
            return f"{text} (line {self.invoke_line})"
        return f"{text} (lines {self.invoke_line}-{self.complete_line})"


_T = TypeVar("_T")

_KINDS = {kind.value: kind for kind in OpKind}
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
# The completion types map to outcomes; an invocation has none yet.
_EVENT_TYPES: dict[str, Outcome | None] = {"invoke": None, **_OUTCOMES}


@attrs.frozen
class _Event:
    """One validated record: an invocation (``outcome`` None) or a completion."""

    line: int
    outcome: Outcome | None
    kind: OpKind
    process: int
    time: int
    key: str | None
    record: Mapping[str, object]
    value: OpValue = None


def history_from_records(records: Iterable[Mapping[str, object]]) -> list[Op]:
    """Pair invocation and completion records into ops, in invocation order.

    Record ``n`` (counting from 1) is reported as line ``n``. Raises ``HistoryError`` naming the
    record for: a missing or mistyped field, an unknown ``type`` or ``f``, a second invocation
    while the process has one outstanding, a completion without an invocation, a completion
    whose ``f`` or ``key`` differs from its invocation's or whose time is earlier, and a cas
    value that is not a two-element list. An invocation still outstanding at the end is info.
    """
    return _pair(enumerate(records, start=1))


def load_history(path: str | os.PathLike[str]) -> list[Op]:
    """Read a JSONL history file and pair it as ``history_from_records`` does.

    Blank lines are skipped; line numbers in errors are the file's own. Raises
    ``HistoryError`` for a line that is not UTF-8 or not a JSON object, and ``OSError`` when the
    file cannot be read.
    """
    with open(path, "rb") as stream:
        return _pair(_parse_lines(stream))


def _parse_lines(lines: Iterable[bytes]) -> Iterable[tuple[int, object]]:
    for line, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HistoryError(line, f"not valid UTF-8 ({exc.reason})") from None
        if not text.strip():
            continue
        try:
            yield line, json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise HistoryError(line, f"not valid JSON: {exc}") from None


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN and Infinity, which are not JSON and would break value equality.
    raise ValueError(f"{name} is not a JSON number")


def _pair(numbered: Iterable[tuple[int, object]]) -> list[Op]:
    outstanding: dict[int, _Event] = {}
    ops_by_invoke_line: dict[int, Op] = {}
    for line, record in numbered:
        event = _event(line, record)
        if event.outcome is None:
            earlier = outstanding.get(event.process)
            if earlier is not None:
                raise HistoryError(
                    line,
                    f"process {event.process} invokes {event.kind.value} while its "
                    f"{earlier.kind.value} from line {earlier.line} is still outstanding",
                )
            # Validate the value now, so an error is reported in line order.
            outstanding[event.process] = attrs.evolve(event, value=_invocation_value(event))
            continue
        invocation = outstanding.pop(event.process, None)
        if invocation is None:
            raise HistoryError(
                line,
                f"completion for process {event.process}, which has no outstanding invocation",
            )
        ops_by_invoke_line[invocation.line] = _complete(invocation, event, event.outcome)
    for invocation in outstanding.values():
        ops_by_invoke_line[invocation.line] = _never_completed(invocation)
    return [ops_by_invoke_line[line] for line in sorted(ops_by_invoke_line)]


def _event(line: int, record: object) -> _Event:
    if not isinstance(record, Mapping):
        raise HistoryError(line, f"expected a JSON object, not {json.dumps(record)}")
    return _Event(
        line=line,
        outcome=_choice(record, "type", _EVENT_TYPES, line),
        kind=_choice(record, "f", _KINDS, line),
        process=_int_field(record, "process", line),
        time=_int_field(record, "time", line),
        key=_key(record, line),
        record=record,
    )


def _complete(invocation: _Event, completion: _Event, outcome: Outcome) -> Op:
    line = completion.line
    if completion.kind is not invocation.kind:
        raise HistoryError(
            line,
            f"completion f {completion.kind.value!r} does not match the invocation's "
            f"{invocation.kind.value!r} (line {invocation.line})",
        )
    if "key" in completion.record and completion.key != invocation.key:
        raise HistoryError(
            line,
            f"completion key {completion.key!r} does not match the invocation's "
            f"{invocation.key!r} (line {invocation.line})",
        )
    if completion.time < invocation.time:
        raise HistoryError(
            line,
            f"completion time {completion.time} is before its invocation's "
            f"{invocation.time} (line {invocation.line})",
        )
    # A read's invocation carries no value; only an ok completion observed one. A write's or
    # cas's value is the invocation's: that is what the client asked for.
    value = invocation.value
    if invocation.kind is OpKind.READ and outcome is Outcome.OK:
        value = _scalar(completion)
    return Op(
        process=invocation.process,
        kind=invocation.kind,
        key=invocation.key,
        value=value,
        outcome=outcome,
        invoke_time=invocation.time,
        complete_time=None if outcome is Outcome.INFO else completion.time,
        invoke_line=invocation.line,
        complete_line=line,
    )


def _never_completed(invocation: _Event) -> Op:
    return Op(
        process=invocation.process,
        kind=invocation.kind,
        key=invocation.key,
        value=invocation.value,
        outcome=Outcome.INFO,
        invoke_time=invocation.time,
        complete_time=None,
        invoke_line=invocation.line,
    )


def _int_field(record: Mapping[str, object], name: str, line: int) -> int:
    value = _required(record, name, line)
    # bool is an int to Python, but `"process": true` is a broken record, not process 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise HistoryError(line, f"field {name!r} must be an integer, not {json.dumps(value)}")
    return value


def _choice(record: Mapping[str, object], name: str, allowed: Mapping[str, _T], line: int) -> _T:
    value = _required(record, name, line)
    if not isinstance(value, str) or value not in allowed:
        raise HistoryError(
            line,
            f"unknown {name} {json.dumps(value)} (expected one of {', '.join(allowed)})",
        )
    return allowed[value]


def _key(record: Mapping[str, object], line: int) -> str | None:
    key = record.get("key")
    if key is not None and not isinstance(key, str):
        raise HistoryError(line, f"field 'key' must be a string, not {json.dumps(key)}")
    return key


def _required(record: Mapping[str, object], name: str, line: int) -> object:
    if name not in record:
        raise HistoryError(line, f"missing field {name!r}")
    return record[name]


def _invocation_value(invocation: _Event) -> OpValue:
    if invocation.kind is OpKind.READ:
        return None
    if invocation.kind is OpKind.WRITE:
        return _scalar(invocation)
    pair = _required(invocation.record, "value", invocation.line)
    if not isinstance(pair, list) or len(pair) != 2:
        raise HistoryError(
            invocation.line,
            f"a cas value must be a list [expected, new], not {json.dumps(pair)}",
        )
    return (_checked_scalar(pair[0], invocation.line), _checked_scalar(pair[1], invocation.line))


def _scalar(event: _Event) -> Scalar:
    return _checked_scalar(_required(event.record, "value", event.line), event.line)


def _checked_scalar(value: object, line: int) -> Scalar:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise HistoryError(line, f"a register value must be a JSON scalar, not {value!r}")
