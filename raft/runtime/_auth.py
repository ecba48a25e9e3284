"""The connection handshake: who is on the other end, and proof that they hold the secret.

The dialing side (client) and the accepting side (server) each send a hello — their node id and
a fresh 32-byte nonce — after their preamble. With a shared secret, the client then proves it
holds the secret with HMAC-SHA256 over both nonces, the cluster id and both node ids; the
server checks it and answers with its own proof, which the client checks. Fresh nonces on both
sides mean a recorded handshake cannot be replayed, and the role label in each MAC means one
side's proof is never valid as the other's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from raft.runtime._codec import FrameError
from raft.runtime._framed import FramedStream

NONCE_BYTES: Final = 32
MIN_SECRET_BYTES: Final = 16
_CLIENT: Final = b"trio-raft client proof"
_SERVER: Final = b"trio-raft server proof"


class AuthenticationError(Exception):
    """The peer failed the handshake: wrong secret, or not the node it had to be."""


def check_secret(secret: bytes) -> bytes:
    """`secret`, if it is long enough to be one; `ValueError` otherwise."""
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the shared secret must be bytes, at least {MIN_SECRET_BYTES} long")
    return secret


def _unpack(body: bytes, what: str) -> tuple[Any, ...]:
    try:
        values = msgpack.unpackb(body, use_list=False, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types for malformed input
        raise FrameError(f"{what} is not valid msgpack: {type(error).__name__}") from None
    if type(values) is not tuple:
        raise FrameError(f"{what} must be an array")
    return values


def _decode_hello(body: bytes) -> tuple[int, bytes]:
    values = _unpack(body, "hello")
    if (
        len(values) != 2
        or type(values[0]) is not int
        or values[0] < 1
        or type(values[1]) is not bytes
        or len(values[1]) != NONCE_BYTES
    ):
        raise FrameError("hello must be [node id >= 1, 32-byte nonce]")
    return values[0], values[1]


def _decode_proof(body: bytes) -> bytes:
    values = _unpack(body, "proof")
    if len(values) != 1 or type(values[0]) is not bytes:
        raise FrameError("proof must be [mac]")
    mac: bytes = values[0]
    return mac


def _mac(
    secret: bytes, label: bytes, cluster_id: str, ids: tuple[int, int], nonces: bytes
) -> bytes:
    message = msgpack.packb([label, cluster_id, *ids, nonces], use_bin_type=True)
    return hmac.digest(secret, message, hashlib.sha256)


async def client_handshake(
    connection: FramedStream,
    *,
    cluster_id: str,
    node_id: int,
    peer_id: int,
    secret: bytes | None,
) -> None:
    """Open a connection to `peer_id`: returns once both sides are authenticated."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    await connection.send_preamble(msgpack.packb([node_id, nonce], use_bin_type=True))
    server_id, server_nonce = _decode_hello(await connection.receive_body())
    if server_id != peer_id:
        raise AuthenticationError(f"dialed node {peer_id}, node {server_id} answered")
    if secret is None:
        return
    ids, nonces = (node_id, peer_id), nonce + server_nonce
    await connection.send_body(
        msgpack.packb([_mac(secret, _CLIENT, cluster_id, ids, nonces)], use_bin_type=True)
    )
    expected = _mac(secret, _SERVER, cluster_id, ids, nonces)
    if not hmac.compare_digest(_decode_proof(await connection.receive_body()), expected):
        raise AuthenticationError(f"node {peer_id} does not hold the shared secret")


async def server_handshake(
    connection: FramedStream, *, cluster_id: str, node_id: int, secret: bytes | None
) -> int:
    """Accept a connection: the authenticated id of the peer that dialed this node."""
    client_id, client_nonce = _decode_hello(await connection.receive_body())
    if client_id == node_id:
        raise AuthenticationError(f"a peer claims this node's own id {node_id}")
    nonce = secrets.token_bytes(NONCE_BYTES)
    await connection.send_preamble(msgpack.packb([node_id, nonce], use_bin_type=True))
    if secret is None:
        return client_id
    ids, nonces = (client_id, node_id), client_nonce + nonce
    expected = _mac(secret, _CLIENT, cluster_id, ids, nonces)
    if not hmac.compare_digest(_decode_proof(await connection.receive_body()), expected):
        raise AuthenticationError(f"a peer claiming to be node {client_id} failed the proof")
    await connection.send_body(
        msgpack.packb([_mac(secret, _SERVER, cluster_id, ids, nonces)], use_bin_type=True)
    )
    return client_id
