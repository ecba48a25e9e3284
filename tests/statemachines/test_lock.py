"""The lock manager: leases decided by stamped log time, fencing tokens, bad bytes."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raft import StateMachine
from statemachines import (
    LOCK_FORMAT_VERSION,
    LockManager,
    LockResult,
    lock_acquire,
    lock_holder,
    lock_release,
    lock_renew,
)
from tests.statemachines.batteries import (
    assert_applies_safely,
    assert_restore_refuses,
    corrupted,
    msgpack_arrays,
)


def test_is_a_state_machine() -> None:
    machine: StateMachine = LockManager()
    assert machine.apply(lock_holder("x", now_ns=0)) == LockResult(ok=True)


def test_grants_carry_strictly_increasing_tokens_across_locks() -> None:
    manager = LockManager()
    first = manager.apply(lock_acquire("a", "alice", lease_ns=10, now_ns=0))
    second = manager.apply(lock_acquire("b", "bob", lease_ns=10, now_ns=0))
    assert first == LockResult(ok=True, token=1, owner="alice", expires_ns=10)
    assert second == LockResult(ok=True, token=2, owner="bob", expires_ns=10)
    assert manager.apply(lock_release("a", 1, now_ns=1)).ok
    assert manager.apply(lock_acquire("a", "alice", lease_ns=10, now_ns=2)).token == 3
    assert manager.last_token == 3


def test_a_held_lock_is_refused_to_others_until_its_lease_expires() -> None:
    manager = LockManager()
    manager.apply(lock_acquire("db", "alice", lease_ns=100, now_ns=1000))
    refused = manager.apply(lock_acquire("db", "bob", lease_ns=100, now_ns=1099))
    assert refused == LockResult(ok=False, owner="alice", expires_ns=1100)
    granted = manager.apply(lock_acquire("db", "bob", lease_ns=100, now_ns=1100))
    assert granted == LockResult(ok=True, token=2, owner="bob", expires_ns=1200)


def test_acquire_by_the_holder_renews_with_the_same_token() -> None:
    manager = LockManager()
    manager.apply(lock_acquire("db", "alice", lease_ns=100, now_ns=0))
    again = manager.apply(lock_acquire("db", "alice", lease_ns=100, now_ns=50))
    assert again == LockResult(ok=True, token=1, owner="alice", expires_ns=150)


def test_time_never_moves_back_so_a_late_stamp_cannot_revive_a_lease() -> None:
    manager = LockManager()
    manager.apply(lock_acquire("db", "alice", lease_ns=100, now_ns=0))
    manager.apply(lock_holder("other", now_ns=500))  # the log's time is now 500
    # A renew stamped by a slow proposer at 50 would still be in the lease by its own stamp.
    assert manager.apply(lock_renew("db", 1, lease_ns=100, now_ns=50)) == LockResult(ok=False)
    assert manager.now_ns == 500
    assert manager.apply(lock_acquire("db", "bob", lease_ns=100, now_ns=60)) == LockResult(
        ok=True, token=2, owner="bob", expires_ns=600
    )


def test_a_stale_token_cannot_renew_or_release_the_new_holder() -> None:
    manager = LockManager()
    manager.apply(lock_acquire("db", "alice", lease_ns=10, now_ns=0))
    manager.apply(lock_acquire("db", "bob", lease_ns=10, now_ns=20))
    current = LockResult(ok=False, owner="bob", expires_ns=30)
    assert manager.apply(lock_renew("db", 1, lease_ns=10, now_ns=21)) == current
    assert manager.apply(lock_release("db", 1, now_ns=21)) == current
    assert manager.apply(lock_holder("db", now_ns=21)) == LockResult(
        ok=True, token=2, owner="bob", expires_ns=30
    )


def test_release_frees_the_lock_and_renew_extends_it() -> None:
    manager = LockManager()
    manager.apply(lock_acquire("db", "alice", lease_ns=10, now_ns=0))
    assert manager.apply(lock_renew("db", 1, lease_ns=10, now_ns=9)).expires_ns == 19
    assert manager.apply(lock_release("db", 1, now_ns=18)).ok
    assert manager.apply(lock_holder("db", now_ns=18)) == LockResult(ok=True)
    assert manager.holder("db") == LockResult(ok=True)


def test_a_lease_reaching_past_int64_saturates() -> None:
    manager = LockManager()
    result = manager.apply(lock_acquire("db", "alice", lease_ns=2**63 - 1, now_ns=5))
    assert result.expires_ns == 2**63 - 1
    assert LockManager().apply(manager.snapshot()).error is not None  # a snapshot is no command
    restored = LockManager()
    restored.restore(manager.snapshot())
    assert restored.holder("db") == result


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"", "empty command"),
        (b"\x07\x91\xa3get", "unsupported command version 7"),
        (bytes([LOCK_FORMAT_VERSION]) + b"\x91\xa4frob", "unknown op 'frob'"),
        (lock_acquire("db", "a", lease_ns=1, now_ns=0)[:-1], "malformed msgpack"),
        (bytes([LOCK_FORMAT_VERSION]) + b"\x92\xa6holder\xa2db", "takes 2 fields"),
        (
            bytes([LOCK_FORMAT_VERSION]) + b"\x93\xa6holder\xa2db\xd1\x00\x01",
            "not in canonical msgpack form",
        ),
        (
            bytes([LOCK_FORMAT_VERSION]) + b"\x93\xa6holder\xa0\x00",
            "op 'holder': name must not be empty",
        ),
        (
            bytes([LOCK_FORMAT_VERSION]) + b"\x95\xa7acquire\xa2db\xa1a\x00\x00",
            "lease_ns must be positive",
        ),
        (
            bytes([LOCK_FORMAT_VERSION]) + b"\x93\xa6holder\xa2db\xff",
            "now_ns must not be negative",
        ),
    ],
)
def test_malformed_commands_give_errors(command: bytes, error: str) -> None:
    result = assert_applies_safely(LockManager(), command)
    assert result.error is not None and error in result.error, result.error


# --- fuzzing -----------------------------------------------------------------------------------


def populated() -> LockManager:
    manager = LockManager()
    manager.apply(lock_acquire("a", "alice", lease_ns=100, now_ns=10))
    manager.apply(lock_acquire("b", "bob", lease_ns=5, now_ns=10))
    return manager


OPS = ["acquire", "renew", "release", "holder"]
valid_commands = st.one_of(
    st.builds(
        lock_acquire,
        st.sampled_from("ab"),
        st.sampled_from(["alice", "bob"]),
        lease_ns=st.integers(1, 2**63 - 1),
        now_ns=st.integers(0, 2**63 - 1),
    ),
    st.builds(
        lock_renew,
        st.sampled_from("ab"),
        st.integers(0, 2**63 - 1),
        lease_ns=st.integers(1, 2**63 - 1),
        now_ns=st.integers(0, 2**63 - 1),
    ),
    st.builds(
        lock_release, st.sampled_from("ab"), st.integers(0, 9), now_ns=st.integers(0, 2**63 - 1)
    ),
    st.builds(lock_holder, st.sampled_from("ab"), now_ns=st.integers(0, 2**63 - 1)),
)


@given(st.binary() | st.binary().map(lambda body: bytes([LOCK_FORMAT_VERSION]) + body))
def test_arbitrary_bytes_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(msgpack_arrays(OPS))
def test_arbitrary_msgpack_arrays_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(valid_commands, st.data())
def test_corrupted_valid_commands_never_raise_from_apply(
    command: bytes, data: st.DataObject
) -> None:
    assert_applies_safely(populated(), corrupted(data, command))


@given(st.binary())
def test_restore_takes_only_lock_snapshots(data: bytes) -> None:
    assert_restore_refuses(LockManager, populated(), data)


@given(st.data())
def test_restore_refuses_corrupted_snapshots(data: st.DataObject) -> None:
    assert_restore_refuses(LockManager, populated(), corrupted(data, populated().snapshot()))


def test_restore_names_the_problem() -> None:
    snapshot = populated().snapshot()
    with pytest.raises(ValueError, match="checksum mismatch"):
        LockManager().restore(snapshot[:-1] + bytes([snapshot[-1] ^ 1]))
    with pytest.raises(ValueError, match="unsupported lock snapshot version 9"):
        LockManager().restore(b"LOCKSNAP\x09" + snapshot[9:])
    with pytest.raises(ValueError, match="missing the LOCKSNAP header"):
        LockManager().restore(b"KVSNAP")


# --- against a model ---------------------------------------------------------------------------


@attrs.define
class Grant:
    owner: str
    token: int
    expires: int


class LockManagerMatchesModel(RuleBasedStateMachine):
    """Random commands, stamped with times that mostly advance but sometimes lag, give the
    results a plain model gives; replaying the snapshot gives the same state."""

    names = st.sampled_from(["a", "b"])
    owners = st.sampled_from(["alice", "bob", "carol"])
    leases = st.integers(min_value=1, max_value=30)
    steps = st.integers(min_value=-20, max_value=20)

    @initialize()
    def start(self) -> None:
        self.manager = LockManager()
        self.grants: dict[str, Grant] = {}
        self.tokens = 0
        self.now = 0
        self.stamp = 0
        self.issued: list[int] = []

    def stamped(self, step: int) -> int:
        # Proposers' clocks advance but may lag each other: a stamp can be below the log's time.
        self.stamp = max(0, self.stamp + step)
        self.now = max(self.now, self.stamp)
        return self.stamp

    def live(self, name: str) -> Grant | None:
        grant = self.grants.get(name)
        return grant if grant is not None and grant.expires > self.now else None

    def check(self, command: bytes, expected: LockResult) -> None:
        assert self.manager.apply(command) == expected

    @rule(name=names, owner=owners, lease=leases, step=steps)
    def acquire(self, name: str, owner: str, lease: int, step: int) -> None:
        now = self.stamped(step)
        grant = self.live(name)
        if grant is not None and grant.owner != owner:
            expected = LockResult(ok=False, owner=grant.owner, expires_ns=grant.expires)
        else:
            if grant is None:
                self.tokens += 1
                self.issued.append(self.tokens)
                grant = Grant(owner, self.tokens, 0)
            grant.expires = self.now + lease
            self.grants[name] = grant
            expected = LockResult(ok=True, token=grant.token, owner=owner, expires_ns=grant.expires)
        self.check(lock_acquire(name, owner, lease_ns=lease, now_ns=now), expected)

    @rule(name=names, data=st.data(), lease=leases, step=steps)
    def renew(self, name: str, data: st.DataObject, lease: int, step: int) -> None:
        token = data.draw(st.sampled_from([0, *self.issued]))
        now = self.stamped(step)
        grant = self.live(name)
        if grant is None:
            expected = LockResult(ok=False)
        elif grant.token != token:
            expected = LockResult(ok=False, owner=grant.owner, expires_ns=grant.expires)
        else:
            grant.expires = self.now + lease
            expected = LockResult(ok=True, token=token, owner=grant.owner, expires_ns=grant.expires)
        self.check(lock_renew(name, token, lease_ns=lease, now_ns=now), expected)

    @rule(name=names, data=st.data(), step=steps)
    def release(self, name: str, data: st.DataObject, step: int) -> None:
        token = data.draw(st.sampled_from([0, *self.issued]))
        now = self.stamped(step)
        grant = self.live(name)
        if grant is None:
            expected = LockResult(ok=False)
        elif grant.token != token:
            expected = LockResult(ok=False, owner=grant.owner, expires_ns=grant.expires)
        else:
            del self.grants[name]
            expected = LockResult(ok=True, token=token, owner=grant.owner, expires_ns=grant.expires)
        self.check(lock_release(name, token, now_ns=now), expected)

    @rule(name=names, step=steps)
    def holder(self, name: str, step: int) -> None:
        now = self.stamped(step)
        grant = self.live(name)
        expected = (
            LockResult(ok=True)
            if grant is None
            else LockResult(ok=True, token=grant.token, owner=grant.owner, expires_ns=grant.expires)
        )
        self.check(lock_holder(name, now_ns=now), expected)

    @invariant()
    def snapshot_round_trips(self) -> None:
        restored = LockManager()
        restored.restore(self.manager.snapshot())
        assert restored.snapshot() == self.manager.snapshot()
        assert restored.now_ns == self.manager.now_ns == self.now
        assert restored.last_token == self.tokens
        for name in "ab":
            assert restored.holder(name) == self.manager.holder(name)

    @invariant()
    def tokens_were_issued_in_increasing_order(self) -> None:
        assert self.issued == sorted(set(self.issued))


TestLockManagerMatchesModel = LockManagerMatchesModel.TestCase
TestLockManagerMatchesModel.settings = settings(max_examples=200, stateful_step_count=30)
