"""Named work queues with visibility timeouts: the replicated `WorkQueue`.

A producer enqueues an item; a worker claims the oldest claimable item for a visibility timeout
and gets it with a *claim token*; it acks the item with that token once the work is done. A
claimed item whose worker stops (crashes, stalls, is cut off) without acking is claimable again
once its timeout has passed, under a new token: work is done at least once. An ack whose token is
not the item's latest claim is refused, so an item is acked (removed) exactly once, and a worker
that stalled past its timeout learns that someone else may be doing its work. Claim tokens
increase strictly, over all queues: they are fencing tokens for whatever the work writes.

Time is handled as in `statemachines._lock`: commands carry ``now_ns`` stamped by the proposer
(the leader), the machine's time is the largest stamp applied so far, and timeouts expire at that
time in log order, never by a replica's own clock.

Wire format, version 1 (see `statemachines._msgpack_codec`)::

    [b"\\x01"] ["enqueue", queue, payload, now_ns]
               ["claim",   queue, worker, visibility_ns, now_ns]
               ["ack",     queue, item, token, now_ns]
               ["release", queue, item, token, now_ns]    give a claim back early

``queue`` and ``worker`` are non-empty strings (at most 1024 bytes of UTF-8), ``payload`` binary
(at most 1 MiB), ``visibility_ns`` positive and ``now_ns``, ``item`` and ``token`` non-negative
signed 64-bit integers.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
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

QUEUE_FORMAT_VERSION = 1
"""The format byte that starts every queue command this module writes."""

QUEUE_SNAPSHOT_VERSION = 1
"""The version byte of the snapshots `WorkQueue.snapshot` writes."""

_MAGIC = b"QUEUESNAP"
_SCHEMAS = {
    "enqueue": (("queue", name_field), ("payload", payload_field), ("now_ns", time_field)),
    "claim": (
        ("queue", name_field),
        ("worker", name_field),
        ("visibility_ns", duration_field),
        ("now_ns", time_field),
    ),
    "ack": (
        ("queue", name_field),
        ("item", time_field),
        ("token", time_field),
        ("now_ns", time_field),
    ),
    "release": (
        ("queue", name_field),
        ("item", time_field),
        ("token", time_field),
        ("now_ns", time_field),
    ),
}


def queue_enqueue(queue: str, payload: bytes, *, now_ns: int) -> bytes:
    """Append an item holding `payload` to `queue`."""
    return encode_command(QUEUE_FORMAT_VERSION, _SCHEMAS, "enqueue", queue, payload, now_ns)


def queue_claim(queue: str, worker: str, *, visibility_ns: int, now_ns: int) -> bytes:
    """Claim the oldest claimable item of `queue` for `worker`, hidden from other claims for
    `visibility_ns` after `now_ns` (stamped by the leader; the worker counts its timeout from
    before it sent this)."""
    return encode_command(
        QUEUE_FORMAT_VERSION, _SCHEMAS, "claim", queue, worker, visibility_ns, now_ns
    )


def queue_ack(queue: str, item: int, token: int, *, now_ns: int) -> bytes:
    """Remove `item`, done, if `token` is still its latest claim."""
    return encode_command(QUEUE_FORMAT_VERSION, _SCHEMAS, "ack", queue, item, token, now_ns)


def queue_release(queue: str, item: int, token: int, *, now_ns: int) -> bytes:
    """Make `item` claimable again at once, if `token` is still its latest live claim."""
    return encode_command(QUEUE_FORMAT_VERSION, _SCHEMAS, "release", queue, item, token, now_ns)


@attrs.frozen
class QueueResult:
    """What one applied queue command gave its proposer.

    ===================  =====  ==========================================================
    command              ok     item, payload, token, deadline_ns
    ===================  =====  ==========================================================
    enqueue              True   item: the new item's id (ids increase over all queues)
    claim                True   the item claimed, its payload, the claim's token and end
    claim, nothing       False  all None: no item is claimable now
    ack / release        True   item and token as given
    stale ack/release    False  all None: the item is gone, or claimed under another token
    malformed command    False  all None; `error` names the problem
    ===================  =====  ==========================================================
    """

    ok: bool
    item: int | None = None
    payload: bytes | None = None
    token: int | None = None
    deadline_ns: int | None = None
    error: str | None = None


@attrs.frozen
class _Claim:
    token: int
    worker: str
    deadline_ns: int


@attrs.define
class _Queue:
    items: dict[int, tuple[bytes, _Claim | None]] = attrs.Factory(dict)
    """Every item not yet acked, by id, with its latest claim (None if never claimed or
    released)."""
    ready: list[int] = attrs.Factory(list)
    """A heap of the ids of unclaimed items (some may since have gone)."""
    claimed: list[tuple[int, int, int]] = attrs.Factory(list)
    """A heap of (deadline, id, token) of claims (some may since have ended)."""


class WorkQueue:
    """Named FIFO work queues whose claims time out; implements `raft.StateMachine`, changed
    only by `apply` and `restore`.

    Promises, in log order at the machine's time: an item is claimed by at most one unexpired
    claim; a claim takes the claimable item with the lowest id; an item whose claim expired is
    claimable again; only an ack carrying the item's latest claim token removes it, so no item
    is lost (it stays until acked) and none is acked twice. A late ack whose claim expired is
    still taken if no one claimed the item since. Bytes that are not a valid command give a
    `QueueResult` with an `error` and change nothing.
    """

    __slots__ = ("_last_item", "_last_token", "_now", "_queues")

    def __init__(self) -> None:
        """No queues, no items, time zero."""
        self._queues: dict[str, _Queue] = {}
        self._last_item = 0
        self._last_token = 0
        self._now = 0

    def __repr__(self) -> str:
        return f"<WorkQueue: {len(self._queues)} queues, {self._last_item} items enqueued>"

    @property
    def now_ns(self) -> int:
        """The machine's time: the largest ``now_ns`` any applied command carried."""
        return self._now

    def apply(self, command: bytes) -> QueueResult:
        """Apply one committed command and return its result (see `QueueResult`); never
        raises."""
        try:
            op, fields = _decode(command)
        except MalformedCommand as error:
            return QueueResult(ok=False, error=str(error))
        now = self._now = max(self._now, fields[-1])
        name = fields[0]
        if op == "enqueue":
            self._last_item += 1
            queue = self._queues.setdefault(name, _Queue())
            queue.items[self._last_item] = (fields[1], None)
            heapq.heappush(queue.ready, self._last_item)
            return QueueResult(ok=True, item=self._last_item)
        queue_or_none = self._queues.get(name)
        if queue_or_none is None:
            return QueueResult(ok=False)
        queue = queue_or_none
        if op == "claim":
            return self._claim(name, queue, fields[1], saturating_add(now, fields[2]))
        item, token = fields[1], fields[2]
        entry = queue.items.get(item)
        if entry is None or entry[1] is None or entry[1].token != token:
            return QueueResult(ok=False)
        if op == "ack":
            del queue.items[item]
            if not queue.items:
                del self._queues[name]
        elif entry[1].deadline_ns <= now:
            return QueueResult(ok=False)  # already claimable again: nothing to give back
        else:
            queue.items[item] = (entry[0], None)
            heapq.heappush(queue.ready, item)
        return QueueResult(ok=True, item=item, token=token)

    def _claim(self, name: str, queue: _Queue, worker: str, deadline: int) -> QueueResult:
        items, ready, claimed, now = queue.items, queue.ready, queue.claimed, self._now
        # Claims that timed out make their items claimable again (unless acked or released
        # since, which the token tells).
        while claimed and claimed[0][0] <= now:
            _, item, token = heapq.heappop(claimed)
            entry = items.get(item)
            if entry is not None and entry[1] is not None and entry[1].token == token:
                heapq.heappush(ready, item)
        while ready:
            item = heapq.heappop(ready)
            entry = items.get(item)
            if entry is None or (entry[1] is not None and entry[1].deadline_ns > now):
                continue  # acked since it became claimable
            self._last_token += 1
            claim = _Claim(self._last_token, worker, deadline)
            items[item] = (entry[0], claim)
            heapq.heappush(claimed, (deadline, item, claim.token))
            return QueueResult(
                ok=True, item=item, payload=entry[0], token=claim.token, deadline_ns=deadline
            )
        return QueueResult(ok=False)

    def items(self, queue: str) -> list[tuple[int, bytes, str | None]]:
        """`(item, payload, worker)` of every item of `queue` not yet acked on this replica,
        oldest first; `worker` is the holder of an unexpired claim, else None."""
        entries = self._queues.get(queue, _Queue()).items
        now = self._now
        return [
            (item, payload, None if claim is None or claim.deadline_ns <= now else claim.worker)
            for item, (payload, claim) in sorted(entries.items())
        ]

    def snapshot(self) -> bytes:
        """The whole state as a canonical, checksummed snapshot."""
        rows = [
            [
                name,
                [
                    [item, payload]
                    if claim is None
                    else [item, payload, claim.token, claim.worker, claim.deadline_ns]
                    for item, (payload, claim) in sorted(queue.items.items())
                ],
            ]
            for name, queue in sorted(self._queues.items())
        ]
        return encode_snapshot(
            _MAGIC,
            QUEUE_SNAPSHOT_VERSION,
            [self._now, self._last_item, self._last_token, rows],
        )

    def restore(self, data: bytes) -> None:
        """Replace the whole state with what `data` (from `snapshot`) holds; `ValueError`, and
        nothing changed, if it is not a valid queue snapshot."""
        state = decode_snapshot(data, _MAGIC, QUEUE_SNAPSHOT_VERSION, "queue")
        try:
            now, last_item, last_token, rows = state
            now = time_field("time", now)
            last_item = time_field("last item", last_item)
            last_token = time_field("last token", last_token)
            queues: dict[str, _Queue] = {}
            seen: set[int] = set()
            previous = ""
            for name, entries in rows:
                if name_field("queue", name) <= previous:
                    raise ValueError("queues out of order or repeated")
                previous = name
                if type(entries) is not list or not entries:
                    raise ValueError(f"queue {name!r} must hold a non-empty list of items")
                queue = queues[name] = _Queue()
                for entry in entries:
                    if type(entry) is not list or len(entry) not in (2, 5):
                        raise ValueError("an item is [id, payload] or [id, payload, claim...]")
                    item = time_field("item", entry[0])
                    if not 0 < item <= last_item or item in seen:
                        raise ValueError(f"item {item} was never enqueued, or is repeated")
                    seen.add(item)
                    claim = None
                    if len(entry) == 5:
                        token = time_field("token", entry[2])
                        if not 0 < token <= last_token:
                            raise ValueError(f"token {token} was never given")
                        claim = _Claim(
                            token, name_field("worker", entry[3]), time_field("deadline", entry[4])
                        )
                    queue.items[item] = (payload_field("payload", entry[1]), claim)
                    if claim is None or claim.deadline_ns <= now:
                        queue.ready.append(item)
                    else:
                        queue.claimed.append((claim.deadline_ns, item, claim.token))
                if list(queue.items) != sorted(queue.items):
                    raise ValueError(f"queue {name!r} holds items out of order")
                heapq.heapify(queue.ready)
                heapq.heapify(queue.claimed)
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid queue snapshot: {error}") from None
        self._queues, self._now = queues, now
        self._last_item, self._last_token = last_item, last_token

    def state_digest(self) -> str:
        """A SHA-256 hex digest of the whole state, for comparing replicas."""
        return hashlib.sha256(self.snapshot()).hexdigest()


def _decode(command: bytes) -> tuple[str, tuple[Any, ...]]:
    # Payloads may be large: remember only small commands, so the cache stays small.
    if len(command) <= _CACHED_COMMAND_BYTES:
        return _decode_shared(command)
    return decode_command(command, QUEUE_FORMAT_VERSION, _SCHEMAS)


_CACHED_COMMAND_BYTES = 4096


@functools.lru_cache(maxsize=4096)
def _decode_shared(command: bytes) -> tuple[str, tuple[Any, ...]]:
    # Decoding is a pure function of the bytes: replicas in one process may share the work.
    return decode_command(command, QUEUE_FORMAT_VERSION, _SCHEMAS)
