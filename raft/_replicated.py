"""`@replicated` state machines: a plain Python class whose `@command` methods are replicated.

    @replicated
    class Counter:
        def __init__(self) -> None:
            self.total = 0

        @command
        def incr(self, n: int) -> int:
            self.total += n
            return self.total

        @query
        def value(self) -> int:
            return self.total

The decorator makes every instance a `raft.StateMachine`: `apply(data)` decodes a call (see
`raft._replicated_codec`), runs the named command and returns its result; `snapshot()` and
`restore()` carry the instance's state (`__getstate__`/`__setstate__`, as for pickle, but
encoded with msgpack). `ReplicatedClient` turns ``await client.incr(5)`` into a proposal.
See docs/replicated.md.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar, overload

import attrs

from raft._replicated_codec import (
    MalformedCall,
    decode_call,
    decode_snapshot,
    encode_snapshot,
    round_trip,
)
from raft._replicated_codec import encode_call as _encode_call

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

CommandErrorKind = Literal["malformed", "unknown_command", "bad_arguments", "raised", "result"]

_RESERVED: Final = frozenset({"apply", "snapshot", "restore"})
_MAX_MESSAGE: Final = 1000
# Not deterministic: how deep the stack may grow, or how much memory there is, differs between
# replicas. Recorded as a result they could make replicas disagree, so they stop this replica.
_NOT_RECORDED: Final = (RecursionError, MemoryError)


@attrs.frozen
class CommandError:
    """The result of a call that did not run to completion, the same on every replica.

    `kind` says why:

    - ``"malformed"``: the bytes are not a call in a format this class reads;
    - ``"unknown_command"``: no `@command` of this class has that name (a `@query`, or a
      command a newer version of the class added);
    - ``"bad_arguments"``: the arguments do not fit the method's signature;
    - ``"raised"``: the command raised `exception` (the exception's class name) with
      `message`; whatever it changed before raising stays changed;
    - ``"result"``: the command ran, and its changes stand, but its return value is not
      something msgpack can encode.
    """

    kind: CommandErrorKind
    message: str
    exception: str | None = None


@attrs.frozen
class _Marker:
    kind: Literal["command", "query"]
    name: str | None
    signature: inspect.Signature  # computed once: inspect.signature costs more than a call


@attrs.frozen
class _Method:
    attribute: str
    wire_name: str
    kind: Literal["command", "query"]
    function: Callable[..., Any]
    signature: inspect.Signature

    def bind(self, instance: object, args: Any, kwargs: Any) -> None:
        """`TypeError` if the arguments do not fit the method's signature."""
        self.signature.bind(instance, *args, **kwargs)


@attrs.frozen
class _Spec:
    owner: type
    name: str
    methods: dict[str, _Method]  # by attribute name
    commands: dict[str, _Method]  # by wire name
    custom_getstate: bool
    custom_setstate: bool


@overload
def command(function: F, /) -> F: ...
@overload
def command(*, name: str | None = None) -> Callable[[F], F]: ...
def command(function: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a method of a `@replicated` class as a command: a call goes through the log and
    runs on every replica, in log order. `name` (default: the method's name) is what the log
    records: pin it to rename the method later without breaking logs written before.

    The method must be deterministic (see docs/replicated.md); calling it directly on an
    instance runs it locally, unreplicated, which is how to unit-test it."""
    return _mark("command", function, name)


@overload
def query(function: F, /) -> F: ...
@overload
def query(*, name: str | None = None) -> Callable[[F], F]: ...
def query(function: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a read-only method of a `@replicated` class as a query: `ReplicatedClient` runs
    it on the local replica once a linearizable read (ReadIndex) allows, never through the log.
    It must not change the state."""
    return _mark("query", function, name)


def _mark(kind: Literal["command", "query"], function: Any, name: str | None) -> Any:
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"@{kind}(name=...) must be a non-empty str, got {name!r}")

    def mark(function: Any) -> Any:
        if isinstance(function, staticmethod | classmethod | property):
            raise TypeError(f"@{kind} goes on a plain method, not a {type(function).__name__}")
        if not inspect.isfunction(function):
            raise TypeError(f"@{kind} goes on a method, got {function!r}")
        if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
            raise TypeError(
                f"@{kind} {function.__qualname__} must be a plain function: it runs inside the "
                "state machine's apply, which cannot await or yield"
            )
        if hasattr(function, "__raft_replicated__"):
            raise TypeError(f"{function.__qualname__} is marked @command or @query twice")
        function.__raft_replicated__ = _Marker(kind, name, inspect.signature(function))  # type: ignore[attr-defined]
        return function

    return mark if function is None else mark(function)


@overload
def replicated(cls: C, /) -> C: ...
@overload
def replicated(*, name: str | None = None) -> Callable[[C], C]: ...
def replicated(cls: Any = None, /, *, name: str | None = None) -> Any:
    """Make a class's instances `raft.StateMachine`s whose commands are its `@command` methods.

    Adds `apply`, `snapshot`, `restore` and (unless the class has one) `state_digest`, and
    checks the class: it must be constructible with no arguments (every replica starts from
    ``cls()``), must not define `apply`, `snapshot` or `restore` itself, and no two commands
    may share a wire name. `name` (default: the class's qualified name) is written into
    snapshots, so that a snapshot of another class is refused; pin it to rename the class.

    Subclasses of a decorated class are replicated too, with their own commands added.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"@replicated(name=...) must be a non-empty str, got {name!r}")

    def decorate(cls: Any) -> Any:
        if not isinstance(cls, type):
            raise TypeError(f"@replicated goes on a class, got {cls!r}")
        for reserved in sorted(_RESERVED):
            for klass in cls.__mro__[:-1]:
                value = klass.__dict__.get(reserved)
                if value is not None and not getattr(value, "__raft_injected__", False):
                    raise TypeError(
                        f"{klass.__qualname__} defines {reserved}(), which @replicated provides; "
                        "rename the method (or implement raft.StateMachine yourself)"
                    )
        try:
            inspect.signature(cls).bind()
        except TypeError as error:
            raise TypeError(
                f"{cls.__qualname__}() must work with no arguments: every replica starts "
                f"from a fresh instance ({error})"
            ) from None
        except ValueError:  # no signature to inspect (a C-level __init__): trust it
            pass
        cls.__raft_name__ = name or cls.__qualname__  # type: ignore[attr-defined]
        _build_spec(cls)
        digest = getattr(cls, "state_digest", None)
        own_digest = digest is not None and not getattr(digest, "__raft_injected__", False)
        for attribute, function in _INJECTED.items():
            if not (attribute == "state_digest" and own_digest):
                setattr(cls, attribute, function)
        return cls

    return decorate if cls is None else decorate(cls)


def _build_spec(cls: type) -> _Spec:
    markers: dict[str, tuple[Callable[..., Any], _Marker]] = {}
    for klass in reversed(cls.__mro__):
        for attribute, value in vars(klass).items():
            marker = getattr(value, "__raft_replicated__", None)
            if isinstance(marker, _Marker):
                markers[attribute] = (value, marker)
            else:
                markers.pop(attribute, None)  # overridden without a mark: no longer replicated
    methods: dict[str, _Method] = {}
    commands: dict[str, _Method] = {}
    wire_names: dict[str, str] = {}
    for attribute in sorted(markers):
        function, marker = markers[attribute]
        if attribute in _RESERVED or attribute == "state_digest":
            raise TypeError(f"{cls.__qualname__}.{attribute} cannot be a @{marker.kind}")
        wire_name = marker.name or attribute
        if wire_name in wire_names:
            raise TypeError(
                f"{cls.__qualname__}.{attribute} and .{wire_names[wire_name]} share the "
                f"wire name {wire_name!r}"
            )
        wire_names[wire_name] = attribute
        method = _Method(attribute, wire_name, marker.kind, function, marker.signature)
        methods[attribute] = method
        if marker.kind == "command":
            commands[wire_name] = method
    spec = _Spec(
        owner=cls,
        name=cls.__dict__.get("__raft_name__", cls.__qualname__),
        methods=methods,
        commands=commands,
        custom_getstate=_overrides(cls, "__getstate__"),
        custom_setstate=_overrides(cls, "__setstate__"),
    )
    type.__setattr__(cls, "__raft_spec__", spec)
    return spec


def _overrides(cls: type, name: str) -> bool:
    return any(name in vars(klass) for klass in cls.__mro__[:-1])


def spec_of(cls: type) -> _Spec:
    """The commands and queries of a `@replicated` class (built on first use for an
    undecorated subclass of one); `TypeError` for any other class."""
    spec = cls.__dict__.get("__raft_spec__")
    if isinstance(spec, _Spec):
        return spec
    if not isinstance(getattr(cls, "__raft_spec__", None), _Spec):
        raise TypeError(f"{cls.__qualname__} is not a @replicated class")
    return _build_spec(cls)


def encode_call(method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bytes:
    """The bytes that propose a call of `method` (a `@command`, as ``Counter.incr``) with
    these arguments: what `ReplicatedClient` sends, and what a test or a simulator feeds to
    `apply`. `TypeError` at once if the arguments do not fit the method or msgpack cannot
    encode them (naming which one)."""
    marker = getattr(method, "__raft_replicated__", None)
    if not isinstance(marker, _Marker) or marker.kind != "command":
        raise TypeError(f"{method!r} is not a @command method (pass it as Class.method)")
    wire_name = marker.name or method.__name__
    try:
        marker.signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{wire_name}(): {error}") from None
    return _encode_call(wire_name, args, kwargs)


def _apply(self: Any, data: bytes) -> object:
    """Run the command `data` calls (made by `encode_call`) and return its result, or a
    `CommandError` saying why it did not complete. Never raises for any `data`: a malformed
    call, an unknown command or an exception from the command is a result, the same on
    every replica. (`RecursionError` and `MemoryError` do propagate: how deep a stack may
    grow differs between replicas, so they cannot be recorded as a result.)"""
    spec = spec_of(type(self))
    try:
        wire_name, args, kwargs = decode_call(data)
    except MalformedCall as error:
        return CommandError("malformed", _cut(str(error)))
    method = spec.commands.get(wire_name)
    if method is None:
        is_query = any(m.wire_name == wire_name for m in spec.methods.values())
        what = "is a @query, not a @command" if is_query else "is not a command"
        return CommandError("unknown_command", _cut(f"{spec.name}.{wire_name} {what}"))
    try:
        method.bind(self, args, kwargs)
    except TypeError as error:
        return CommandError("bad_arguments", _cut(f"{wire_name}(): {error}"))
    try:
        result = method.function(self, *args, **kwargs)
    except _NOT_RECORDED:
        raise
    except Exception as error:
        return CommandError("raised", _cut(str(error)), type(error).__name__)
    try:
        return round_trip(result, f"the result of {wire_name}()")
    except TypeError as error:
        return CommandError("result", _cut(str(error)))


def _snapshot(self: Any) -> bytes:
    """The instance's whole state (`__getstate__`, by default its attributes) as msgpack.

    Raises `TypeError` naming the attribute (and the place in it) that msgpack cannot encode:
    a set, say, or an object; convert it in `__getstate__` and back in `__setstate__`."""
    spec = spec_of(type(self))
    state = self.__getstate__() if spec.custom_getstate else _default_state(self)
    return encode_snapshot(spec.name, state)


def _restore(self: Any, data: bytes) -> None:
    """Replace the whole state with a snapshot's. The state is rebuilt on a bare instance (as
    pickle does: ``cls.__new__(cls)``, then `__setstate__` or the attributes set one by one)
    and moved over only when that succeeded: for bytes that are not a snapshot of this class,
    or a state `__setstate__` refuses, `ValueError` and no change."""
    cls: Any = type(self)
    spec = spec_of(cls)
    state = decode_snapshot(spec.name, data)
    fresh = cls.__new__(cls)
    try:
        if spec.custom_setstate:
            fresh.__setstate__(state)
        else:
            _set_default_state(fresh, state)
    except _NOT_RECORDED:
        raise
    except Exception as error:
        raise ValueError(
            f"invalid {spec.name} snapshot: {type(error).__name__}: {_cut(str(error))}"
        ) from None
    _move_state(fresh, self)


def _state_digest(self: Any) -> str:
    """A SHA-256 hex digest of the snapshot: equal on replicas holding the same state."""
    return hashlib.sha256(_snapshot(self)).hexdigest()


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and slot not in names:
                names.append(slot)
    return names


_ABSENT: Final = object()


def _default_state(instance: object) -> dict[str, Any]:
    state = dict(getattr(instance, "__dict__", {}))
    for slot in _slots(type(instance)):
        value = getattr(instance, slot, _ABSENT)
        if value is not _ABSENT:
            state[slot] = value
    return state


def _set_default_state(instance: object, state: object) -> None:
    if not isinstance(state, dict):
        raise TypeError(f"the state must be a map of attributes, got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise TypeError(f"{_cut(repr(key))} is not an attribute name")
        object.__setattr__(instance, key, value)


def _move_state(source: object, target: object) -> None:
    if hasattr(target, "__dict__"):
        target.__dict__.clear()
        target.__dict__.update(source.__dict__)
    for slot in _slots(type(target)):
        value = getattr(source, slot, _ABSENT)
        if value is not _ABSENT:
            object.__setattr__(target, slot, value)
        elif hasattr(target, slot):
            object.__delattr__(target, slot)


def _cut(text: str) -> str:
    # Results are kept (session table, simulator histories): a huge message would be kept too.
    return text if len(text) <= _MAX_MESSAGE else f"{text[:_MAX_MESSAGE]}..."


class Replicated:
    """An optional base class for `@replicated` classes, for type checkers' sake.

    The decorator adds `apply`, `snapshot`, `restore` and `state_digest` when the program
    runs, which a static type checker cannot see: deriving from this class declares them, so
    that an instance type-checks as a `raft.StateMachine`. It changes nothing else (the class
    still needs `@replicated`) and adds no attributes (``__slots__ = ()``).
    """

    __slots__ = ()

    def apply(self, command: bytes) -> object:
        """Run the `@command` that `command` calls; see `raft.encode_call`."""
        return _apply(self, command)

    def snapshot(self) -> bytes:
        """The whole state as msgpack (`__getstate__`)."""
        return _snapshot(self)

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's; `ValueError` and no change if invalid."""
        _restore(self, data)

    def state_digest(self) -> str:
        """A SHA-256 hex digest of the snapshot."""
        return _state_digest(self)


for _name in ("apply", "snapshot", "restore", "state_digest"):
    vars(Replicated)[_name].__raft_injected__ = True


_INJECTED: Final[dict[str, Callable[..., Any]]] = {
    "apply": _apply,
    "snapshot": _snapshot,
    "restore": _restore,
    "state_digest": _state_digest,
}
for _attribute, _function in _INJECTED.items():
    _function.__raft_injected__ = True  # type: ignore[attr-defined]
    _function.__name__ = _function.__qualname__ = _attribute
