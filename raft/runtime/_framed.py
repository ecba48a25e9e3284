"""A trio byte stream speaking frames: bodies out with a length prefix, bodies in checked."""

from __future__ import annotations

import trio

from raft.runtime._codec import FrameReader, encode_preamble, frame

RECEIVE_CHUNK = 64 * 1024
"""The most bytes read from the socket at once; with the maximum frame size it bounds memory."""
HANDSHAKE_MAX_FRAME_SIZE = 1024
"""The largest frame before the peer is authenticated: a hello or a proof is far smaller, and a
stranger must not make this node buffer and decode megabytes."""


class FramedStream:
    """One connection's stream, with a `FrameReader` for what arrives.

    Each side sends its preamble first (`send_preamble`), then frames. Until `authenticated`
    raises it, frames are limited to `HANDSHAKE_MAX_FRAME_SIZE`. Errors from the peer's bytes
    surface as `FrameError`; a closed or broken connection as `trio.BrokenResourceError`.
    """

    def __init__(self, stream: trio.abc.Stream, cluster_id: str) -> None:
        self.stream = stream
        self._cluster_id = cluster_id
        self._reader = FrameReader(cluster_id, HANDSHAKE_MAX_FRAME_SIZE)

    def authenticated(self, max_frame_size: int) -> None:
        """The handshake succeeded: accept frames up to `max_frame_size` from now on."""
        self._reader.max_frame_size = max_frame_size

    async def send_preamble(self, first_body: bytes) -> None:
        """Send the preamble and the first frame (the handshake's hello) in one write."""
        await self.stream.send_all(
            encode_preamble(self._cluster_id) + frame(first_body, HANDSHAKE_MAX_FRAME_SIZE)
        )

    async def send_body(self, body: bytes) -> None:
        """Send one frame (of the handshake's size at most)."""
        await self.stream.send_all(frame(body, HANDSHAKE_MAX_FRAME_SIZE))

    async def receive_body(self) -> bytes:
        """The next frame's body; raises `trio.BrokenResourceError` if the peer hangs up first."""
        while (body := self._reader.next_body()) is None:
            data = await self.stream.receive_some(RECEIVE_CHUNK)
            if not data:
                raise trio.BrokenResourceError("the peer closed the connection")
            self._reader.feed(data)
        return body

    async def aclose(self) -> None:
        """Close the underlying stream, without waiting on a peer that does not answer."""
        await trio.aclose_forcefully(self.stream)
