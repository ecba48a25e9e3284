"""Throughput of the TCP transport: AppendEntries of 16 entries of 16 bytes from one transport
to another over loopback, with the HMAC handshake, queued as fast as `send` takes them and
counted as they come out of the receiver's `incoming` channel. For scale, also the codec alone
(encode, frame and decode in one thread, no sockets).

Prints one JSON line per case, each the median of `--repeat` runs:
    {"case": "tcp", "messages_per_s": ..., "entries_per_s": ..., "dropped": 0, ...}
Usage: python benchmarks/transport_throughput.py [--messages 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import trio

from raft import AppendEntries, Entry
from raft.runtime import (
    FrameReader,
    TcpTransport,
    decode_message,
    encode_message,
    encode_preamble,
    frame,
)

ENTRIES = 16
COMMAND = b"0123456789abcdef"
CLUSTER = "bench"
SECRET = b"benchmark secret, not for production"


def _message(index: int) -> AppendEntries:
    first = index * ENTRIES + 1
    entries = tuple(Entry(1, first + i, COMMAND) for i in range(ENTRIES))
    return AppendEntries(1, 1, 2, first - 1, 1, entries, first - 1)


async def _tcp_once(messages: list[AppendEntries]) -> tuple[float, int]:
    """Seconds to move every message from node 1 to node 2, and how many were dropped."""

    def transport(node_id: int) -> TcpTransport:
        return TcpTransport(
            node_id=node_id,
            cluster_id=CLUSTER,
            peers={},
            rng=random.Random(node_id),
            secret=SECRET,
            queue_size=len(messages),
        )

    async with transport(1) as one, transport(2) as two:
        one.add_peer(2, ("127.0.0.1", two.port))
        one.send(messages[0])  # connect and handshake outside the timed part
        await two.incoming.receive()
        start = time.perf_counter()
        for message in messages[1:]:
            one.send(message)
        received = 1
        while received < len(messages):
            await two.incoming.receive()
            received += 1
            while received < len(messages):  # take what has arrived, as a server would
                try:
                    two.incoming.receive_nowait()
                except trio.WouldBlock:
                    break
                received += 1
        return time.perf_counter() - start, one.counters.dropped


def _codec_once(messages: list[AppendEntries]) -> float:
    reader = FrameReader(CLUSTER)
    reader.feed(encode_preamble(CLUSTER))
    start = time.perf_counter()
    for message in messages:
        reader.feed(frame(encode_message(message)))
        body = reader.next_body()
        assert body is not None
        decode_message(body)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    messages = [_message(i) for i in range(args.messages + 1)]

    runs = [trio.run(_tcp_once, messages) for _ in range(args.repeat)]
    seconds = statistics.median(s for s, _ in runs)
    codec = statistics.median(_codec_once(messages[1:]) for _ in range(args.repeat))
    size = len(frame(encode_message(messages[1])))
    for case, elapsed, dropped in (
        ("tcp", seconds, max(d for _, d in runs)),
        ("codec", codec, 0),
    ):
        rate = args.messages / elapsed
        print(
            json.dumps(
                {
                    "case": case,
                    "messages": args.messages,
                    "entries_per_message": ENTRIES,
                    "entry_bytes": len(COMMAND),
                    "frame_bytes": size,
                    "messages_per_s": round(rate),
                    "entries_per_s": round(rate * ENTRIES),
                    "mb_per_s": round(rate * size / 1e6, 1),
                    "dropped": dropped,
                    "repeat": args.repeat,
                }
            )
        )


if __name__ == "__main__":
    main()
