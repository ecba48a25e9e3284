"""The wire format: every message survives a round trip, and nothing a peer can send makes
decoding raise anything but FrameError."""

from __future__ import annotations

import contextlib
import typing
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from raft.core import AppendEntries, Entry, EntryKind, Heartbeat, Message, VoteRequest
from raft.runtime import (
    PROTOCOL_VERSION,
    FrameError,
    FrameReader,
    decode_message,
    encode_message,
    encode_preamble,
    frame,
)
from raft.runtime._codec import _MESSAGE_TYPES, _Shape

CLUSTER = "test-cluster"
naturals = st.integers(min_value=0, max_value=2**64 - 1)
entries = st.builds(
    Entry, naturals, naturals, st.binary(max_size=32), st.sampled_from([k.value for k in EntryKind])
)


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a message field's annotated type (the codec's own rules, mirrored)."""
    simple: dict[Any, st.SearchStrategy[Any]] = {
        int: naturals,
        bool: st.booleans(),
        bytes: st.binary(max_size=64),
        int | None: st.none() | naturals,
        tuple[int, ...]: st.lists(st.integers(1, 9), max_size=5, unique=True).map(tuple),
        tuple[Entry, ...]: st.lists(entries, max_size=8).map(tuple),
    }
    if hint in simple:
        return simple[hint]
    assert attrs.has(hint), f"no strategy for {hint!r}: add one here"
    return _instances(hint)


def _instances(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of an attrs class, field by field; those its validators refuse are skipped."""
    hints = typing.get_type_hints(cls)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        values = {f.name: draw(_strategy(hints[f.name])) for f in attrs.fields(cls)}
        try:
            return cls(**values)
        except ValueError:
            reject()

    return build()


messages = st.one_of([_instances(cls) for _, cls in _MESSAGE_TYPES])


def _stream(batch: list[Message], cluster: str = CLUSTER) -> bytes:
    return encode_preamble(cluster) + b"".join(frame(encode_message(m)) for m in batch)


def _read_all(data: bytes, cluster: str = CLUSTER, max_frame_size: int = 1 << 20) -> list[Any]:
    reader = FrameReader(cluster, max_frame_size)
    reader.feed(data)
    out = []
    while (body := reader.next_body()) is not None:
        out.append(decode_message(body))
    return out


def test_every_message_type_has_exactly_one_code() -> None:
    registered = [cls for _, cls in _MESSAGE_TYPES]
    codes = [code for code, _ in _MESSAGE_TYPES]
    assert set(registered) == set(typing.get_args(Message))
    assert len(set(registered)) == len(registered)
    assert len(set(codes)) == len(codes)


@given(messages)
def test_every_message_survives_a_round_trip(message: Message) -> None:
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert type(decoded) is type(message)


@given(st.lists(messages, max_size=10), st.lists(st.integers(1, 50), max_size=20))
def test_a_stream_splits_into_its_messages_however_it_arrives(
    batch: list[Message], cuts: list[int]
) -> None:
    data = _stream(batch)
    reader = FrameReader(CLUSTER)
    out = []
    position = 0
    for size in [*cuts, len(data)]:
        reader.feed(data[position : position + size])
        position += size
        while (body := reader.next_body()) is not None:
            out.append(decode_message(body))
    assert out == batch


