"""The fencing check: leased locks from a replicated `LockManager` protect a storage service
from clients that pause, but only if the service checks the fencing token.

A seeded scenario on a simulated `Cluster` of `LockManager` replicas. Clients loop: acquire a
lock through the Raft leader (the command stamped with the leader's time when it arrives there),
write a few records to a storage service that lives outside the cluster, passing their fencing
token, then release. Before each write a client checks its lease by its own clock, counted
conservatively from when it *sent* its acquire, as a careful client would; but between that check
and the write it may stall (a GC pause: the client is simply not run) for longer than its lease.
Meanwhile the lease expires in the log, another client acquires the lock, and starts writing.

The storage service records every write it accepts. A run is *clean* when the accepted writes of
each grant form one contiguous block and blocks come in increasing token order: no holder's
writes interleave with another's, and no stale holder writes after a newer one. `FencedStorage`,
which refuses a token lower than the highest it has accepted, is clean by construction on every
seed; a storage that trusts the lock alone (plant one with `run_fencing(storage=...)`) is caught
within a few seeds. Raft faults come on top: the leader is paused now and then, so grants and
releases also ride through leader changes.

Every replica's result for every log index is compared too, and grants must carry strictly
increasing tokens: the lock's own promises, checked in log order.

`FencingOptions(recipe="ownership")` runs the same story with an `Ownership` election in place
of the lock: clients campaign and resign, and the term is the token the storage checks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

import attrs

from raft import Entry, LeadershipTransferInProgress, NotLeader, StateMachine
from sim._scenario import LeaderPausingScenario
from statemachines import (
    LockManager,
    LockResult,
    Ownership,
    OwnershipResult,
    lock_acquire,
    lock_release,
    ownership_campaign,
    ownership_resign,
)

_LOCK = "resource"
RECIPES = ("lock", "ownership")
"""What grants the right to write: a `LockManager` lock (its token fences) or an `Ownership`
election (its term fences)."""

_Grant = tuple[bool, int | None, int | None]
"""(ok, token or term, expires_ns) of a lock or ownership result."""


def _grant(result: object) -> _Grant | None:
    if isinstance(result, LockResult):
        return (result.ok, result.token, result.expires_ns)
    if isinstance(result, OwnershipResult):
        return (result.ok, result.term, result.expires_ns)
    return None


def _acquire(recipe: str, owner: str, lease_ns: int) -> partial[bytes]:
    if recipe == "lock":
        return partial(lock_acquire, _LOCK, owner, lease_ns=lease_ns)
    return partial(ownership_campaign, _LOCK, owner, b"", lease_ns=lease_ns)


def _release(recipe: str, token: int) -> partial[bytes]:
    if recipe == "lock":
        return partial(lock_release, _LOCK, token)
    return partial(ownership_resign, _LOCK, token)


def _factory(recipe: str) -> Callable[[], StateMachine]:
    return LockManager if recipe == "lock" else Ownership


class Storage(Protocol):
    """A service that takes writes tagged with a fencing token, and records those it took."""

    accepted: list[tuple[int, int, int]]
    """(token, client, record) of every write taken, in order."""

    def write(self, token: int, client: int, record: int) -> bool:
        """Take (True) or refuse (False) one write from `client` holding grant `token`."""
        ...


@attrs.define
class FencedStorage:
    """Refuses a write whose token is lower than the highest token it has accepted: the check
    that makes a leased lock safe, done where it must be, at the resource."""

    highest: int = 0
    accepted: list[tuple[int, int, int]] = attrs.Factory(list)
    """(token, client, record) of every write taken, in order."""

    def write(self, token: int, client: int, record: int) -> bool:
        """Take the write unless a newer token has written before it."""
        if token < self.highest:
            return False
        self.highest = token
        self.accepted.append((token, client, record))
        return True


def first_interleaving(accepted: list[tuple[int, int, int]]) -> str | None:
    """Where the accepted writes stop being contiguous per grant in increasing token order
    (None if they never do): the first write of a holder whose grant is older than, or was
    interrupted by, another's."""
    current = 0
    finished: set[int] = set()
    for position, (token, client, record) in enumerate(accepted):
        if token == current:
            continue
        if token < current or token in finished:
            kind = "resumed after another holder wrote" if token in finished else "stale"
            return (
                f"write #{position} (client {client}, record {record}, token {token}) is "
                f"{kind}: token {current} had already written"
            )
        finished.add(current)
        current = token
    return None


