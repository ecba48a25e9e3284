"""`Config` validation: a bad field raises `ValueError` naming the field and the allowed range."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raft import Config

# Derandomized: the same examples every run, so a failure replays exactly (STYLE 14).
deterministic = settings(derandomize=True, max_examples=500, deadline=None)

POSITIVE_INT_FIELDS = (
    "node_id",
    "election_ticks",
    "heartbeat_ticks",
    "max_entries_per_message",
    "max_bytes_per_message",
    "max_inflight_messages",
)
BOOL_FIELDS = ("pre_vote", "check_quorum", "auto_leave")


def config_with(**fields: Any) -> Config:
    """A valid three-voter config for node 1, with `fields` replaced."""
    arguments: dict[str, Any] = {"node_id": 1, "voters": (1, 2, 3), **fields}
    return Config(**arguments)


def test_defaults_are_valid() -> None:
    config = config_with()
    assert config.voters == (1, 2, 3)
    assert config.heartbeat_ticks < config.election_ticks
    assert config.pre_vote is True
    assert config.check_quorum is True


def test_voters_given_as_a_list_become_a_tuple() -> None:
    assert config_with(voters=[1, 2, 3]).voters == (1, 2, 3)


@pytest.mark.parametrize("field", POSITIVE_INT_FIELDS)
@pytest.mark.parametrize("value", [0, -1, -(10**20)], ids=["zero", "minus-one", "huge-negative"])
def test_non_positive_int_field_is_rejected_naming_field_and_range(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"Config\.{field} must be an integer >= 1, got {value}"):
        config_with(**{field: value})


@pytest.mark.parametrize("field", POSITIVE_INT_FIELDS)
@pytest.mark.parametrize(
    "value",
    [True, False, 1.0, "3", None, 2**0.5],
    ids=["True", "False", "float", "str", "None", "irrational"],
)
def test_non_int_field_is_rejected_naming_field(field: str, value: object) -> None:
    """A bool is an int to Python, but `election_ticks=True` is a bug, not a tick count."""
    with pytest.raises(ValueError, match=rf"Config\.{field} must be an integer >= 1"):
        config_with(**{field: value})


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("value", [1, 0, "yes", None], ids=["one", "zero", "str", "None"])
def test_non_bool_flag_is_rejected_naming_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"Config\.{field} must be True or False, got {value!r}"):
        config_with(**{field: value})


def test_node_id_must_be_one_of_the_voters() -> None:
    with pytest.raises(ValueError, match=r"Config\.node_id 4 must be one of Config\.voters"):
        config_with(node_id=4)


@pytest.mark.parametrize("voters", [(), []], ids=["empty-tuple", "empty-list"])
def test_empty_voters_make_a_joining_node(voters: object) -> None:
    """A node joining a running cluster starts with no membership (thesis §4.1): the leader's
    log will bring it; `node_id` need not be in the empty voters."""
    assert config_with(node_id=4, voters=voters).voters == ()


@pytest.mark.parametrize(
    "voters", [{1, 2, 3}, "123", 3, None, range(1, 4)], ids=["set", "str", "int", "None", "range"]
)
def test_voters_that_are_not_a_sequence_of_ids_are_rejected(voters: object) -> None:
    with pytest.raises(ValueError, match=r"Config\.voters must be a tuple of node ids"):
        config_with(voters=voters)


def test_duplicate_voters_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"Config\.voters: node ids must be unique"):
        config_with(voters=(1, 2, 2))


@pytest.mark.parametrize(
    "bad_id",
    [0, -3, True, 2.0, "2", None],
    ids=["zero", "negative", "bool", "float", "str", "None"],
)
def test_non_positive_int_voter_ids_are_rejected(bad_id: object) -> None:
    with pytest.raises(ValueError, match=r"Config\.voters: node ids must be integers >= 1"):
        config_with(voters=(1, bad_id, 3))


@pytest.mark.parametrize(
    ("election_ticks", "heartbeat_ticks"), [(1, 1), (5, 5), (3, 4)], ids=["1-1", "5-5", "3-4"]
)
def test_election_ticks_must_exceed_heartbeat_ticks(
    election_ticks: int, heartbeat_ticks: int
) -> None:
    """A leader must heartbeat more often than followers time out, or it is deposed while alive
    (§5.2: broadcastTime << electionTimeout)."""
    with pytest.raises(
        ValueError,
        match=rf"Config\.election_ticks \({election_ticks}\) must be greater than "
        rf"Config\.heartbeat_ticks \({heartbeat_ticks}\)",
    ):
        config_with(election_ticks=election_ticks, heartbeat_ticks=heartbeat_ticks)


def test_config_is_frozen() -> None:
    config = config_with()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.election_ticks = 1  # type: ignore[misc]


# ---- generated -----------------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),
)
any_int = st.one_of(st.integers(-3, 12), junk)
any_voters = st.one_of(
    st.lists(st.integers(-1, 6), max_size=5).map(tuple),
    st.lists(st.integers(1, 6), max_size=5),
    st.lists(any_int, max_size=4).map(tuple),
    st.sets(st.integers(1, 5), max_size=3),
    junk,
)
ANY_VALUE = {
    **dict.fromkeys(POSITIVE_INT_FIELDS, any_int),
    "voters": any_voters,
    **dict.fromkeys(BOOL_FIELDS, st.one_of(st.integers(0, 1), junk)),
}


@st.composite
def config_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A valid config's fields with a few of them (often none) replaced by anything at all."""
    voters = draw(st.lists(st.integers(1, 7), min_size=1, max_size=5, unique=True))
    election_ticks = draw(st.integers(2, 30))
    fields: dict[str, Any] = {
        "node_id": draw(st.sampled_from(voters)),
        "voters": tuple(voters),
        "election_ticks": election_ticks,
        "heartbeat_ticks": draw(st.integers(1, election_ticks - 1)),
        "max_entries_per_message": draw(st.integers(1, 10_000)),
        "max_bytes_per_message": draw(st.integers(1, 1 << 30)),
        "max_inflight_messages": draw(st.integers(1, 1000)),
        "pre_vote": draw(st.booleans()),
        "check_quorum": draw(st.booleans()),
    }
    for name in draw(st.lists(st.sampled_from(sorted(ANY_VALUE)), max_size=3, unique=True)):
        fields[name] = draw(ANY_VALUE[name])
    optional = sorted(set(fields) - {"node_id", "voters"})
    left_at_default = draw(st.lists(st.sampled_from(optional), unique=True))
    return {name: value for name, value in fields.items() if name not in left_at_default}


