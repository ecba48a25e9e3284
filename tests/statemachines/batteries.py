"""What every battery (counter, lock, ownership, queue) must do with bad bytes, shared by their
test modules: apply never raises and an error changes nothing; restore takes only its own
snapshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgpack
from hypothesis import strategies as st


class Battery(Protocol):
    def apply(self, command: bytes) -> Any: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...


# Anything msgpack can carry that a command might hold, well-formed or not.
fields = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=4)
    | st.binary(max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=2)
    ),
    max_leaves=6,
)


def msgpack_arrays(ops: list[str]) -> st.SearchStrategy[bytes]:
    """Version-1 commands holding arrays that start with a known op (or not) and any fields."""

    def encode(op: object, rest: list[object]) -> bytes:
        try:
            return b"\x01" + msgpack.packb([op, *rest], use_bin_type=True)
        except (OverflowError, ValueError, TypeError):
            return b"\x01\xc1"

    return st.builds(
        encode, st.sampled_from([*ops, "frob", 3, None]) | fields, st.lists(fields, max_size=6)
    )


def assert_applies_safely(machine: Battery, command: bytes) -> Any:
    """Apply `command`: never raises, and an error result changes nothing."""
    before = machine.snapshot()
    result = machine.apply(command)
    if result.error is not None:
        assert result.ok is False
        assert machine.snapshot() == before
    return result


def corrupted(data: st.DataObject, valid: bytes) -> bytes:
    """`valid` with one to three bytes overwritten."""
    encoded = bytearray(valid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
        encoded[position] = data.draw(st.integers(min_value=0, max_value=255))
    return bytes(encoded)


def assert_restore_refuses(factory: Callable[[], Battery], populated: Battery, data: bytes) -> None:
    """`restore(data)` either rebuilds a state that snapshots back to `data`, or raises
    `ValueError` and leaves the machine as it was."""
    before = populated.snapshot()
    try:
        populated.restore(data)
    except ValueError:
        assert populated.snapshot() == before
    else:
        assert populated.snapshot() == data
        fresh = factory()
        fresh.restore(data)
        assert fresh.snapshot() == data
