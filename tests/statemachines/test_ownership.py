"""Ownership elections: one owner per election with a lease, terms that only grow, bad bytes."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raft import StateMachine
from statemachines import (
    OWNERSHIP_FORMAT_VERSION,
    Ownership,
    OwnershipResult,
    ownership_campaign,
    ownership_keepalive,
    ownership_observe,
    ownership_resign,
)
from tests.statemachines.batteries import (
    assert_applies_safely,
    assert_restore_refuses,
    corrupted,
    msgpack_arrays,
)


def test_campaign_observe_keepalive_resign() -> None:
    elections: StateMachine = Ownership()
    won = elections.apply(ownership_campaign("sched", "a", b"10.0.0.1", lease_ns=100, now_ns=0))
    assert won == OwnershipResult(ok=True, owner="a", value=b"10.0.0.1", term=1, expires_ns=100)
    lost = elections.apply(ownership_campaign("sched", "b", b"10.0.0.2", lease_ns=100, now_ns=50))
    assert lost == attrs.evolve(won, ok=False)
    assert elections.apply(ownership_observe("sched", now_ns=60)) == won
    kept = elections.apply(ownership_keepalive("sched", 1, lease_ns=100, now_ns=90))
    assert kept == attrs.evolve(won, expires_ns=190)
    assert elections.apply(ownership_resign("sched", 1, now_ns=95)) == kept
    assert elections.apply(ownership_observe("sched", now_ns=96)) == OwnershipResult(ok=True)
    after = elections.apply(ownership_campaign("sched", "b", b"10.0.0.2", lease_ns=100, now_ns=97))
    assert after.ok and after.owner == "b" and after.term == 2


def test_an_owner_that_stops_keeping_alive_loses_to_the_next_campaign() -> None:
    elections = Ownership()
    elections.apply(ownership_campaign("sched", "a", lease_ns=100, now_ns=0))
    won = elections.apply(ownership_campaign("sched", "b", lease_ns=100, now_ns=100))
    assert won == OwnershipResult(ok=True, owner="b", value=b"", term=2, expires_ns=200)
    stale = elections.apply(ownership_keepalive("sched", 1, lease_ns=100, now_ns=101))
    assert stale == attrs.evolve(won, ok=False)
    assert elections.apply(ownership_resign("sched", 1, now_ns=101)) == attrs.evolve(won, ok=False)


def test_the_owner_campaigning_again_keeps_its_term_and_proclaims_a_new_value() -> None:
    elections = Ownership()
    elections.apply(ownership_campaign("e", "a", b"v1", lease_ns=10, now_ns=0))
    again = elections.apply(ownership_campaign("e", "a", b"v2", lease_ns=10, now_ns=5))
    assert again == OwnershipResult(ok=True, owner="a", value=b"v2", term=1, expires_ns=15)
    assert elections.observe("e") == again


def test_terms_grow_across_elections() -> None:
    elections = Ownership()
    assert elections.apply(ownership_campaign("x", "a", lease_ns=10, now_ns=0)).term == 1
    assert elections.apply(ownership_campaign("y", "a", lease_ns=10, now_ns=0)).term == 2


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"\x00", "unsupported command version 0"),
        (bytes([OWNERSHIP_FORMAT_VERSION]) + b"\x91\xa8campaign", "takes 5 fields"),
        (bytes([OWNERSHIP_FORMAT_VERSION]) + b"\x93\xa7observe\xa1e\xc0", "now_ns must be an int"),
    ],
)
def test_malformed_commands_give_errors(command: bytes, error: str) -> None:
    result = assert_applies_safely(Ownership(), command)
    assert result.error is not None and error in result.error, result.error


def populated() -> Ownership:
    elections = Ownership()
    elections.apply(ownership_campaign("a", "x", b"addr", lease_ns=100, now_ns=0))
    elections.apply(ownership_campaign("b", "y", lease_ns=100, now_ns=0))
    return elections


TIMES = st.integers(0, 2**63 - 1)
LEASES = st.integers(1, 2**63 - 1)
valid_commands = st.one_of(
    st.builds(
        ownership_campaign,
        st.sampled_from("ab"),
        st.just("x"),
        st.binary(max_size=3),
        lease_ns=LEASES,
        now_ns=TIMES,
    ),
    st.builds(
        ownership_keepalive, st.sampled_from("ab"), st.integers(0, 5), lease_ns=LEASES, now_ns=TIMES
    ),
    st.builds(ownership_resign, st.sampled_from("ab"), st.integers(0, 5), now_ns=TIMES),
    st.builds(ownership_observe, st.sampled_from("ab"), now_ns=TIMES),
)


@given(st.binary() | st.binary().map(lambda body: bytes([OWNERSHIP_FORMAT_VERSION]) + body))
def test_arbitrary_bytes_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(msgpack_arrays(["campaign", "keepalive", "resign", "observe"]))
def test_arbitrary_msgpack_arrays_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(valid_commands, st.data())
def test_corrupted_valid_commands_never_raise_from_apply(
    command: bytes, data: st.DataObject
) -> None:
    assert_applies_safely(populated(), corrupted(data, command))


@given(st.binary())
def test_restore_takes_only_ownership_snapshots(data: bytes) -> None:
    assert_restore_refuses(Ownership, populated(), data)


@given(st.data())
def test_restore_refuses_corrupted_snapshots(data: st.DataObject) -> None:
    assert_restore_refuses(Ownership, populated(), corrupted(data, populated().snapshot()))


@attrs.define
class Owner:
    name: str
    value: bytes
    term: int
    expires: int

    def result(self, *, ok: bool) -> OwnershipResult:
        return OwnershipResult(
            ok=ok, owner=self.name, value=self.value, term=self.term, expires_ns=self.expires
        )


class OwnershipMatchesModel(RuleBasedStateMachine):
    elections = st.sampled_from(["a", "b"])
    candidates = st.sampled_from(["x", "y", "z"])
    leases = st.integers(1, 30)
    steps = st.integers(-20, 20)

    @initialize()
    def start(self) -> None:
        self.machine = Ownership()
        self.owners: dict[str, Owner] = {}
        self.terms = 0
        self.stamp = 0
        self.now = 0

    def stamped(self, step: int) -> int:
        self.stamp = max(0, self.stamp + step)
        self.now = max(self.now, self.stamp)
        return self.stamp

    def live(self, election: str) -> Owner | None:
        owner = self.owners.get(election)
        return owner if owner is not None and owner.expires > self.now else None

    @rule(
        election=elections,
        candidate=candidates,
        value=st.binary(max_size=2),
        lease=leases,
        step=steps,
    )
    def campaign(self, election: str, candidate: str, value: bytes, lease: int, step: int) -> None:
        now = self.stamped(step)
        owner = self.live(election)
        if owner is not None and owner.name != candidate:
            expected = owner.result(ok=False)
        else:
            if owner is None:
                self.terms += 1
                owner = Owner(candidate, value, self.terms, 0)
            owner.value, owner.expires = value, self.now + lease
            self.owners[election] = owner
            expected = owner.result(ok=True)
        command = ownership_campaign(election, candidate, value, lease_ns=lease, now_ns=now)
        assert self.machine.apply(command) == expected

    @rule(election=elections, term=st.integers(0, 6), lease=leases, step=steps)
    def keepalive(self, election: str, term: int, lease: int, step: int) -> None:
        now = self.stamped(step)
        owner = self.live(election)
        if owner is None:
            expected = OwnershipResult(ok=False)
        elif owner.term != term:
            expected = owner.result(ok=False)
        else:
            owner.expires = self.now + lease
            expected = owner.result(ok=True)
        command = ownership_keepalive(election, term, lease_ns=lease, now_ns=now)
        assert self.machine.apply(command) == expected

    @rule(election=elections, term=st.integers(0, 6), step=steps)
    def resign(self, election: str, term: int, step: int) -> None:
        now = self.stamped(step)
        owner = self.live(election)
        if owner is None:
            expected = OwnershipResult(ok=False)
        elif owner.term != term:
            expected = owner.result(ok=False)
        else:
            del self.owners[election]
            expected = owner.result(ok=True)
        assert self.machine.apply(ownership_resign(election, term, now_ns=now)) == expected

    @rule(election=elections, step=steps)
    def observe(self, election: str, step: int) -> None:
        now = self.stamped(step)
        owner = self.live(election)
        expected = OwnershipResult(ok=True) if owner is None else owner.result(ok=True)
        assert self.machine.apply(ownership_observe(election, now_ns=now)) == expected

    @invariant()
    def snapshot_round_trips(self) -> None:
        restored = Ownership()
        restored.restore(self.machine.snapshot())
        assert restored.snapshot() == self.machine.snapshot()
        for election in "ab":
            owner = self.live(election)
            expected = OwnershipResult(ok=True) if owner is None else owner.result(ok=True)
            assert restored.observe(election) == self.machine.observe(election) == expected


TestOwnershipMatchesModel = OwnershipMatchesModel.TestCase
TestOwnershipMatchesModel.settings = settings(max_examples=200, stateful_step_count=30)