@attrs.frozen
class FencingOptions:
    """The scenario's shape; times in simulated nanoseconds."""

    nodes: int = 3
    clients: int = 3
    duration_ns: int = 20_000_000_000
    lease_ns: int = 300_000_000
    writes_per_grant: int = 3
    work_ns: int = 20_000_000
    """Time a client spends between two writes of one grant."""
    pause_probability: float = 0.1
    """Chance that a client stalls between its lease check and a write."""
    pause_ns: tuple[int, int] = (400_000_000, 1_200_000_000)
    latency_ns: tuple[int, int] = (200_000, 2_000_000)
    request_timeout_ns: int = 1_000_000_000
    leader_pause_every_ns: int = 3_000_000_000
    """Mean time between pauses of the leader (0: never)."""
    leader_pause_ns: int = 600_000_000
    snapshot_every: int = 20
    """Every replica compacts its log every this many applied entries (0: never), so a replica
    that fell behind during a pause catches up by installing its leader's snapshot."""
    recipe: str = attrs.field(default="lock", validator=attrs.validators.in_(RECIPES))


@attrs.frozen
class FencingReport:
    """What one run did and whether the storage stayed consistent."""

    seed: int
    grants: int
    writes_accepted: int
    writes_refused: int
    client_pauses: int
    leader_pauses: int
    snapshots_installed: int
    """Snapshots replicas installed from their leader (restored mid-run, then applied on)."""
    lock_violation: str | None
    """A broken promise of the lock itself (replicas disagreeing, tokens not increasing)."""
    storage_violation: str | None
    """The first write that interleaved two holders' writes (`first_interleaving`)."""
    trace_sha256: str

    @property
    def clean(self) -> bool:
        """Neither the lock nor the storage misbehaved."""
        return self.lock_violation is None and self.storage_violation is None


@attrs.define
class _Client:
    index: int
    generation: int = 0
    token: int | None = None
    local_deadline: int = 0
    written: int = 0


