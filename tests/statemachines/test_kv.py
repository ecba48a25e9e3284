"""The key-value store: its commands, its wire format, and what it does with bad bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raft import StateMachine
from statemachines import (
    KV_FORMAT_VERSION,
    KV_MAX_KEY_BYTES,
    KV_MAX_VALUE_DEPTH,
    JSONValue,
    KVCommand,
    KVCompareAndSet,
    KVDelete,
    KVGet,
    KVPut,
    KVResult,
    KVStore,
    MalformedCommand,
    decode_command,
    encode_cas,
    encode_command,
    encode_delete,
    encode_get,
    encode_put,
)

# --- builders and strategies -------------------------------------------------------------------


def wire(fields: object) -> bytes:
    """A version-1 command holding any JSON (valid as a command or not)."""
    return bytes([KV_FORMAT_VERSION]) + json.dumps(fields).encode("utf-8")


def nested_list(depth: int) -> JSONValue:
    """A value whose lists nest `depth` deep around the integer 0."""
    value: JSONValue = 0
    for _ in range(depth):
        value = [value]
    return value


def typed(value: object) -> object:
    """`value` with every scalar tagged by its type, so that `==` tells 1, 1.0 and True apart."""
    if isinstance(value, list | tuple):
        return (type(value).__name__, [typed(item) for item in value])
    if isinstance(value, KVResult):
        return ("KVResult", typed([value.ok, value.value, value.error]))
    if isinstance(value, dict):
        return ("dict", {name: typed(item) for name, item in value.items()})
    return (type(value).__name__, value)


def fields_of(command: KVCommand) -> list[object]:
    return [getattr(command, name) for name in command.__match_args__]


def same_value(left: object, right: object) -> bool:
    """Equality as the store defines it: same JSON value, types included."""
    return typed(left) == typed(right)


def store_with(*commands: bytes) -> KVStore:
    store = KVStore()
    for command in commands:
        store.apply(command)
    return store


# Characters that stress the codec: JSON syntax, escapes, controls, and UTF-8 of every length.
# A fixed alphabet also spares the first test Hypothesis's full-Unicode table, whose one-time
# construction is slow enough to fail its too_slow health check on a fresh machine.
characters = st.sampled_from('a Z0"\\[]{}:,\x00\x1f\n\x7fé€😀\u2028\ufeff')
keys = st.text(characters, min_size=1, max_size=8)
# Values that Python's == confuses and JSON does not, drawn often so that they meet.
confusable: st.SearchStrategy[JSONValue] = st.sampled_from(
    [0, 1, 1.0, True, False, 0.0, "1", [1], [True], {"a": 1}, {"a": True}]
)
scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(characters, max_size=8)
)
values: st.SearchStrategy[JSONValue] = confusable | st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(characters, max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
commands: st.SearchStrategy[KVCommand] = st.one_of(
    st.builds(KVGet, keys),
    st.builds(KVPut, keys, values),
    st.builds(KVDelete, keys),
    st.builds(KVCompareAndSet, keys, st.none() | values, values),
)


@pytest.fixture
def store() -> KVStore:
    return KVStore()


# --- commands ----------------------------------------------------------------------------------


def test_kv_store_implements_the_state_machine_protocol() -> None:
    state_machine: StateMachine = KVStore()
    assert isinstance(state_machine.apply(encode_get("k")), KVResult)


def test_get_of_absent_key_returns_none(store: KVStore) -> None:
    assert store.apply(encode_get("k")) == KVResult(ok=True, value=None)
    assert store.get("k") is None


def test_put_stores_value_and_returns_none_for_absent_key(store: KVStore) -> None:
    assert store.apply(encode_put("k", {"n": [1, 2.5, "x", False]})) == KVResult(ok=True)
    assert store.get("k") == {"n": [1, 2.5, "x", False]}


def test_put_returns_previous_value(store: KVStore) -> None:
    store.apply(encode_put("k", "old"))
    assert store.apply(encode_put("k", "new")) == KVResult(ok=True, value="old")
    assert store.get("k") == "new"


def test_get_through_log_returns_current_value(store: KVStore) -> None:
    store.apply(encode_put("k", [1, 2]))
    assert store.apply(encode_get("k")) == KVResult(ok=True, value=[1, 2])


def test_delete_removes_key_and_returns_its_value(store: KVStore) -> None:
    store.apply(encode_put("k", 7))
    assert store.apply(encode_delete("k")) == KVResult(ok=True, value=7)
    assert store.get("k") is None
    assert len(store) == 0


def test_delete_of_absent_key_succeeds_with_none(store: KVStore) -> None:
    assert store.apply(encode_delete("k")) == KVResult(ok=True, value=None)


def test_cas_sets_new_value_when_current_equals_expected(store: KVStore) -> None:
    store.apply(encode_put("k", {"a": [1]}))
    assert store.apply(encode_cas("k", {"a": [1]}, "next")) == KVResult(ok=True, value={"a": [1]})
    assert store.get("k") == "next"


def test_cas_expecting_none_sets_an_absent_key(store: KVStore) -> None:
    assert store.apply(encode_cas("k", None, 1)) == KVResult(ok=True, value=None)
    assert store.get("k") == 1


def test_cas_expecting_none_fails_on_a_present_key(store: KVStore) -> None:
    store.apply(encode_put("k", 1))
    assert store.apply(encode_cas("k", None, 2)) == KVResult(ok=False, value=1, error=None)
    assert store.get("k") == 1


def test_failed_cas_is_not_an_error_and_reports_current_value(store: KVStore) -> None:
    store.apply(encode_put("k", "current"))
    assert store.apply(encode_cas("k", "other", "new")) == KVResult(
        ok=False, value="current", error=None
    )
    assert store.get("k") == "current"


def test_cas_on_absent_key_fails_with_none(store: KVStore) -> None:
    assert store.apply(encode_cas("k", 1, 2)) == KVResult(ok=False, value=None, error=None)
    assert len(store) == 0


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(1, True), (True, 1), (1, 1.0), (1.0, 1), (0, False), ([1], [True]), ({"a": 1}, {"a": 1.0})],
)
def test_cas_tells_json_types_apart(store: KVStore, stored: JSONValue, expected: JSONValue) -> None:
    store.apply(encode_put("k", stored))
    result = store.apply(encode_cas("k", expected, "new"))
    assert not result.ok
    assert same_value(store.get("k"), stored)


def test_cas_compares_objects_regardless_of_key_order(store: KVStore) -> None:
    store.apply(encode_put("k", {"a": 1, "b": [2, {"c": 3}]}))
    assert store.apply(encode_cas("k", {"b": [2, {"c": 3}], "a": 1}, 0)).ok


def test_values_keep_their_json_type(store: KVStore) -> None:
    store.apply(encode_put("float", 1.0))
    store.apply(encode_put("bool", True))
    assert same_value(store.get("float"), 1.0)
    assert same_value(store.get("bool"), True)


def test_mutating_a_result_does_not_change_the_store(store: KVStore) -> None:
    store.apply(encode_put("k", {"list": [1]}))
    read = store.apply(encode_get("k")).value
    failed_cas = store.apply(encode_cas("k", "other", 0)).value
    local = store.get("k")
    listed = store.items()[0][1]
    for value in (read, failed_cas, local, listed):
        assert isinstance(value, dict)
        value["list"] = "changed"
    assert store.get("k") == {"list": [1]}


def test_items_are_sorted_by_key_and_len_counts_keys(store: KVStore) -> None:
    for key in ("b", "c", "a"):
        store.apply(encode_put(key, key.upper()))
    store.apply(encode_delete("c"))
    assert store.items() == [("a", "A"), ("b", "B")]
    assert len(store) == 2


def test_result_with_error_must_have_no_value_and_not_be_ok() -> None:
    with pytest.raises(ValueError, match="error"):
        KVResult(ok=True, error="boom")
    with pytest.raises(ValueError, match="error"):
        KVResult(ok=False, value=1, error="boom")


# --- malformed commands ------------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"", "empty command", id="empty"),
    pytest.param(b"\x00{}", "unsupported command version 0", id="version-0"),
    pytest.param(b"\x07{}", "unsupported command version 7", id="version-7"),
    pytest.param(b'{"op":"get","key":"k"}', "unsupported command version 123", id="no-version"),
    pytest.param(b"\x01\xff\xfe", "not valid UTF-8", id="invalid-utf8"),
    pytest.param(b'\x01{"op":"get","key":"\xed\xa0\x80"}', "not valid UTF-8", id="utf8-surrogate"),
    pytest.param(b"\x01", "malformed JSON", id="version-only"),
    pytest.param(b"\x01not json", "malformed JSON", id="not-json"),
    pytest.param(b'\x01{"op":"get","key":"k"', "malformed JSON", id="truncated"),
    pytest.param(b'\x01{"op":"get","key":"k"} {}', "malformed JSON", id="trailing-data"),
    pytest.param(b"\x01\xef\xbb\xbf{}", "malformed JSON", id="byte-order-mark"),
    pytest.param(wire([1]), "must be a JSON object, got list", id="array"),
    pytest.param(wire("get"), "must be a JSON object, got str", id="string"),
    pytest.param(wire(None), "must be a JSON object, got NoneType", id="null"),
    pytest.param(wire({"key": "k"}), "missing field 'op'", id="missing-op"),
    pytest.param(wire({"op": 1, "key": "k"}), "field 'op' must be a string", id="op-not-str"),
    pytest.param(wire({"op": "frob", "key": "k"}), "unknown op 'frob'", id="unknown-op"),
    pytest.param(wire({"op": "GET", "key": "k"}), "unknown op 'GET'", id="op-case"),
    pytest.param(wire({"op": "get"}), "missing field 'key'", id="get-missing-key"),
    pytest.param(wire({"op": "put", "key": "k"}), "missing field 'value'", id="put-no-value"),
    pytest.param(
        wire({"op": "cas", "key": "k", "new": 1}), "missing field 'expected'", id="cas-no-expected"
    ),
    pytest.param(
        wire({"op": "cas", "key": "k", "expected": 1}), "missing field 'new'", id="cas-no-new"
    ),
    pytest.param(
        wire({"op": "get", "key": "k", "value": 1}), "unexpected field 'value'", id="extra-field"
    ),
    pytest.param(
        b'\x01{"op":"get","key":"a","key":"b"}', "duplicate key 'key'", id="duplicate-field"
    ),
    pytest.param(
        b'\x01{"op":"put","key":"k","value":{"a":1,"a":2}}',
        "duplicate key 'a'",
        id="duplicate-key-in-value",
    ),
    pytest.param(wire({"op": "get", "key": 1}), "key must be a str, got int", id="key-int"),
    pytest.param(wire({"op": "get", "key": None}), "key must be a str", id="key-null"),
    pytest.param(wire({"op": "get", "key": ""}), "key must not be empty", id="key-empty"),
    pytest.param(
        wire({"op": "get", "key": "k" * (KV_MAX_KEY_BYTES + 1)}), "over the limit", id="key-long"
    ),
    pytest.param(wire({"op": "get", "key": "\ud800"}), "lone surrogate", id="key-surrogate"),
    pytest.param(
        wire({"op": "put", "key": "k", "value": None}), "value must not be None", id="put-null"
    ),
    pytest.param(
        wire({"op": "cas", "key": "k", "expected": 1, "new": None}),
        "new must not be None",
        id="cas-new-null",
    ),
    pytest.param(
        wire({"op": "put", "key": "k", "value": [1, None]}), "holds None", id="nested-null"
    ),
    pytest.param(
        wire({"op": "put", "key": "k", "value": {"s": "\udfff"}}),
        "lone surrogate",
        id="value-surrogate",
    ),
    pytest.param(b'\x01{"op":"put","key":"k","value":NaN}', "NaN is not valid JSON", id="nan"),
    pytest.param(
        b'\x01{"op":"put","key":"k","value":-Infinity}', "-Infinity is not valid", id="infinity"
    ),
    pytest.param(
        b'\x01{"op":"put","key":"k","value":1e999}', "too large for a float", id="float-overflow"
    ),
    pytest.param(
        wire({"op": "put", "key": "k", "value": 2**63}), "signed 64-bit range", id="int-2**63"
    ),
    pytest.param(
        wire({"op": "put", "key": "k", "value": -(2**63) - 1}), "64-bit", id="int-below-range"
    ),
    pytest.param(
        b'\x01{"op":"put","key":"k","value":' + b"9" * 10_000 + b"}",
        "signed 64-bit range",
        id="int-10000-digits",
    ),
    pytest.param(
        wire({"op": "put", "key": "k", "value": nested_list(KV_MAX_VALUE_DEPTH + 1)}),
        f"deeper than {KV_MAX_VALUE_DEPTH}",
        id="value-too-deep",
    ),
    pytest.param(b"\x01" + b"[" * 100_000, "deeper than", id="brackets-100000-deep"),
]


@pytest.mark.parametrize(("command", "message"), MALFORMED)
def test_malformed_command_gives_error_result_naming_the_problem(
    store: KVStore, command: bytes, message: str
) -> None:
    result = store.apply(command)
    assert not result.ok
    assert result.value is None
    assert result.error is not None
    assert message in result.error


@pytest.mark.parametrize(("command", "message"), MALFORMED)
def test_malformed_command_leaves_the_store_unchanged(command: bytes, message: str) -> None:
    store = store_with(encode_put("k", 1), encode_put("other", [2]))
    before = store.state_digest()
    store.apply(command)
    assert store.state_digest() == before


@pytest.mark.parametrize(("command", "message"), MALFORMED)
def test_decode_command_raises_malformed_command_naming_the_problem(
    command: bytes, message: str
) -> None:
    with pytest.raises(MalformedCommand) as raised:
        decode_command(command)
    assert message in str(raised.value)


def test_very_long_names_are_shortened_in_errors(store: KVStore) -> None:
    error = store.apply(wire({"op": "x" * 100_000, "key": "k"})).error
    assert error is not None
    assert len(error) < 200


def test_unterminated_string_after_many_brackets_is_rejected_as_malformed(
    store: KVStore,
) -> None:
    # Enough brackets to need the depth scan; escaped quotes with no closing quote once made
    # that scan quadratic in their number (minutes for this command).
    command = b"\x01" + b"[]," * 40 + b'"' + b'\\"' * 50_000
    result = store.apply(command)
    assert result.error is not None
    assert "malformed JSON" in result.error


# --- encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (encode_get("k"), b'\x01{"key":"k","op":"get"}'),
        (
            encode_put("k", {"b": 1, "a": [True, 1.5]}),
            b'\x01{"key":"k","op":"put","value":{"a":[true,1.5],"b":1}}',
        ),
        (encode_delete("k"), b'\x01{"key":"k","op":"delete"}'),
        (encode_cas("k", None, "v"), b'\x01{"expected":null,"key":"k","new":"v","op":"cas"}'),
        (encode_put("x", [1, "é"]), b'\x01{"key":"x","op":"put","value":[1,"\xc3\xa9"]}'),
    ],
)
def test_encoders_write_the_documented_canonical_bytes(command: bytes, expected: bytes) -> None:
    assert command == expected


@pytest.mark.parametrize(
    ("encoder", "arguments", "message"),
    [
        pytest.param(encode_get, (1,), "key must be a str, got int", id="key-int"),
        pytest.param(encode_get, (b"k",), "key must be a str, got bytes", id="key-bytes"),
        pytest.param(encode_get, ("",), "key must not be empty", id="key-empty"),
        pytest.param(encode_delete, ("é" * 513,), "1026 bytes", id="key-long-utf8"),
        pytest.param(encode_get, ("a\ud800",), "lone surrogate", id="key-surrogate"),
        pytest.param(encode_put, ("k", None), "value must not be None", id="value-none"),
        pytest.param(encode_cas, ("k", 1, None), "new must not be None", id="new-none"),
        pytest.param(encode_put, ("k", (1, 2)), "tuple", id="tuple"),
        pytest.param(encode_put, ("k", {1, 2}), "set", id="set"),
        pytest.param(encode_put, ("k", b"x"), "bytes", id="bytes"),
        pytest.param(encode_put, ("k", [1, None]), "holds None", id="nested-none"),
        pytest.param(encode_put, ("k", {1: "a"}), "dict key of type int", id="int-key"),
        pytest.param(encode_put, ("k", float("nan")), "non-finite", id="nan"),
        pytest.param(encode_cas, ("k", float("inf"), 1), "expected holds", id="inf"),
        pytest.param(encode_put, ("k", 2**63), "64-bit", id="int-too-big"),
        pytest.param(encode_put, ("k", 10**5000), "64-bit", id="int-5000-digits"),
        pytest.param(encode_put, ("k", ["\udc80"]), "lone surrogate", id="surrogate"),
        pytest.param(encode_put, ("k", {"\ud800": 1}), "lone surrogate", id="surrogate-key"),
        pytest.param(
            encode_put, ("k", nested_list(KV_MAX_VALUE_DEPTH + 1)), "deeper", id="too-deep"
        ),
    ],
)
def test_encoders_reject_invalid_input_with_value_error(
    encoder: Callable[..., bytes], arguments: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encoder(*arguments)


def test_encoders_reject_a_cyclic_value() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="deeper"):
        encode_put("k", cyclic)


def test_key_limit_counts_utf8_bytes(store: KVStore) -> None:
    longest = "é" * (KV_MAX_KEY_BYTES // 2)
    assert store.apply(encode_put(longest, 1)).ok
    with pytest.raises(ValueError, match="over the limit"):
        encode_put(longest + "a", 1)


def test_value_at_the_depth_limit_is_stored(store: KVStore) -> None:
    deepest = nested_list(KV_MAX_VALUE_DEPTH)
    assert store.apply(encode_put("k", deepest)).ok
    assert store.get("k") == deepest


def test_brackets_inside_strings_do_not_count_as_nesting(store: KVStore) -> None:
    text = '\\"' + "[{" * 100 + '"\\'
    assert store.apply(encode_put("k", [text, {"[": "{"}])).ok
    assert store.get("k") == [text, {"[": "{"}]


def test_decoder_accepts_noncanonical_json() -> None:
    command = b'\x01 { "value" : [ 1 , "\\u00e9" ] ,\n"op":"put", "key":"\\u006b" } '
    assert decode_command(command) == KVPut("k", [1, "é"])


@given(commands)
def test_decoding_an_encoded_command_gives_it_back(command: KVCommand) -> None:
    decoded = decode_command(encode_command(command))
    assert typed(fields_of(decoded)) == typed(fields_of(command))
    assert type(decoded) is type(command)


@given(commands)
def test_encoding_is_canonical(command: KVCommand) -> None:
    encoded = encode_command(command)
    assert encode_command(decode_command(encoded)) == encoded


@pytest.mark.parametrize(
    ("command", "encoder_bytes"),
    [
        (KVGet("k"), encode_get("k")),
        (KVPut("k", 1), encode_put("k", 1)),
        (KVDelete("k"), encode_delete("k")),
        (KVCompareAndSet("k", None, 1), encode_cas("k", None, 1)),
    ],
)
def test_encode_helpers_agree_with_encode_command(command: KVCommand, encoder_bytes: bytes) -> None:
    assert encode_command(command) == encoder_bytes


# --- determinism -------------------------------------------------------------------------------


@given(st.lists(commands, max_size=30))
def test_same_commands_give_same_results_and_digest_on_two_stores(
    sequence: list[KVCommand],
) -> None:
    encoded = [encode_command(command) for command in sequence]
    first, second = KVStore(), KVStore()
    first_results = [first.apply(command) for command in encoded]
    second_results = [second.apply(command) for command in encoded]
    assert typed(first_results) == typed(second_results)
    assert first.state_digest() == second.state_digest()
    assert typed(first.items()) == typed(second.items())


def test_digest_does_not_depend_on_insertion_order() -> None:
    forward = store_with(encode_put("a", 1), encode_put("b", {"x": 1, "y": 2}))
    backward = store_with(encode_put("b", {"y": 2, "x": 1}), encode_put("a", 1))
    assert forward.state_digest() == backward.state_digest()


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(store_with(), id="empty"),
        pytest.param(store_with(encode_put("a", 1.0)), id="float-not-int"),
        pytest.param(store_with(encode_put("a", True)), id="bool-not-int"),
        pytest.param(store_with(encode_put("a", "1")), id="str-not-int"),
        pytest.param(store_with(encode_put("b", 1)), id="other-key"),
        pytest.param(store_with(encode_put("a", 1), encode_put("b", 1)), id="extra-key"),
    ],
)
def test_digest_differs_between_different_states(other: KVStore) -> None:
    assert store_with(encode_put("a", 1)).state_digest() != other.state_digest()


# --- fuzzing -----------------------------------------------------------------------------------

FIELD_NAMES = ["op", "key", "value", "expected", "new", "extra"]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(characters, max_size=4)
    | st.sampled_from(["get", "put", "delete", "cas", "frob", ""]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(characters, max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
command_like = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=5)


def assert_applies_safely(command: bytes) -> None:
    """Apply `command` to a populated store: never raises, and errors change nothing."""
    store = store_with(encode_put("k", 1), encode_put("j", [2]))
    before = store.state_digest()
    result = store.apply(command)
    assert isinstance(result, KVResult)
    if result.error is not None:
        assert store.state_digest() == before
    try:
        decode_command(command)
    except MalformedCommand:
        assert result.error is not None
    else:
        assert result.error is None


@given(st.binary())
def test_arbitrary_bytes_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(command)


@given(st.binary())
def test_arbitrary_bytes_after_the_version_byte_never_raise_from_apply(body: bytes) -> None:
    assert_applies_safely(bytes([KV_FORMAT_VERSION]) + body)


@given(command_like)
def test_arbitrary_json_objects_never_raise_from_apply(fields: dict[str, Any]) -> None:
    assert_applies_safely(wire(fields))


@given(commands, st.data())
def test_corrupted_valid_commands_never_raise_from_apply(command: KVCommand, data: Any) -> None:
    encoded = bytearray(encode_command(command))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
        encoded[position] = data.draw(st.integers(min_value=0, max_value=255))
    assert_applies_safely(bytes(encoded))


# --- against a model ---------------------------------------------------------------------------


class KVStoreMatchesDict(RuleBasedStateMachine):
    """Random valid commands applied to a `KVStore` and to a plain dict give the same results."""

    # Two keys, so that commands keep meeting each other's values, and `values` is half
    # look-alikes, so that a cas often expects a value Python's == confuses with the current one.
    model_keys = st.sampled_from(["a", "b"])

    @initialize()
    def start(self) -> None:
        self.store = KVStore()
        self.model: dict[str, JSONValue] = {}

    def check(self, command: bytes, expected: KVResult) -> None:
        assert typed(self.store.apply(command)) == typed(expected)

    @rule(key=model_keys)
    def get(self, key: str) -> None:
        self.check(encode_get(key), KVResult(ok=True, value=self.model.get(key)))

    @rule(key=model_keys, value=values)
    def put(self, key: str, value: JSONValue) -> None:
        expected = KVResult(ok=True, value=self.model.get(key))
        self.model[key] = value
        self.check(encode_put(key, value), expected)

    @rule(key=model_keys)
    def delete(self, key: str) -> None:
        self.check(encode_delete(key), KVResult(ok=True, value=self.model.pop(key, None)))

    @rule(key=model_keys, expected=st.none() | values, new=values)
    def cas(self, key: str, expected: JSONValue | None, new: JSONValue) -> None:
        current = self.model.get(key)
        if same_value(current, expected):
            self.model[key] = new
            result = KVResult(ok=True, value=current)
        else:
            result = KVResult(ok=False, value=current)
        self.check(encode_cas(key, expected, new), result)

    @rule(key=model_keys, new=values)
    def cas_expecting_current_value(self, key: str, new: JSONValue) -> None:
        current = self.model.get(key)
        self.model[key] = new
        self.check(encode_cas(key, current, new), KVResult(ok=True, value=current))

    @invariant()
    def store_holds_what_the_model_holds(self) -> None:
        assert typed(self.store.items()) == typed(sorted(self.model.items()))
        assert len(self.store) == len(self.model)


TestKVStoreMatchesDict = KVStoreMatchesDict.TestCase
TestKVStoreMatchesDict.settings = settings(max_examples=200, stateful_step_count=30)
