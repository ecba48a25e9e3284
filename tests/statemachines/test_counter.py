"""The counter: add, get, compare-and-set, the signed 64-bit range, bad bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raft import StateMachine
from statemachines import (
    COUNTER_FORMAT_VERSION,
    Counter,
    CounterResult,
    counter_add,
    counter_cas,
    counter_get,
)
from tests.statemachines.batteries import (
    assert_applies_safely,
    assert_restore_refuses,
    corrupted,
    msgpack_arrays,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def test_add_get_cas() -> None:
    counter: StateMachine = Counter()
    assert counter.apply(counter_get("hits")) == CounterResult(ok=True, value=0)
    assert counter.apply(counter_add("hits", 5)) == CounterResult(ok=True, value=5)
    assert counter.apply(counter_add("hits", -2)) == CounterResult(ok=True, value=3)
    assert counter.apply(counter_cas("hits", 4, 10)) == CounterResult(ok=False, value=3)
    assert counter.apply(counter_cas("hits", 3, 10)) == CounterResult(ok=True, value=3)
    assert counter.apply(counter_get("hits")) == CounterResult(ok=True, value=10)


def test_an_add_leaving_the_int64_range_is_refused_and_changes_nothing() -> None:
    counter = Counter()
    counter.apply(counter_add("n", 2**63 - 1))
    result = counter.apply(counter_add("n", 1))
    assert result.ok is False and result.value == 2**63 - 1 and result.error is not None
    assert counter.get("n") == 2**63 - 1


def test_a_counter_back_at_zero_is_absent_so_equal_states_snapshot_alike() -> None:
    counter = Counter()
    counter.apply(counter_add("n", 1))
    counter.apply(counter_add("n", -1))
    assert counter.items() == []
    assert counter.snapshot() == Counter().snapshot()


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"\x02\x92\xa3get\xa1n", "unsupported command version 2"),
        (
            bytes([COUNTER_FORMAT_VERSION]) + b"\x93\xa3add\xa1n\xc3",
            "delta must be an int, got bool",
        ),
        (bytes([COUNTER_FORMAT_VERSION]) + b"\x93\xa3add\xa1n\xcb" + bytes(8), "got float"),
        (bytes([COUNTER_FORMAT_VERSION]) + b"\x93\xa3add\xa1n\xcf" + b"\xff" * 8, "signed 64-bit"),
        (
            bytes([COUNTER_FORMAT_VERSION]) + b"\x92\xa3get\xc4\x01n",
            "name must be a str, got bytes",
        ),
    ],
)
def test_malformed_commands_give_errors(command: bytes, error: str) -> None:
    result = assert_applies_safely(Counter(), command)
    assert result.error is not None and error in result.error, result.error


def populated() -> Counter:
    counter = Counter()
    counter.apply(counter_add("a", 7))
    counter.apply(counter_add("b", -3))
    return counter


valid_commands = st.one_of(
    st.builds(counter_add, st.sampled_from("ab"), INT64),
    st.builds(counter_get, st.sampled_from("ab")),
    st.builds(counter_cas, st.sampled_from("ab"), INT64, INT64),
)


@given(st.binary() | st.binary().map(lambda body: bytes([COUNTER_FORMAT_VERSION]) + body))
def test_arbitrary_bytes_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(msgpack_arrays(["add", "get", "cas"]))
def test_arbitrary_msgpack_arrays_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(valid_commands, st.data())
def test_corrupted_valid_commands_never_raise_from_apply(
    command: bytes, data: st.DataObject
) -> None:
    assert_applies_safely(populated(), corrupted(data, command))


@given(st.binary())
def test_restore_takes_only_counter_snapshots(data: bytes) -> None:
    assert_restore_refuses(Counter, populated(), data)


@given(st.data())
def test_restore_refuses_corrupted_snapshots(data: st.DataObject) -> None:
    assert_restore_refuses(Counter, populated(), corrupted(data, populated().snapshot()))


class CounterMatchesDict(RuleBasedStateMachine):
    names = st.sampled_from(["a", "b"])
    deltas = st.integers(min_value=-5, max_value=5) | INT64

    @initialize()
    def start(self) -> None:
        self.counter = Counter()
        self.model: dict[str, int] = {}

    @rule(name=names, delta=deltas)
    def add(self, name: str, delta: int) -> None:
        current = self.model.get(name, 0)
        total = current + delta
        result = self.counter.apply(counter_add(name, delta))
        if -(2**63) <= total < 2**63:
            self.model[name] = total
            assert result == CounterResult(ok=True, value=total)
        else:
            assert not result.ok and result.value == current

    @rule(name=names)
    def get(self, name: str) -> None:
        assert self.counter.apply(counter_get(name)) == CounterResult(
            ok=True, value=self.model.get(name, 0)
        )

    @rule(name=names, data=st.data(), new=st.integers(-5, 5))
    def cas(self, name: str, data: st.DataObject, new: int) -> None:
        current = self.model.get(name, 0)
        expected = data.draw(st.sampled_from([current, current + 1]))
        result = self.counter.apply(counter_cas(name, expected, new))
        if expected == current:
            self.model[name] = new
        assert result == CounterResult(ok=expected == current, value=current)

    @invariant()
    def holds_what_the_model_holds(self) -> None:
        assert self.counter.items() == sorted((k, v) for k, v in self.model.items() if v)
        restored = Counter()
        restored.restore(self.counter.snapshot())
        assert restored.items() == self.counter.items()


TestCounterMatchesDict = CounterMatchesDict.TestCase
TestCounterMatchesDict.settings = settings(max_examples=100, stateful_step_count=30)
