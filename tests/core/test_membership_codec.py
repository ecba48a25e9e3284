"""The CONFIG entry codec: every membership survives a round trip, and any other bytes are
reported as corruption (`MembershipDecodeError`), never as some other exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raft import Membership, decode_membership
from raft.core._membership import MembershipDecodeError, encode_membership

deterministic = settings(derandomize=True, max_examples=300, deadline=None)


@st.composite
def memberships(draw: st.DrawFn) -> Membership:
    ids = draw(st.lists(st.integers(1, 2**63), min_size=1, max_size=12, unique=True))
    cut = draw(st.integers(1, len(ids)))
    rest = ids[cut:]
    split = draw(st.integers(0, len(rest)))
    return Membership(tuple(ids[:cut]), tuple(rest[:split]), tuple(rest[split:]))


@deterministic
@given(memberships())
def test_every_membership_round_trips(membership: Membership) -> None:
    assert decode_membership(encode_membership(membership)) == membership


@deterministic
@given(st.binary(max_size=64))
def test_other_bytes_are_corruption(data: bytes) -> None:
    try:
        membership = decode_membership(data)
    except MembershipDecodeError:
        return
    assert decode_membership(encode_membership(membership)) == membership


def test_an_unknown_version_is_named() -> None:
    data = b"\x02" + encode_membership(Membership((1,)))[1:]
    with pytest.raises(MembershipDecodeError, match="version 2"):
        decode_membership(data)
