"""KVStore snapshots (paper §7): restore(snapshot()) is the same store for every later command,
equal stores give identical bytes, and garbage is refused with a clear ValueError."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachines import KV_SNAPSHOT_VERSION, KVStore, encode_command, encode_put
from tests.statemachines.test_kv import commands

operations = st.lists(commands.map(encode_command), max_size=20)


def store_after(applied: list[bytes]) -> KVStore:
    store = KVStore()
    for command in applied:
        store.apply(command)
    return store


@given(operations, operations)
def test_a_restored_store_answers_every_later_command_like_the_original(
    before: list[bytes], after: list[bytes]
) -> None:
    original = store_after(before)
    restored = KVStore()
    restored.apply(encode_put("stale", 1))  # restore replaces whatever was there

    restored.restore(original.snapshot())

    assert restored.items() == original.items()
    assert restored.state_digest() == original.state_digest()
    for command in after:
        assert restored.apply(command) == original.apply(command)
    assert restored.snapshot() == original.snapshot()


@given(operations)
def test_snapshots_are_canonical_whatever_the_insertion_order(applied: list[bytes]) -> None:
    original = store_after(applied)
    reversed_store = KVStore()
    for key, value in reversed(original.items()):
        reversed_store.apply(encode_put(key, value))

    assert reversed_store.snapshot() == original.snapshot()


def test_a_snapshot_shares_no_value_with_the_store_it_was_restored_into() -> None:
    original = store_after([encode_put("k", [1, {"a": [2]}])])
    restored = KVStore()
    restored.restore(original.snapshot())
    restored.apply(encode_put("k", "changed"))
    assert original.get("k") == [1, {"a": [2]}]


def with_body(body: bytes, version: int = KV_SNAPSHOT_VERSION) -> bytes:
    return b"KVSNAP" + bytes([version]) + hashlib.sha256(body).digest() + body


GOOD = store_after([encode_put("x", 1)]).snapshot()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "missing the KVSNAP header"),
        (b"garbage that is long enough to be a header of a snapshot", "missing the KVSNAP"),
        (GOOD[:-1], "checksum mismatch"),
        (GOOD[:7] + bytes([GOOD[7] ^ 1]) + GOOD[8:], "checksum mismatch"),
        (with_body(b'{"x":1}', version=2), "unsupported KV snapshot version 2"),
        (with_body(b"[1]"), "must be a JSON object"),
        (with_body(b'{"x":null}'), "holds null"),
        (with_body(b'{"":1}'), "key must not be empty"),
        (with_body(b'{"x":1,"x":2}'), "duplicate key"),
        (with_body(b'{"x": 1}'), "not in canonical form"),
        (with_body(b'{"x":NaN}'), "NaN is not valid JSON"),
        (with_body(b"\xff"), "invalid KV snapshot"),
        (with_body(b'{"x":' + b"[" * 40 + b"]" * 40 + b"}"), "nest too deeply"),
    ],
)
def test_restoring_garbage_raises_value_error_and_changes_nothing(
    data: bytes, message: str
) -> None:
    store = store_after([encode_put("keep", "me")])

    with pytest.raises(ValueError, match=message):
        store.restore(data)
    assert store.items() == [("keep", "me")]


def test_restoring_text_instead_of_bytes_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected bytes"):
        KVStore().restore("KVSNAP")  # type: ignore[arg-type]
