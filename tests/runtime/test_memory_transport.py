"""The in-memory transport: immediate, bounded, deterministic delivery, and enough of a network
for real Raft nodes to elect a leader under trio's MockClock."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from raft.core import Config, Heartbeat, Message, RaftNode, Role
from raft.runtime import MemoryHub, MemoryTransport, Transport
from raft.storage import MemoryStorage


def _heartbeat(sender: int, recipient: int, commit: int = 0) -> Heartbeat:
    return Heartbeat(term=1, sender=sender, recipient=recipient, commit=commit)


def _drain(transport: MemoryTransport) -> list[Message]:
    out: list[Message] = []
    while True:
        try:
            out.append(transport.incoming.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_messages_arrive_at_once_in_order_and_are_counted() -> None:
    hub = MemoryHub()
    one, two = hub.connect(1), hub.connect(2)
    for commit in range(3):
        one.send(_heartbeat(1, 2, commit))
    assert _drain(two) == [_heartbeat(1, 2, c) for c in range(3)]
    assert one.counters.sent == 3
    assert two.counters.received == 3


async def test_unknown_cut_full_and_closed_all_drop_and_count() -> None:
    hub = MemoryHub(queue_size=2)
    one, two = hub.connect(1), hub.connect(2)
    one.send(_heartbeat(1, 9))
    hub.set_link(1, 2, up=False)
    one.send(_heartbeat(1, 2))
    hub.set_link(1, 2, up=True)
    for _ in range(3):
        one.send(_heartbeat(1, 2))
    assert one.counters.as_dict() | {"sent": 2, "dropped": 3} == one.counters.as_dict()
    await two.aclose()
    one.send(_heartbeat(1, 2))
    await one.aclose()
    one.send(_heartbeat(1, 2))
    assert one.counters.dropped == 5


def test_loss_is_drawn_from_the_seeded_rng() -> None:
    def survivors(seed: int) -> list[int]:
        hub = MemoryHub(loss=0.5, rng=random.Random(seed), queue_size=100)
        one, two = hub.connect(1), hub.connect(2)
        for commit in range(100):
            one.send(_heartbeat(1, 2, commit))
        return [m.commit for m in _drain(two) if isinstance(m, Heartbeat)]

    assert survivors(7) == survivors(7)
    assert 20 < len(survivors(7)) < 80


def test_round_trip_mode_hands_over_an_equal_decoded_copy() -> None:
    hub = MemoryHub(round_trip=True)
    one, two = hub.connect(1), hub.connect(2)
    sent = _heartbeat(1, 2, 5)
    one.send(sent)
    [received] = _drain(two)
    assert received == sent
    assert received is not sent


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="loss"):
        MemoryHub(loss=1.5)
    with pytest.raises(ValueError, match="rng"):
        MemoryHub(loss=0.1)
    with pytest.raises(ValueError, match="queue_size"):
        MemoryHub(queue_size=0)


async def _run_node(node: RaftNode, storage: MemoryStorage, transport: Transport) -> None:
    """A minimal driver: tick every 10 ms, step what arrives, follow the Ready contract."""

    async def ticker() -> None:
        while True:
            await trio.sleep(0.01)
            node.tick()
            handle_ready()

    def handle_ready() -> None:
        while node.has_ready():
            ready = node.ready()
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            storage.append(ready.entries)
            for message in ready.messages:
                transport.send(message)
            node.advance(ready)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        async for message in transport.incoming:
            node.step(message)
            handle_ready()


async def test_three_raft_nodes_elect_one_leader_over_the_hub(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub(loss=0.1, rng=random.Random(3), round_trip=True)
    voters = (1, 2, 3)
    storages = {i: MemoryStorage() for i in voters}
    nodes = {
        i: RaftNode(Config(node_id=i, voters=voters), storages[i], random.Random(i)) for i in voters
    }
    async with trio.open_nursery() as nursery:
        for i, node in nodes.items():
            nursery.start_soon(_run_node, node, storages[i], hub.connect(i))
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    roles = [node.role for node in nodes.values()]
    assert roles.count(Role.LEADER) == 1
    assert {node.leader_id for node in nodes.values()} == {roles.index(Role.LEADER) + 1}