def test_the_wire_format_is_pinned() -> None:
    """Changing a message's fields changes the wire format: bump PROTOCOL_VERSION with it."""
    append = AppendEntries(2, 1, 3, 4, 1, (Entry(2, 5, b"x"),), 4)
    assert encode_message(append) == bytes.fromhex("9903020103040191940205c401780004c2")
    fields = [3, 2, 1, 3, 4, 1, [[2, 5, b"x", 0]], 4, False]
    assert msgpack.unpackb(encode_message(append)) == fields
    vote = VoteRequest(7, 1, 2, 10, 6, pre_vote=True)
    assert msgpack.unpackb(encode_message(vote)) == [1, 7, 1, 2, 10, 6, True, False]
    assert encode_preamble("c") == b"TRFT" + bytes([PROTOCOL_VERSION, 1]) + b"c"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "non-empty array"),
        ({"a": 1}, "non-empty array"),
        ([99, 1, 2, 3], "unknown message type code"),
        (["3"], "unknown message type code"),
        ([True, 1, 2, 3, 4, 5, False, False], "unknown message type code"),
        ([9, 1, 2], "needs an array of 3 fields"),
        ([9, 1, 2, 3, 4], "needs an array of 3 fields"),
        ([9, -1, 2, 3], "non-negative integer"),
        ([9, True, 2, 3], "non-negative integer"),
        ([9, 1.0, 2, 3], "non-negative integer"),
        ([2, 1, 2, 3, 1, False], "boolean"),
        ([7, 1, 2, 3, "text"], "bytes"),
        ([3, 1, 2, 3, 4, 5, [[1, 2, b"", 99]], 0, False], "unknown entry kind"),
        ([3, 1, 2, 3, 4, 5, [[1, 2, b""]], 0, False], "each entry must be an array"),
        ([3, 1, 2, 3, 4, 5, [[1, 2, b"", 0], 5], 0, False], "each entry must be an array"),
        ([3, 1, 2, 3, 4, 5, [[1, -2, b"", 0]], 0, False], "non-negative integers"),
        ([3, 1, 2, 3, 4, 5, [[1, 2, b"", True]], 0, False], "unknown entry kind"),
        ([3, 1, 2, 3, 4, 5, 7, 0, False], "expected an array"),
        ([3, 1, 2, 3, 4, 5, [[1, 2, "s", 0]], 0, False], "bytes"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(values: Any, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode_message(msgpack.packb(values, use_bin_type=True))


def test_trailing_bytes_and_bad_msgpack_are_refused() -> None:
    body = encode_message(Heartbeat(1, 1, 2, 0))
    with pytest.raises(FrameError, match="not valid msgpack"):
        decode_message(body + b"\x00")
    with pytest.raises(FrameError, match="not valid msgpack"):
        decode_message(body[:-1])
    with pytest.raises(FrameError, match="not valid msgpack"):
        decode_message(b"\xc1")


def test_the_stream_header_and_lengths_are_checked() -> None:
    good = _stream([Heartbeat(1, 1, 2, 0)])
    with pytest.raises(FrameError, match="another cluster"):
        _read_all(good, cluster="other-cluster")
    with pytest.raises(FrameError, match="bad magic"):
        _read_all(b"GET / HTTP/1.1\r\n")
    with pytest.raises(FrameError, match="protocol version"):
        _read_all(b"TRFT" + bytes([PROTOCOL_VERSION + 1]) + good[5:])
    oversized = encode_preamble(CLUSTER) + ((1 << 20) + 1).to_bytes(4, "big")
    with pytest.raises(FrameError, match="is outside 1"):
        _read_all(oversized)
    with pytest.raises(FrameError, match="is outside 1"):
        _read_all(encode_preamble(CLUSTER) + bytes(4))
    with pytest.raises(FrameError, match="is outside 1"):
        frame(b"x" * 11, max_frame_size=10)


def test_a_message_that_is_not_one_is_a_local_type_error() -> None:
    with pytest.raises(TypeError, match="not a Raft message"):
        encode_message("hello")  # type: ignore[arg-type]


def _only_frame_errors(data: bytes, cluster: str = CLUSTER) -> None:
    try:
        for message in _read_all(data, cluster):
            assert type(message) in typing.get_args(Message)
    except FrameError as error:
        assert error.reason


@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_frame_error(data: bytes) -> None:
    _only_frame_errors(data)
    _only_frame_errors(encode_preamble(CLUSTER) + data)
    with contextlib.suppress(FrameError):
        decode_message(data)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(0),
        st.binary(min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=4,
)


@given(st.lists(messages, min_size=1, max_size=4), mutations)
def test_mutated_valid_frames_only_ever_raise_frame_error(
    batch: list[Message], edits: list[tuple[str, int, bytes]]
) -> None:
    data = bytearray(_stream(batch))
    for kind, position, chunk in edits:
        at = position % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] ^= chunk[0]
        elif kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            del data[at:]
    _only_frame_errors(bytes(data))


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.binary(max_size=8)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(messages, st.data())
def test_a_message_with_any_field_replaced_decodes_to_a_valid_message_or_frame_error(
    message: Message, data: st.DataObject
) -> None:
    values = list(msgpack.unpackb(encode_message(message)))
    index = data.draw(st.integers(0, len(values) - 1))
    values[index] = data.draw(msgpack_values)
    try:
        decoded = decode_message(msgpack.packb(values, use_bin_type=True))
    except FrameError:
        return
    assert decode_message(encode_message(decoded)) == decoded


@given(st.lists(entries, min_size=1, max_size=4), st.data())
def test_an_entry_with_any_part_replaced_decodes_or_raises_frame_error(
    batch: list[Entry], data: st.DataObject
) -> None:
    values = [list(entry) for entry in batch]
    which = data.draw(st.integers(0, len(values) - 1))
    values[which][data.draw(st.integers(0, 3))] = data.draw(msgpack_values)
    body = msgpack.packb([3, 1, 1, 2, 0, 0, values, 0], use_bin_type=True)
    try:
        decoded = decode_message(body)
    except FrameError:
        return
    assert decode_message(encode_message(decoded)) == decoded


def _as_tuple(value: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class _Members:
    voters: tuple[int, ...] = attrs.field(converter=_as_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.voters:
            raise ValueError("no voters")


@attrs.frozen
class _FutureMessage:
    """The shapes the snapshot and membership messages will bring: nested classes, id tuples,
    optional ints."""

    term: int
    members: _Members
    vote: int | None


def test_nested_classes_id_tuples_and_optional_ints_have_rules_ready() -> None:
    shape = _Shape.of(_FutureMessage)
    message = _FutureMessage(3, _Members((1, 2)), None)
    wire = msgpack.unpackb(msgpack.packb(shape.encode(message)), use_list=False)
    assert shape.decode(wire) == message
    with pytest.raises(FrameError, match="invalid _Members: no voters"):
        shape.decode((3, ((),), 1))
    with pytest.raises(FrameError, match="non-negative"):
        shape.decode((3, ((1, -2),), None))
    with pytest.raises(FrameError, match="_Members needs an array of 1"):
        shape.decode((3, 5, None))


def test_a_field_type_without_a_rule_is_an_error_at_import_time() -> None:
    @attrs.frozen
    class Odd:
        ratio: float

    with pytest.raises(TypeError, match=r"no rule for Odd.ratio"):
        _Shape.of(Odd)
