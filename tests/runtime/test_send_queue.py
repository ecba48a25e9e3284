"""A peer's send queue: bounded in frames and bytes, oldest dropped first, batches for writes."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raft.runtime._send_queue import SendQueue


def test_a_full_queue_drops_its_oldest_frames() -> None:
    queue = SendQueue(max_messages=3, max_bytes=1000)
    assert [queue.push(bytes([n])) for n in range(5)] == [0, 0, 0, 1, 1]
    assert len(queue) == 3


async def test_the_byte_bound_drops_as_many_as_it_takes_but_keeps_the_newest() -> None:
    queue = SendQueue(max_messages=100, max_bytes=10)
    for n in range(5):
        queue.push(bytes([n]) * 3)
    assert queue.push(b"x" * 9) == 3
    assert queue.push(b"y" * 20) == 1  # alone over the bound: still sent
    assert await queue.take(10, 100) == [b"y" * 20]


async def test_take_waits_for_a_frame_and_batches_within_its_limits() -> None:
    queue = SendQueue(max_messages=100, max_bytes=1000)
    async with trio.open_nursery() as nursery:
        batches: list[list[bytes]] = []

        async def taker() -> None:
            batches.append(await queue.take(2, 1000))

        nursery.start_soon(taker)
        await trio.testing.wait_all_tasks_blocked()
        assert batches == []
        queue.push(b"a")
    assert batches == [[b"a"]]
    for frame in (b"bb", b"cc", b"dd", b"eeee"):
        queue.push(frame)
    assert await queue.take(2, 1000) == [b"bb", b"cc"]
    assert await queue.take(10, 5) == [b"dd"]
    assert await queue.take(10, 1) == [b"eeee"]  # one frame however large
    assert len(queue) == 0


def test_a_queue_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="needs room"):
        SendQueue(max_messages=0, max_bytes=10)