def is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def bad_fields(fields: dict[str, Any]) -> set[str]:
    """A naive model of the rules: the fields that are wrong, alone or together."""
    values = {field.name: field.default for field in attrs.fields(Config)} | fields
    bad = {name for name in POSITIVE_INT_FIELDS if not is_positive_int(values[name])}
    bad |= {name for name in BOOL_FIELDS if not isinstance(values[name], bool)}
    voters = values["voters"]
    if (
        not isinstance(voters, tuple | list)
        or not all(map(is_positive_int, voters))
        or len(set(voters)) != len(voters)
    ):
        bad.add("voters")
    if not bad and voters and values["node_id"] not in voters:
        bad |= {"node_id", "voters"}
    if not bad and values["heartbeat_ticks"] >= values["election_ticks"]:
        bad |= {"heartbeat_ticks", "election_ticks"}
    return bad


@deterministic
@given(config_fields())
def test_config_either_holds_its_invariants_or_names_the_bad_field(fields: dict[str, Any]) -> None:
    """Whatever a user passes, `Config` is valid or raises `ValueError` naming a wrong field."""
    expected_bad = bad_fields(fields)
    try:
        config = Config(**fields)
    except ValueError as error:
        named = set(re.findall(r"Config\.(\w+)", str(error)))
        assert named & expected_bad, f"{error!s} names none of the bad fields {expected_bad}"
        return
    assert not expected_bad, f"accepted a config with bad fields {expected_bad}: {fields}"
    for name in POSITIVE_INT_FIELDS:
        assert is_positive_int(getattr(config, name)), name
    for name in BOOL_FIELDS:
        assert isinstance(getattr(config, name), bool), name
    assert isinstance(config.voters, tuple)
    assert all(is_positive_int(voter) for voter in config.voters)
    assert len(set(config.voters)) == len(config.voters)
    # No voters at all is a joining node (it learns the membership from a leader).
    assert not config.voters or config.node_id in config.voters
    assert config.heartbeat_ticks < config.election_ticks
