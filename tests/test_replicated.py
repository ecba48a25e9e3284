"""`@replicated` state machines: the call format, error results, snapshots and determinism, and
the simulator's fault-injecting harness run on a `@replicated` class."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raft
from raft import CommandError, Replicated, command, encode_call, query, replicated
from raft._replicated_codec import MAX_DEPTH, decode_call
from sim.testing import ReplicatedStateMachineTest


@replicated
class Counter(Replicated):
    def __init__(self) -> None:
        self.total = 0
        self.history: list[int] = []

    @command
    def incr(self, n: int = 1) -> int:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        self.total += n
        self.history.append(n)
        return self.total

    @command
    def reset(self) -> None:
        self.total = 0

    @command
    def echo(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [list(args), kwargs]

    @command
    def half_then_fail(self, n: int) -> None:
        self.total += n
        raise RuntimeError("after changing total")

    @command
    def leak(self) -> list[int]:
        return self.history

    @command
    def bad_result(self) -> object:
        self.total += 1
        return {1, 2}

    @query
    def value(self) -> int:
        return self.total


def state(machine: Any) -> bytes:
    snapshot: bytes = machine.snapshot()
    return snapshot


# ---- calling commands --------------------------------------------------------------------


def test_a_command_runs_and_returns_its_result() -> None:
    counter = Counter()
    assert counter.apply(encode_call(Counter.incr, 5)) == 5
    assert counter.apply(encode_call(Counter.incr, n=2)) == 7
    assert counter.apply(encode_call(Counter.incr)) == 8
    assert counter.apply(encode_call(Counter.reset)) is None
    assert counter.total == 0 and counter.history == [5, 2, 1]
    assert counter.incr(3) == 3  # a direct call runs locally, unreplicated
    assert counter.value() == 3


def test_the_instance_is_a_state_machine_and_the_names_are_exported() -> None:
    machine: raft.StateMachine = Counter()
    assert callable(machine.apply) and callable(machine.snapshot) and callable(machine.restore)
    for name in ("replicated", "command", "query", "encode_call", "CommandError"):
        assert name in raft.__all__
    assert {"CommandFailed", "ReplicatedClient"} <= set(raft.__all__)


def test_the_call_format_is_a_versioned_msgpack_array() -> None:
    data = encode_call(Counter.echo, 1, "a", b"b", key=[1.5, None])
    assert msgpack.unpackb(data) == [1, "echo", [1, "a", b"b"], {"key": [1.5, None]}]


def test_a_raising_command_is_an_error_result_and_keeps_its_changes() -> None:
    counter = Counter()
    result = counter.apply(encode_call(Counter.half_then_fail, 4))
    assert result == CommandError("raised", "after changing total", "RuntimeError")
    assert counter.total == 4
    result = counter.apply(encode_call(Counter.incr, "x"))
    assert result == CommandError("raised", "n must be an int, got str", "TypeError")


def test_results_are_copies_that_share_nothing_with_the_state() -> None:
    counter = Counter()
    counter.incr(1)
    result = counter.apply(encode_call(Counter.leak))
    assert result == [1]
    result.append(99)
    assert counter.history == [1]


def test_an_unencodable_result_is_an_error_and_the_command_stands() -> None:
    counter = Counter()
    result = counter.apply(encode_call(Counter.bad_result))
    assert isinstance(result, CommandError) and result.kind == "result"
    assert "set" in result.message
    assert counter.total == 1


def test_encode_call_refuses_bad_arguments_at_the_call_site() -> None:
    with pytest.raises(TypeError, match=r"argument 1 of incr\(\) is a set"):
        encode_call(Counter.incr, {1})
    with pytest.raises(TypeError, match=r"argument 'key' of echo\(\)\['x'\]\[1\] is a object"):
        encode_call(Counter.echo, key={"x": [1, object()]})
    with pytest.raises(TypeError, match="outside msgpack's range"):
        encode_call(Counter.incr, 2**64)
    with pytest.raises(TypeError, match="lone surrogate"):
        encode_call(Counter.echo, "\ud800")
    with pytest.raises(TypeError, match="dict key of type tuple"):
        encode_call(Counter.echo, {(1, 2): 3})
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match=f"deeper than {MAX_DEPTH}"):
        encode_call(Counter.echo, cyclic)
    with pytest.raises(TypeError, match=r"incr\(\): too many positional arguments"):
        encode_call(Counter.incr, 1, 2)
    with pytest.raises(TypeError, match="not a @command"):
        encode_call(Counter.value)
    with pytest.raises(TypeError, match="not a @command"):
        encode_call(len)


MSGPACK_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
MSGPACK_VALUES = st.recursive(
    MSGPACK_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text() | st.integers(-5, 5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    args=st.lists(MSGPACK_VALUES, max_size=4),
    kwargs=st.dictionaries(st.text().filter(str.isidentifier), MSGPACK_VALUES, max_size=3),
)
def test_arguments_survive_the_round_trip(args: list[Any], kwargs: dict[str, Any]) -> None:
    data = encode_call(Counter.echo, *args, **kwargs)
    assert decode_call(data) == ("echo", args, kwargs)
    assert Counter().apply(data) == [args, kwargs]


def test_tuples_arrive_as_lists() -> None:
    data = encode_call(Counter.echo, (1, (2, 3)), bytearray(b"x"))
    assert Counter().apply(data) == [[[1, [2, 3]], b"x"], {}]


# ---- malformed calls -------------------------------------------------------------------------


def _pack(value: object) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


MALFORMED = {
    "empty": b"",
    "not msgpack": b"\xc1",
    "trailing bytes": _pack([1, "incr", [1], {}]) + b"\x00",
    "not an array": _pack({"name": "incr"}),
    "three fields": _pack([1, "incr", [1]]),
    "version 2": _pack([2, "incr", [1], {}]),
    "version true": _pack([True, "incr", [1], {}]),
    "name not a str": _pack([1, b"incr", [1], {}]),
    "args not an array": _pack([1, "incr", 1, {}]),
    "kwargs not a map": _pack([1, "incr", [], [1]]),
    "kwargs key not a str": _pack([1, "incr", [], {1: 2}]),
    "extension type": _pack([1, "incr", [msgpack.ExtType(5, b"x")], {}]),
    "invalid utf-8": b"\x94\x01\xa4in\xff\xff\x90\x80",
    "array as map key": b"\x94\x01\xa4echo\x91\x81\x91\x01\x02\x80",
    "deep nesting": b"\x94\x01\xa4echo\x91" + b"\x91" * 5000 + b"\xc0\x80",
    "unknown command": _pack([1, "frobnicate", [], {}]),
    "a query": _pack([1, "value", [], {}]),
    "a private method": _pack([1, "__init__", [], {}]),
    "too many args": _pack([1, "incr", [1, 2], {}]),
    "unknown kwarg": _pack([1, "incr", [], {"m": 1}]),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_call_is_an_error_result_and_changes_nothing(data: bytes) -> None:
    counter = Counter()
    counter.incr(3)
    before = state(counter)
    result = counter.apply(data)
    assert isinstance(result, CommandError)
    assert result.kind in ("malformed", "unknown_command", "bad_arguments")
    assert state(counter) == before


def test_error_kinds_name_the_problem() -> None:
    def apply(data: bytes) -> CommandError:
        result = Counter().apply(data)
        assert isinstance(result, CommandError)
        return result

    assert apply(MALFORMED["version 2"]).message.startswith("unsupported call format version 2")
    assert apply(MALFORMED["a query"]) == CommandError(
        "unknown_command", "Counter.value is a @query, not a @command"
    )
    assert apply(MALFORMED["unknown kwarg"]).kind == "bad_arguments"
    huge = apply(_pack([1, "x" * 100_000, [], {}]))
    assert huge.kind == "unknown_command" and len(huge.message) < 1100


@given(st.binary(max_size=64) | st.builds(_pack, MSGPACK_VALUES))
def test_arbitrary_bytes_never_raise_and_change_nothing(data: bytes) -> None:
    counter = Counter()
    counter.incr(3)
    before = state(counter)
    result = counter.apply(data)
    assert isinstance(result, CommandError)
    assert state(counter) == before


# ---- determinism -----------------------------------------------------------------------------

CALLS = st.one_of(
    st.integers(-5, 5).map(lambda n: encode_call(Counter.incr, n)),
    st.just(encode_call(Counter.reset)),
    st.just(encode_call(Counter.incr, "not a number")),
    st.integers(0, 9).map(lambda n: encode_call(Counter.half_then_fail, n)),
    st.just(encode_call(Counter.bad_result)),
    st.just(encode_call(Counter.leak)),
    st.binary(max_size=8),
)


@given(st.lists(CALLS, max_size=30), st.integers(0, 30))
def test_replicas_applying_one_log_agree_through_a_snapshot(log: list[bytes], cut: int) -> None:
    first, second = Counter(), Counter()
    results = [first.apply(data) for data in log]
    # The second replica catches up from a snapshot taken part way, then applies the rest.
    for data in log[:cut]:
        second.apply(data)
    late = Counter()
    late.restore(second.snapshot())
    assert late.state_digest() == second.state_digest()
    assert [late.apply(data) for data in log[cut:]] == results[cut:]
    assert late.snapshot() == first.snapshot()
    assert late.state_digest() == first.state_digest()


def test_state_digest_is_the_hash_of_the_snapshot() -> None:
    counter = Counter()
    counter.incr(2)
    digest = hashlib.sha256(counter.snapshot()).hexdigest()
    assert counter.state_digest() == digest


def test_recursion_and_memory_errors_are_not_recorded_as_results() -> None:
    @replicated
    class Deep:
        @command
        def recurse(self, n: int) -> int:
            return self.recurse(n + 1)

    with pytest.raises(RecursionError):
        Deep().apply(encode_call(Deep.recurse, 0))  # type: ignore[attr-defined]


# ---- snapshots -------------------------------------------------------------------------------


def test_restore_replaces_the_whole_state() -> None:
    counter = Counter()
    counter.incr(5)
    other = Counter()
    other.incr(1)
    other.extra = "gone after restore"  # type: ignore[attr-defined]
    other.restore(counter.snapshot())
    assert vars(other) == {"total": 5, "history": [5]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a Counter snapshot"),
        (b"\xc1", "not a Counter snapshot"),
        (_pack([1, 2, 3]), "header"),
        (_pack(["raft.replicated", 2, "Counter", {}]), "unsupported snapshot version 2"),
        (_pack(["raft.replicated", 1, "Other", {}]), "a snapshot of 'Other', not of Counter"),
        (_pack(["raft.replicated", 1, "Counter", [1]]), "must be a map of attributes"),
        (_pack(["raft.replicated", 1, "Counter", {"not a name": 1}]), "not an attribute name"),
        (_pack(["raft.replicated", 1, "Counter", {1: 1}]), "not an attribute name"),
    ],
)
def test_restore_refuses_what_is_not_a_snapshot_and_changes_nothing(
    data: bytes, message: str
) -> None:
    counter = Counter()
    counter.incr(5)
    before = state(counter)
    with pytest.raises(ValueError, match=message):
        counter.restore(data)
    assert state(counter) == before


@replicated
class Store(Replicated):
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    @command
    def put(self, key: str, value: Any) -> Any:
        previous = self.values.get(key)
        self.values[key] = value
        return previous


@given(st.lists(st.tuples(st.text(max_size=3), MSGPACK_VALUES), max_size=8))
def test_any_msgpack_state_survives_a_snapshot(puts: list[tuple[str, Any]]) -> None:
    store = Store()
    for key, value in puts:
        store.apply(encode_call(Store.put, key, value))
    copy = Store()
    copy.restore(store.snapshot())
    assert copy.values == store.values
    assert copy.snapshot() == store.snapshot()
    assert copy.state_digest() == store.state_digest()


def test_a_state_msgpack_cannot_encode_is_a_clear_error() -> None:
    counter = Counter()
    counter.history.append({1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Counter\['history'\]\[0\] is a set.*__getstate__"):
        counter.snapshot()


@replicated
class Members:
    """Keeps a set: converted to a sorted list for snapshots, and back."""

    def __init__(self) -> None:
        self.members: set[str] = set()

    @command
    def join(self, name: str) -> bool:
        if name in self.members:
            return False
        self.members.add(name)
        return True

    def __getstate__(self) -> object:
        return {"version": 1, "members": sorted(self.members)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["version"] != 1:
            raise ValueError(f"unknown state version {state['version']}")
        self.members = set(state["members"])


def test_getstate_and_setstate_are_used_and_validated() -> None:
    group = Members()
    for name in ("b", "a", "b"):
        group.apply(encode_call(Members.join, name))  # type: ignore[attr-defined]
    copy = Members()
    copy.restore(group.snapshot())  # type: ignore[attr-defined]
    assert copy.members == {"a", "b"}
    bad = _pack(["raft.replicated", 1, "Members", {"version": 2, "members": []}])
    with pytest.raises(ValueError, match="invalid Members snapshot: ValueError: unknown state"):
        copy.restore(bad)  # type: ignore[attr-defined]
    missing = _pack(["raft.replicated", 1, "Members", {}])
    with pytest.raises(ValueError, match="KeyError"):
        copy.restore(missing)  # type: ignore[attr-defined]
    assert copy.members == {"a", "b"}


@replicated(name="slotted.v1")
class Slotted(Replicated):
    __slots__ = ("count", "unset")
    count: int
    unset: int

    def __init__(self) -> None:
        self.count = 0

    @command(name="bump")
    def increment(self) -> int:
        self.count += 1
        return self.count


def test_slots_and_pinned_names() -> None:
    machine = Slotted()
    data = encode_call(Slotted.increment)
    assert msgpack.unpackb(data)[1] == "bump"
    assert machine.apply(data) == 1
    snapshot = machine.snapshot()
    assert msgpack.unpackb(snapshot) == ["raft.replicated", 1, "slotted.v1", {"count": 1}]
    other = Slotted()
    other.unset = 5
    other.restore(snapshot)
    assert other.count == 1 and not hasattr(other, "unset")


# ---- the decorators ------------------------------------------------------------------------


def test_subclasses_inherit_commands_and_add_their_own() -> None:
    class Plus(Counter):
        @command
        def double(self) -> int:
            self.total *= 2
            return self.total

    machine = Plus()
    machine.apply(encode_call(Counter.incr, 3))
    assert machine.apply(encode_call(Plus.double)) == 6
    assert Counter().apply(encode_call(Plus.double)).kind == "unknown_command"  # type: ignore[attr-defined]
    copy = Plus()
    copy.restore(machine.snapshot())
    assert copy.total == 6
    # Each class writes its own name into snapshots: a Plus snapshot is not a Counter's.
    with pytest.raises(ValueError, match=r"a snapshot of 'test_subclasses.*, not of Counter"):
        Counter().restore(machine.snapshot())


def test_a_state_digest_of_the_class_is_kept() -> None:
    @replicated
    class Own:
        def state_digest(self) -> str:
            return "mine"

    assert Own().state_digest() == "mine"


def _class_defining(name: str) -> type:
    return type("Bad", (), {name: lambda self: None})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: replicated(_class_defining("apply")), "defines apply"),
        (lambda: replicated(_class_defining("snapshot")), "defines snapshot"),
        (lambda: replicated(type("Args", (), {"__init__": lambda self, x: None})), "no arguments"),
        (lambda: replicated(lambda: None), "goes on a class"),  # type: ignore[call-overload]
        (lambda: replicated(name=""), "non-empty str"),
        (lambda: command(staticmethod(lambda: None)), "not a staticmethod"),
        (lambda: command(len), "goes on a method"),
        (lambda: command(name=3), "non-empty str"),  # type: ignore[call-overload]
    ],
)
def test_misuse_is_a_clear_type_error(make: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()


def test_async_commands_and_clashing_names_are_refused() -> None:
    async def later(self: object) -> None:
        pass

    with pytest.raises(TypeError, match="must be a plain function"):
        command(later)

    def first(self: object) -> None:
        pass

    def second(self: object) -> None:
        pass

    clash = type("Clash", (), {"a": command(name="x")(first), "b": command(name="x")(second)})
    with pytest.raises(TypeError, match="share the wire name 'x'"):
        replicated(clash)
    with pytest.raises(TypeError, match="twice"):
        query(first)

    def apply_like(self: object) -> None:
        pass

    apply_like.__name__ = "snapshot_"
    reserved = type("Reserved", (), {"state_digest": command(apply_like)})
    with pytest.raises(TypeError, match="cannot be a @command"):
        replicated(reserved)


# ---- under faults, in the simulator --------------------------------------------------------


class CheckCounterUnderFaults(ReplicatedStateMachineTest):
    """The harness on a `@replicated` class: valid calls, raising calls and junk bytes."""

    state_machine_factory = Counter
    commands = st.one_of(
        st.integers(-9, 9).map(lambda n: encode_call(Counter.incr, n)),
        st.integers(0, 3).map(lambda n: encode_call(Counter.half_then_fail, n)),
        st.just(encode_call(Counter.reset)),
        st.binary(max_size=6),
    )
    # Replicas compact every few entries, so some catch up by installing a snapshot.
    raft_options: ClassVar[Mapping[str, Any]] = {"snapshot_threshold_entries": 8}


TestCounterUnderFaults = CheckCounterUnderFaults.TestCase
TestCounterUnderFaults.settings = settings(
    TestCounterUnderFaults.settings, max_examples=30, stateful_step_count=20
)


def test_the_base_class_alone_is_not_enough() -> None:
    class Undecorated(Replicated):
        @command
        def noop(self) -> None:
            pass

    with pytest.raises(TypeError, match="Undecorated is not a @replicated class"):
        Undecorated().apply(encode_call(Undecorated.noop))
