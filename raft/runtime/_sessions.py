"""Client sessions: exactly-once application of retried commands (thesis §6.3).

Every command a `RaftServer` proposes travels in an envelope, `encode_envelope(client_id, seq,
command)`: a msgpack array `[1, client_id, seq, command]`. Client id 0 means "no session": the
command is applied each time it commits. For any other client the `SessionTable` in front of
the state machine remembers the highest sequence number applied and its result, so a retry of
that command (same client, same sequence number) commits a second time but is *not* applied
again: it gets the first result back.

The table is part of the replicated state: every replica applies the same envelopes in the same
order, so every table is the same, and `snapshot()` carries it. Memory is bounded: one result
per client (a client has at most one command outstanding: it sends `seq + 1` only after `seq`
returned), and at most `max_clients` clients, the least recently active one evicted first (by
log order, the same on every replica). A command older than the client's latest gets
`SessionExpired` rather than risk applying it twice. An evicted client is forgotten: its retry
would be applied again, so size `max_clients` above the number of clients active at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from raft._state_machine import StateMachine
from raft.runtime._errors import SessionExpired

ENVELOPE_VERSION: Final = 1
SNAPSHOT_VERSION: Final = 1
DEFAULT_MAX_CLIENTS: Final = 10_000
_UNAVAILABLE: Final = "unavailable"


class MalformedEnvelope(ValueError):
    """Bytes in the log that are not a valid envelope (only a buggy or foreign proposer)."""


def encode_envelope(client_id: int, seq: int, command: bytes) -> bytes:
    """The bytes proposed for `command` from `client_id` (0: no session) at `seq`."""
    if type(client_id) is not int or not 0 <= client_id < 2**64:
        raise ValueError(f"client_id must be an integer in [0, 2**64), got {client_id!r}")
    if type(seq) is not int or not 0 <= seq < 2**64:
        raise ValueError(f"seq must be an integer in [0, 2**64), got {seq!r}")
    if not isinstance(command, bytes):
        raise TypeError(f"a command must be bytes, got {type(command).__name__}")
    data: bytes = msgpack.packb([ENVELOPE_VERSION, client_id, seq, command], use_bin_type=True)
    return data


def decode_envelope(data: bytes) -> tuple[int, int, bytes]:
    """(client_id, seq, command) from `encode_envelope`'s bytes; `MalformedEnvelope` if not."""
    try:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as error:
        raise MalformedEnvelope(f"not a command envelope: {error}") from None
    if (
        not isinstance(fields, list)
        or len(fields) != 4
        or fields[0] != ENVELOPE_VERSION
        or type(fields[1]) is not int
        or type(fields[2]) is not int
        or not isinstance(fields[3], bytes)
    ):
        raise MalformedEnvelope("not a version-1 command envelope")
    return fields[1], fields[2], fields[3]


class _Expired:
    """The result `SessionTable.apply` gives for a command it refused as too old."""

    def __init__(self, client_id: int, seq: int, reason: str) -> None:
        self.error = SessionExpired(f"client {client_id} seq {seq}: {reason}")


def _default_encode(result: object) -> object:
    return result


def _default_decode(value: object) -> object:
    return value


class SessionTable:
    """The deduplicating layer between the log and a `StateMachine` (see the module doc).

    `encode_result` turns a result into something msgpack can hold, for snapshots (default:
    the result as it is); `decode_result` is its inverse. A result msgpack cannot hold is
    kept in memory but written to a snapshot as unknown: a retry served from a restored table
    then gets `SessionExpired` instead of the result (the command is still not applied twice).
    """

    def __init__(
        self,
        state_machine: StateMachine,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        encode_result: Callable[[object], object] = _default_encode,
        decode_result: Callable[[object], object] = _default_decode,
    ) -> None:
        if type(max_clients) is not int or max_clients < 1:
            raise ValueError(f"max_clients must be an integer >= 1, got {max_clients!r}")
        self.state_machine = state_machine
        self._max_clients = max_clients
        self._encode_result = encode_result
        self._decode_result = decode_result
        # client id -> (last seq applied, its result); most recently active last
        self._clients: OrderedDict[int, tuple[int, object]] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._clients)

    def apply(self, data: bytes) -> object:
        """Apply one committed envelope; the state machine's result, the remembered result of a
        duplicate, or an error object for a malformed or expired command (never raises for bad
        bytes: every replica must go on)."""
        try:
            client_id, seq, command = decode_envelope(data)
        except MalformedEnvelope as error:
            return error
        if client_id == 0:
            return self.state_machine.apply(command)
        known = self._clients.get(client_id)
        if known is not None:
            last_seq, result = known
            if seq == last_seq:
                self._clients.move_to_end(client_id)
                return result
            if seq < last_seq:
                return _Expired(client_id, seq, f"the cluster already applied seq {last_seq}")
        result = self.state_machine.apply(command)
        self._clients[client_id] = (seq, result)
        self._clients.move_to_end(client_id)
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
            self.evictions += 1
        return result

    def snapshot(self) -> bytes:
        """The table and the state machine's own snapshot, as one msgpack document."""
        sessions = []
        for client_id, (seq, result) in self._clients.items():
            encoded: Any = self._encode_result(result)
            try:
                msgpack.packb(encoded, use_bin_type=True)
                sessions.append([client_id, seq, True, encoded])
            except (TypeError, ValueError, OverflowError):
                sessions.append([client_id, seq, False, None])
        data: bytes = msgpack.packb(
            [SNAPSHOT_VERSION, sessions, self.evictions, self.state_machine.snapshot()],
            use_bin_type=True,
        )
        return data

    def restore(self, data: bytes) -> None:
        """Replace the table and the state machine's state with a `snapshot()`'s."""
        try:
            version, sessions, evictions, inner = msgpack.unpackb(data, raw=False)
        except Exception as error:
            raise ValueError(f"not a session snapshot: {error}") from None
        if version != SNAPSHOT_VERSION or not isinstance(inner, bytes):
            raise ValueError(f"unsupported session snapshot version {version!r}")
        clients: OrderedDict[int, tuple[int, object]] = OrderedDict()
        for client_id, seq, known, encoded in sessions:
            result = (
                self._decode_result(encoded)
                if known
                else _Expired(client_id, seq, "its result was not kept in the snapshot")
            )
            clients[client_id] = (seq, result)
        self.state_machine.restore(inner)
        self._clients = clients
        self.evictions = evictions