class _Scenario(LeaderPausingScenario):
    def __init__(self, seed: int, options: FencingOptions, storage: Storage) -> None:
        super().__init__(
            seed,
            "fencing",
            nodes=options.nodes,
            state_machine_factory=_factory(options.recipe),
            snapshot_every=options.snapshot_every,
            latency_ns=options.latency_ns,
            leader_pause_ns=options.leader_pause_ns,
            leader_pause_every_ns=options.leader_pause_every_ns,
        )
        self.options = options
        self.storage = storage
        self.clients = [_Client(index) for index in range(options.clients)]
        self.pending: dict[tuple[int, int], tuple[int, _Client, int]] = {}
        self.results: dict[int, _Grant] = {}
        self.last_token = 0
        self.grants = 0
        self.accepted = 0
        self.refused = 0
        self.client_pauses = 0
        self.lock_violation: str | None = None

    # ---- the lock's own promises, from every replica's results ----------------------------

    def _on_apply(self, node_id: int, entry: Entry, result: object) -> None:
        grant = _grant(result)
        if grant is not None:
            seen = self.results.setdefault(entry.index, grant)
            if seen != grant and self.lock_violation is None:
                self.lock_violation = (
                    f"node {node_id} applied index {entry.index} as {result}, another as {seen}"
                )
            ok, token, _ = grant
            if seen is grant and ok and token is not None:
                if token < self.last_token and self.lock_violation is None:
                    self.lock_violation = (
                        f"index {entry.index} granted token {token} after {self.last_token}"
                    )
                self.last_token = max(self.last_token, token)
        waiting = self.pending.pop((node_id, entry.index), None)
        if waiting is not None:
            term, client, generation = waiting
            answer = grant if entry.term == term else None
            self._later(partial(self._answered, client, generation, answer))

    # ---- plumbing -------------------------------------------------------------------------

    def _request(self, client: _Client, make: partial[bytes]) -> None:
        """Send a lock command to the leader, stamped there on arrival; the answer (None for
        a lost or refused proposal) comes back to `_answered`, or nothing does and the
        client's timeout fires."""
        client.generation += 1
        generation = client.generation
        self._later(partial(self._timeout, client, generation), self.options.request_timeout_ns)
        leader = self.cluster.leader()
        if leader is None:
            self._later(partial(self._answered, client, generation, None), 50_000_000)
            return
        self._later(partial(self._arrive, leader, client, generation, make))

    def _arrive(self, node_id: int, client: _Client, generation: int, make: partial[bytes]) -> None:
        cluster = self.cluster
        if cluster.is_paused(node_id):
            return  # the request waits in a frozen process; the client times out
        try:
            term, index = cluster.propose(node_id, make(now_ns=cluster.now))
        except (NotLeader, LeadershipTransferInProgress):
            self._later(partial(self._answered, client, generation, None))
            return
        self.pending[(node_id, index)] = (term, client, generation)

    def _timeout(self, client: _Client, generation: int) -> None:
        if client.generation == generation:
            self._answered(client, generation, None)

    # ---- a client -------------------------------------------------------------------------

    def start(self) -> None:
        for client in self.clients:
            self._later(partial(self._acquire, client), self.rng.randint(0, 200_000_000))
        if self.options.leader_pause_every_ns:
            self._later(self._pause_leader, self._leader_pause_gap())

    def _acquire(self, client: _Client) -> None:
        client.token = None
        client.written = 0
        client.local_deadline = self.cluster.now + self.options.lease_ns
        self._request(
            client,
            _acquire(self.options.recipe, f"client-{client.index}", self.options.lease_ns),
        )

    def _answered(self, client: _Client, generation: int, result: _Grant | None) -> None:
        if client.generation != generation:
            return
        client.generation += 1
        if client.token is not None:  # a release was answered (or lost): start over
            client.token = None
            self._later(partial(self._acquire, client), self.rng.randint(0, 100_000_000))
            return
        ok, token, expires_ns = result if result is not None else (False, None, None)
        if ok and token is not None:
            self.grants += 1
            client.token = token
            self._write(client)
        else:
            wait = 20_000_000
            if expires_ns is not None:
                wait = max(wait, expires_ns - self.cluster.now)
            self._later(partial(self._acquire, client), wait + self.rng.randint(0, 20_000_000))

    def _write(self, client: _Client) -> None:
        """The critical section: check the lease by the client's clock, then write."""
        if self.cluster.now >= client.local_deadline:
            client.token = None  # the client knows its lease ran out; it gives up this grant
            self._later(partial(self._acquire, client), self.rng.randint(0, 50_000_000))
            return
        if self.rng.random() < self.options.pause_probability:
            # The stall lands after the check, where no check by the client can see it.
            self.client_pauses += 1
            self._later(partial(self._send_write, client), self.rng.randint(*self.options.pause_ns))
        else:
            self._send_write(client)

    def _send_write(self, client: _Client) -> None:
        self._later(partial(self._store, client))

    def _store(self, client: _Client) -> None:
        token = client.token
        assert token is not None
        taken = self.storage.write(token, client.index, client.written)
        if taken:
            self.accepted += 1
        else:
            self.refused += 1
        self._later(partial(self._stored, client, taken))

    def _stored(self, client: _Client, taken: bool) -> None:
        client.written += 1
        token = client.token
        assert token is not None
        if not taken:
            client.token = None  # fenced off: a newer holder exists
            self._later(partial(self._acquire, client), self.rng.randint(0, 50_000_000))
        elif client.written < self.options.writes_per_grant:
            self._later(partial(self._write, client), self.options.work_ns)
        else:
            self._request(client, _release(self.options.recipe, token))

    # ---- raft faults ----------------------------------------------------------------------


def run_fencing(
    seed: int, options: FencingOptions | None = None, *, storage: Storage | None = None
) -> FencingReport:
    """Run the fencing scenario for `seed` against `storage` (a new `FencedStorage` unless
    given).
    The same seed and storage give the same run, event for event."""
    options = options or FencingOptions()
    service = storage if storage is not None else FencedStorage()
    scenario = _Scenario(seed, options, service)
    scenario.cluster.elect()
    scenario.start()
    scenario.cluster.run_for(options.duration_ns)
    return FencingReport(
        seed=seed,
        grants=scenario.grants,
        writes_accepted=scenario.accepted,
        writes_refused=scenario.refused,
        client_pauses=scenario.client_pauses,
        leader_pauses=scenario.leader_pauses,
        snapshots_installed=scenario.installs,
        lock_violation=scenario.lock_violation,
        storage_violation=first_interleaving(service.accepted),
        trace_sha256=scenario.cluster.trace_sha256(),
    )
