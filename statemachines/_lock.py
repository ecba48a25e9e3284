"""Named locks with leases and fencing tokens: the replicated `LockManager`.

A lock is granted to an owner for a lease; every grant carries a *fencing token* strictly greater
than every token granted before, by any lock of this manager. A lease keeps a crashed owner from
holding a lock forever, but a lease alone cannot keep two owners from acting at once: an owner
that stalls (a GC pause, a swapped-out process, a slow network) past its lease goes on believing
it holds the lock while another owner holds it. The token is the remedy: the owner passes it
with every request to the resource the lock protects, and the resource refuses a token lower than
the highest it has seen (see docs/batteries.md, "Why fencing").

Time. The state machine never reads a clock: every command carries ``now_ns``, the time the
proposer stamped on it (the leader's clock, in practice; see `lock_acquire`), and the manager's
time is the largest stamp applied so far, so a command stamped late by a slow proposer cannot move
time back. A lease expires when that time reaches its deadline. So every replica decides expiry
alike, in log order, whatever its own clock says.

Wire format, version 1 (see `statemachines._msgpack_codec`)::

    [b"\\x01"] ["acquire", name, owner, lease_ns, now_ns]
               ["renew",   name, token, lease_ns, now_ns]
               ["release", name, token, now_ns]
               ["holder",  name, now_ns]

``name`` and ``owner`` are non-empty strings (at most 1024 bytes of UTF-8), ``lease_ns`` a
positive and ``now_ns`` and ``token`` non-negative signed 64-bit integers.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import attrs

from statemachines._kv_codec import MalformedCommand
from statemachines._msgpack_codec import (
    decode_command,
    decode_snapshot,
    duration_field,
    encode_command,
    encode_snapshot,
    name_field,
    saturating_add,
    time_field,
)

LOCK_FORMAT_VERSION = 1
"""The format byte that starts every lock command this module writes."""

LOCK_SNAPSHOT_VERSION = 1
"""The version byte of the snapshots `LockManager.snapshot` writes."""

_MAGIC = b"LOCKSNAP"
_SCHEMAS = {
    "acquire": (
        ("name", name_field),
        ("owner", name_field),
        ("lease_ns", duration_field),
        ("now_ns", time_field),
    ),
    "renew": (
        ("name", name_field),
        ("token", time_field),
        ("lease_ns", duration_field),
        ("now_ns", time_field),
    ),
    "release": (("name", name_field), ("token", time_field), ("now_ns", time_field)),
    "holder": (("name", name_field), ("now_ns", time_field)),
}


def lock_acquire(name: str, owner: str, *, lease_ns: int, now_ns: int) -> bytes:
    """Acquire lock `name` for `owner` for `lease_ns`, stamped with time `now_ns`.

    Stamp `now_ns` where the command enters the log, from the leader's clock: the lease then
    runs from when the leader accepted the request. The owner itself must count its lease from
    *before* it sent the request, so that its own idea of the deadline is never later than the
    manager's. If `owner` already holds the lock, this renews it and answers the same token, so
    a retried acquire is harmless.
    """
    return encode_command(LOCK_FORMAT_VERSION, _SCHEMAS, "acquire", name, owner, lease_ns, now_ns)


def lock_renew(name: str, token: int, *, lease_ns: int, now_ns: int) -> bytes:
    """Extend the grant `token` of lock `name` to `lease_ns` after `now_ns`, if it still holds."""
    return encode_command(LOCK_FORMAT_VERSION, _SCHEMAS, "renew", name, token, lease_ns, now_ns)


def lock_release(name: str, token: int, *, now_ns: int) -> bytes:
    """Release the grant `token` of lock `name`, if it still holds."""
    return encode_command(LOCK_FORMAT_VERSION, _SCHEMAS, "release", name, token, now_ns)


def lock_holder(name: str, *, now_ns: int) -> bytes:
    """Ask, through the log, who holds lock `name` at `now_ns` (a linearizable read)."""
    return encode_command(LOCK_FORMAT_VERSION, _SCHEMAS, "holder", name, now_ns)


@attrs.frozen
class LockResult:
    """What one applied lock command gave its proposer.

    ===================  =====  =========================================================
    command              ok     token, owner, expires_ns
    ===================  =====  =========================================================
    acquire, granted     True   the grant (a new token, or the same one for its owner)
    acquire, held        False  token None; the holder and when its lease ends
    renew / release      True   the grant renewed or released
    stale renew/release  False  token None; the current holder, if any
    holder               True   the current grant, or all None when the lock is free
    malformed command    False  all None; `error` names the problem
    ===================  =====  =========================================================
    """

    ok: bool
    token: int | None = None
    owner: str | None = None
    expires_ns: int | None = None
    error: str | None = None


@attrs.frozen
class _Grant:
    owner: str
    token: int
    expires_ns: int


class LockManager:
    """Named leased locks with fencing tokens, changed only by `apply` and `restore`.

    Implements `raft.StateMachine`. Promises, in log order and at the manager's time (the
    largest ``now_ns`` applied): a lock has at most one holder whose lease has not expired; a
    grant's token is greater than every token granted before it; a renew or release naming a
    token that no longer holds is refused and changes nothing. Bytes that are not a valid
    command give a `LockResult` with an `error` and change nothing.
    """

    __slots__ = ("_grants", "_last_token", "_now")

    def __init__(self) -> None:
        """No locks held, no token granted, time zero."""
        self._grants: dict[str, _Grant] = {}
        self._last_token = 0
        self._now = 0

    def __repr__(self) -> str:
        return f"<LockManager: {len(self._grants)} grants, last token {self._last_token}>"

    @property
    def now_ns(self) -> int:
        """The manager's time: the largest ``now_ns`` any applied command carried."""
        return self._now

    @property
    def last_token(self) -> int:
        """The highest fencing token granted so far (0 before the first grant)."""
        return self._last_token

    def apply(self, command: bytes) -> LockResult:
        """Apply one committed command and return its result (see `LockResult`); never raises."""
        try:
            op, fields = _decode_shared(command)
        except MalformedCommand as error:
            return LockResult(ok=False, error=str(error))
        self._now = max(self._now, fields[-1])
        name = fields[0]
        grant = self._live(name)
        if op == "acquire":
            _, owner, lease_ns, _ = fields
            if grant is not None and grant.owner != owner:
                return LockResult(ok=False, owner=grant.owner, expires_ns=grant.expires_ns)
            if grant is None:
                self._last_token += 1
                token = self._last_token
            else:
                token = grant.token
            grant = self._grants[name] = _Grant(owner, token, saturating_add(self._now, lease_ns))
            return _granted(grant)
        if op == "holder":
            return LockResult(ok=True) if grant is None else _granted(grant)
        token = fields[1]
        if grant is None or grant.token != token:
            if grant is None:
                return LockResult(ok=False)
            return LockResult(ok=False, owner=grant.owner, expires_ns=grant.expires_ns)
        if op == "renew":
            grant = self._grants[name] = attrs.evolve(
                grant, expires_ns=saturating_add(self._now, fields[2])
            )
            return _granted(grant)
        del self._grants[name]
        return _granted(grant)

    def _live(self, name: str) -> _Grant | None:
        """The unexpired grant of `name`, forgetting an expired one."""
        grant = self._grants.get(name)
        if grant is not None and grant.expires_ns <= self._now:
            del self._grants[name]
            return None
        return grant

    def holder(self, name: str) -> LockResult:
        """Who holds `name` on this replica now, at the manager's time (a stale read if the
        replica lags; propose `lock_holder` for a linearizable one)."""
        grant = self._grants.get(name)
        if grant is None or grant.expires_ns <= self._now:
            return LockResult(ok=True)
        return _granted(grant)

    def snapshot(self) -> bytes:
        """The whole state as a canonical, checksummed snapshot: equal managers give
        identical bytes."""
        grants = [
            [name, grant.owner, grant.token, grant.expires_ns]
            for name, grant in sorted(self._grants.items())
        ]
        return encode_snapshot(_MAGIC, LOCK_SNAPSHOT_VERSION, [self._now, self._last_token, grants])

    def restore(self, data: bytes) -> None:
        """Replace the whole state with what `data` (from `snapshot`) holds; `ValueError`, and
        nothing changed, if it is not a valid lock snapshot."""
        state = decode_snapshot(data, _MAGIC, LOCK_SNAPSHOT_VERSION, "lock")
        try:
            now, last_token, rows = state
            now = time_field("time", now)
            last_token = time_field("last token", last_token)
            grants: dict[str, _Grant] = {}
            previous = ""
            for row in rows:
                name, owner, token, expires = row
                name = name_field("name", name)
                if name <= previous:
                    raise ValueError("locks out of order or repeated")
                previous = name
                token = time_field("token", token)
                if not 0 < token <= last_token:
                    raise ValueError(f"token {token} was never granted")
                owner = name_field("owner", owner)
                grants[name] = _Grant(owner, token, time_field("expiry", expires))
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid lock snapshot: {error}") from None
        self._grants, self._last_token, self._now = grants, last_token, now

    def state_digest(self) -> str:
        """A SHA-256 hex digest of the whole state, for comparing replicas."""
        return hashlib.sha256(self.snapshot()).hexdigest()


def _granted(grant: _Grant) -> LockResult:
    return LockResult(ok=True, token=grant.token, owner=grant.owner, expires_ns=grant.expires_ns)


@functools.lru_cache(maxsize=4096)
def _decode_shared(command: bytes) -> tuple[str, tuple[Any, ...]]:
    # Decoding is a pure function of the bytes: replicas in one process may share the work.
    return decode_command(command, LOCK_FORMAT_VERSION, _SCHEMAS)
