"""A peer's queue of encoded frames: bounded in messages and in bytes, oldest dropped first."""

from __future__ import annotations

from collections import deque

import trio


class SendQueue:
    """Frames waiting to be written to one peer.

    `push` never waits: when the queue would exceed `max_messages` frames or `max_bytes` bytes,
    the oldest frames go (after a stall, the newest state is what a peer needs). `take` waits
    for frames and hands over as many as fit in one write.
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(
                f"a send queue needs room: max_messages={max_messages}, max_bytes={max_bytes}"
            )
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._frames: deque[bytes] = deque()
        self._bytes = 0
        self._arrived = trio.Event()

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: bytes) -> int:
        """Queue `frame`; returns how many older frames were dropped to make room."""
        frames = self._frames
        frames.append(frame)
        self._bytes += len(frame)
        dropped = 0
        while len(frames) > 1 and (
            len(frames) > self._max_messages or self._bytes > self._max_bytes
        ):
            self._bytes -= len(frames.popleft())
            dropped += 1
        self._arrived.set()
        return dropped

    async def take(self, max_frames: int, max_bytes: int) -> list[bytes]:
        """Wait for frames, then remove and return the oldest: at least one, and beyond the
        first no more than `max_frames` frames or `max_bytes` bytes in all."""
        while not self._frames:
            self._arrived = trio.Event()
            await self._arrived.wait()
        frames = self._frames
        batch = [frames.popleft()]
        size = len(batch[0])
        while frames and len(batch) < max_frames and size + len(frames[0]) <= max_bytes:
            batch.append(frames.popleft())
            size += len(batch[-1])
        self._bytes -= size
        return batch
