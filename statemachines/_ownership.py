"""Leader election for services, after etcd's election recipe: the replicated `Ownership`.

Not Raft's own election: this elects one *owner* among the workers of a service that needs
exactly one active at a time (a scheduler, a singleton consumer). A candidate campaigns for a
named election; if no one owns it, it becomes the owner for a lease and the election's *term*
moves to a new value, greater than every term any election of this machine had before. The owner
keeps its lease with keepalives and may resign; if it stops (crashes, stalls, is cut off), its
lease runs out and the next campaign wins. Anyone may observe the current owner, the value it
proclaimed (its address, say) and the term.

The term is a fencing token: an owner passes it to whatever it acts on, and the resource
refuses a term lower than the highest it has seen (docs/batteries.md, "Why fencing"). Time is
handled as in `statemachines._lock`: commands carry ``now_ns`` stamped by the proposer (the
leader), the machine's time is the largest stamp applied, and leases expire at that time in log
order, never by a replica's own clock.

Wire format, version 1 (see `statemachines._msgpack_codec`)::

    [b"\\x01"] ["campaign",  election, candidate, value, lease_ns, now_ns]
               ["keepalive", election, term, lease_ns, now_ns]
               ["resign",    election, term, now_ns]
               ["observe",   election, now_ns]

``election`` and ``candidate`` are non-empty strings (at most 1024 bytes of UTF-8), ``value``
binary (at most 1 MiB), ``lease_ns`` positive and ``now_ns`` and ``term`` non-negative signed
64-bit integers.
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
    payload_field,
    saturating_add,
    time_field,
)

OWNERSHIP_FORMAT_VERSION = 1
"""The format byte that starts every ownership command this module writes."""

OWNERSHIP_SNAPSHOT_VERSION = 1
"""The version byte of the snapshots `Ownership.snapshot` writes."""

_MAGIC = b"OWNSNAP"
_SCHEMAS = {
    "campaign": (
        ("election", name_field),
        ("candidate", name_field),
        ("value", payload_field),
        ("lease_ns", duration_field),
        ("now_ns", time_field),
    ),
    "keepalive": (
        ("election", name_field),
        ("term", time_field),
        ("lease_ns", duration_field),
        ("now_ns", time_field),
    ),
    "resign": (("election", name_field), ("term", time_field), ("now_ns", time_field)),
    "observe": (("election", name_field), ("now_ns", time_field)),
}


def ownership_campaign(
    election: str, candidate: str, value: bytes = b"", *, lease_ns: int, now_ns: int
) -> bytes:
    """Campaign for `election` as `candidate`, proclaiming `value`, for `lease_ns` after
    `now_ns` (stamped by the leader; the candidate counts its lease from before it sent this).
    The owner campaigning again keeps its term, renews its lease and proclaims `value`."""
    return encode_command(
        OWNERSHIP_FORMAT_VERSION, _SCHEMAS, "campaign", election, candidate, value, lease_ns, now_ns
    )


def ownership_keepalive(election: str, term: int, *, lease_ns: int, now_ns: int) -> bytes:
    """Extend the owner's lease of `election` to `lease_ns` after `now_ns`, if it still owns
    it in `term`."""
    return encode_command(
        OWNERSHIP_FORMAT_VERSION, _SCHEMAS, "keepalive", election, term, lease_ns, now_ns
    )


def ownership_resign(election: str, term: int, *, now_ns: int) -> bytes:
    """Give up `election`, if the resigning owner still owns it in `term`."""
    return encode_command(OWNERSHIP_FORMAT_VERSION, _SCHEMAS, "resign", election, term, now_ns)


def ownership_observe(election: str, *, now_ns: int) -> bytes:
    """Ask, through the log, who owns `election` at `now_ns` (a linearizable read)."""
    return encode_command(OWNERSHIP_FORMAT_VERSION, _SCHEMAS, "observe", election, now_ns)


@attrs.frozen
class OwnershipResult:
    """What one applied ownership command gave its proposer.

    ======================  =====  ====================================================
    command                 ok     owner, value, term, expires_ns
    ======================  =====  ====================================================
    campaign, won or owner  True   the ownership (the candidate's, its term)
    campaign, lost          False  the current owner's
    keepalive / resign      True   the ownership renewed or given up
    stale keepalive/resign  False  the current owner's, or all None if there is none
    observe                 True   the current owner's, or all None if there is none
    malformed command       False  all None; `error` names the problem
    ======================  =====  ====================================================
    """

    ok: bool
    owner: str | None = None
    value: bytes | None = None
    term: int | None = None
    expires_ns: int | None = None
    error: str | None = None


@attrs.frozen
class _Owner:
    name: str
    value: bytes
    term: int
    expires_ns: int


class Ownership:
    """Named elections, each with at most one owner whose lease has not expired; implements
    `raft.StateMachine`, changed only by `apply` and `restore`.

    Promises, in log order at the machine's time: an election has at most one unexpired owner;
    each new ownership's term is greater than every term before it, in any election; a keepalive
    or resign naming a term that no longer owns is refused and changes nothing. Bytes that are
    not a valid command give an `OwnershipResult` with an `error` and change nothing.
    """

    __slots__ = ("_last_term", "_now", "_owners")

    def __init__(self) -> None:
        """No elections owned, no term given, time zero."""
        self._owners: dict[str, _Owner] = {}
        self._last_term = 0
        self._now = 0

    def __repr__(self) -> str:
        return f"<Ownership: {len(self._owners)} owners, last term {self._last_term}>"

    @property
    def now_ns(self) -> int:
        """The machine's time: the largest ``now_ns`` any applied command carried."""
        return self._now

    def apply(self, command: bytes) -> OwnershipResult:
        """Apply one committed command and return its result (see `OwnershipResult`); never
        raises."""
        try:
            op, fields = _decode(command)
        except MalformedCommand as error:
            return OwnershipResult(ok=False, error=str(error))
        self._now = max(self._now, fields[-1])
        election = fields[0]
        owner = self._live(election)
        if op == "campaign":
            _, candidate, value, lease_ns, _ = fields
            if owner is not None and owner.name != candidate:
                return _result(owner, ok=False)
            if owner is None:
                self._last_term += 1
                term = self._last_term
            else:
                term = owner.term
            owner = _Owner(candidate, value, term, saturating_add(self._now, lease_ns))
            self._owners[election] = owner
            return _result(owner, ok=True)
        if op == "observe":
            return OwnershipResult(ok=True) if owner is None else _result(owner, ok=True)
        if owner is None or owner.term != fields[1]:
            return OwnershipResult(ok=False) if owner is None else _result(owner, ok=False)
        if op == "keepalive":
            owner = attrs.evolve(owner, expires_ns=saturating_add(self._now, fields[2]))
            self._owners[election] = owner
        else:
            del self._owners[election]
        return _result(owner, ok=True)

    def _live(self, election: str) -> _Owner | None:
        owner = self._owners.get(election)
        if owner is not None and owner.expires_ns <= self._now:
            del self._owners[election]
            return None
        return owner

    def observe(self, election: str) -> OwnershipResult:
        """The owner of `election` on this replica now (a stale read if the replica lags;
        propose `ownership_observe` for a linearizable one)."""
        owner = self._owners.get(election)
        if owner is None or owner.expires_ns <= self._now:
            return OwnershipResult(ok=True)
        return _result(owner, ok=True)

    def snapshot(self) -> bytes:
        """The whole state as a canonical, checksummed snapshot."""
        rows = [
            [election, owner.name, owner.value, owner.term, owner.expires_ns]
            for election, owner in sorted(self._owners.items())
        ]
        return encode_snapshot(
            _MAGIC, OWNERSHIP_SNAPSHOT_VERSION, [self._now, self._last_term, rows]
        )

    def restore(self, data: bytes) -> None:
        """Replace the whole state with what `data` (from `snapshot`) holds; `ValueError`, and
        nothing changed, if it is not a valid ownership snapshot."""
        state = decode_snapshot(data, _MAGIC, OWNERSHIP_SNAPSHOT_VERSION, "ownership")
        try:
            now, last_term, rows = state
            now = time_field("time", now)
            last_term = time_field("last term", last_term)
            owners: dict[str, _Owner] = {}
            previous = ""
            for election, name, value, term, expires in rows:
                if name_field("election", election) <= previous:
                    raise ValueError("elections out of order or repeated")
                previous = election
                if not 0 < time_field("term", term) <= last_term:
                    raise ValueError(f"term {term} was never given")
                owners[election] = _Owner(
                    name_field("owner", name),
                    payload_field("value", value),
                    term,
                    time_field("expiry", expires),
                )
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid ownership snapshot: {error}") from None
        self._owners, self._last_term, self._now = owners, last_term, now

    def state_digest(self) -> str:
        """A SHA-256 hex digest of the whole state, for comparing replicas."""
        return hashlib.sha256(self.snapshot()).hexdigest()


def _result(owner: _Owner, *, ok: bool) -> OwnershipResult:
    return OwnershipResult(
        ok=ok, owner=owner.name, value=owner.value, term=owner.term, expires_ns=owner.expires_ns
    )


def _decode(command: bytes) -> tuple[str, tuple[Any, ...]]:
    # Payloads may be large: remember only small commands, so the cache stays small.
    if len(command) <= _CACHED_COMMAND_BYTES:
        return _decode_shared(command)
    return decode_command(command, OWNERSHIP_FORMAT_VERSION, _SCHEMAS)


_CACHED_COMMAND_BYTES = 4096


@functools.lru_cache(maxsize=4096)
def _decode_shared(command: bytes) -> tuple[str, tuple[Any, ...]]:
    # Decoding is a pure function of the bytes: replicas in one process may share the work.
    return decode_command(command, OWNERSHIP_FORMAT_VERSION, _SCHEMAS)
