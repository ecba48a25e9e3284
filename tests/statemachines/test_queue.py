"""The work queue: claims that time out in log order, claim tokens, no item lost or acked twice."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raft import StateMachine
from statemachines import (
    QUEUE_FORMAT_VERSION,
    QueueResult,
    WorkQueue,
    queue_ack,
    queue_claim,
    queue_enqueue,
    queue_release,
)
from tests.statemachines.batteries import (
    assert_applies_safely,
    assert_restore_refuses,
    corrupted,
    msgpack_arrays,
)


def test_claim_takes_the_oldest_item_and_ack_removes_it() -> None:
    queue: StateMachine = WorkQueue()
    assert queue.apply(queue_enqueue("jobs", b"one", now_ns=0)) == QueueResult(ok=True, item=1)
    assert queue.apply(queue_enqueue("jobs", b"two", now_ns=0)) == QueueResult(ok=True, item=2)
    claim = queue.apply(queue_claim("jobs", "w", visibility_ns=100, now_ns=10))
    assert claim == QueueResult(ok=True, item=1, payload=b"one", token=1, deadline_ns=110)
    assert queue.apply(queue_ack("jobs", 1, 1, now_ns=20)) == QueueResult(ok=True, item=1, token=1)
    assert queue.apply(queue_ack("jobs", 1, 1, now_ns=21)) == QueueResult(ok=False)


def test_an_unacked_claim_becomes_claimable_again_and_its_ack_goes_stale() -> None:
    queue = WorkQueue()
    queue.apply(queue_enqueue("jobs", b"one", now_ns=0))
    queue.apply(queue_claim("jobs", "dies", visibility_ns=100, now_ns=0))
    assert queue.apply(queue_claim("jobs", "w", visibility_ns=100, now_ns=99)) == QueueResult(
        ok=False
    )
    again = queue.apply(queue_claim("jobs", "w", visibility_ns=100, now_ns=100))
    assert again == QueueResult(ok=True, item=1, payload=b"one", token=2, deadline_ns=200)
    assert queue.apply(queue_ack("jobs", 1, 1, now_ns=101)) == QueueResult(ok=False)
    assert queue.apply(queue_ack("jobs", 1, 2, now_ns=102)).ok
    assert queue.items("jobs") == []


def test_a_late_ack_is_taken_while_no_one_reclaimed_the_item() -> None:
    queue = WorkQueue()
    queue.apply(queue_enqueue("jobs", b"one", now_ns=0))
    queue.apply(queue_claim("jobs", "slow", visibility_ns=10, now_ns=0))
    assert queue.apply(queue_ack("jobs", 1, 1, now_ns=50)).ok


def test_release_gives_a_live_claim_back_at_once() -> None:
    queue = WorkQueue()
    queue.apply(queue_enqueue("jobs", b"one", now_ns=0))
    queue.apply(queue_claim("jobs", "w", visibility_ns=100, now_ns=0))
    assert queue.items("jobs") == [(1, b"one", "w")]
    assert queue.apply(queue_release("jobs", 1, 1, now_ns=1)).ok
    assert queue.items("jobs") == [(1, b"one", None)]
    assert queue.apply(queue_claim("jobs", "v", visibility_ns=100, now_ns=2)).token == 2


def test_queues_are_separate_and_time_never_moves_back() -> None:
    queue = WorkQueue()
    queue.apply(queue_enqueue("a", b"x", now_ns=50))
    assert queue.apply(queue_claim("b", "w", visibility_ns=1, now_ns=0)) == QueueResult(ok=False)
    claim = queue.apply(queue_claim("a", "w", visibility_ns=10, now_ns=0))
    assert claim.deadline_ns == 60 and queue.now_ns == 50


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"\x05", "unsupported command version 5"),
        (bytes([QUEUE_FORMAT_VERSION]) + b"\x93\xa7enqueue\xa1q\x00", "takes 3 fields"),
        (bytes([QUEUE_FORMAT_VERSION]) + b"\x94\xa7enqueue\xa1q\xa1x\x00", "payload must be bytes"),
        (
            bytes([QUEUE_FORMAT_VERSION]) + b"\x95\xa5claim\xa1q\xa1w\x00\x00",
            "visibility_ns must be positive",
        ),
    ],
)
def test_malformed_commands_give_errors(command: bytes, error: str) -> None:
    result = assert_applies_safely(WorkQueue(), command)
    assert result.error is not None and error in result.error, result.error


def populated() -> WorkQueue:
    queue = WorkQueue()
    for payload in (b"a", b"b", b"c"):
        queue.apply(queue_enqueue("q", payload, now_ns=0))
    queue.apply(queue_claim("q", "w", visibility_ns=10, now_ns=5))
    queue.apply(queue_claim("q", "w", visibility_ns=100, now_ns=6))
    queue.apply(queue_ack("q", 2, 2, now_ns=7))
    return queue


TIMES = st.integers(0, 2**63 - 1)
valid_commands = st.one_of(
    st.builds(queue_enqueue, st.sampled_from("qr"), st.binary(max_size=4), now_ns=TIMES),
    st.builds(
        queue_claim,
        st.sampled_from("qr"),
        st.just("w"),
        visibility_ns=st.integers(1, 2**63 - 1),
        now_ns=TIMES,
    ),
    st.builds(queue_ack, st.sampled_from("qr"), st.integers(0, 5), st.integers(0, 5), now_ns=TIMES),
    st.builds(
        queue_release, st.sampled_from("qr"), st.integers(0, 5), st.integers(0, 5), now_ns=TIMES
    ),
)


@given(st.binary() | st.binary().map(lambda body: bytes([QUEUE_FORMAT_VERSION]) + body))
def test_arbitrary_bytes_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(msgpack_arrays(["enqueue", "claim", "ack", "release"]))
def test_arbitrary_msgpack_arrays_never_raise_from_apply(command: bytes) -> None:
    assert_applies_safely(populated(), command)


@given(valid_commands, st.data())
def test_corrupted_valid_commands_never_raise_from_apply(
    command: bytes, data: st.DataObject
) -> None:
    assert_applies_safely(populated(), corrupted(data, command))


@given(st.binary())
def test_restore_takes_only_queue_snapshots(data: bytes) -> None:
    assert_restore_refuses(WorkQueue, populated(), data)


@given(st.data())
def test_restore_refuses_corrupted_snapshots(data: st.DataObject) -> None:
    assert_restore_refuses(WorkQueue, populated(), corrupted(data, populated().snapshot()))


# --- against a model ---------------------------------------------------------------------------


@attrs.define
class Item:
    id: int
    payload: bytes
    token: int = 0
    worker: str = ""
    deadline: int = -1  # never claimed: claimable


class WorkQueueMatchesModel(RuleBasedStateMachine):
    """Random commands (stamps that mostly advance but may lag) against a list of items; every
    enqueued item is acked at most once and is never lost until then."""

    workers = st.sampled_from(["w1", "w2"])
    steps = st.integers(min_value=-10, max_value=20)

    @initialize()
    def start(self) -> None:
        self.queue = WorkQueue()
        self.items: list[Item] = []
        self.items_made = 0
        self.tokens = 0
        self.stamp = 0
        self.now = 0
        self.acked: list[int] = []
        self.claims: list[tuple[int, int]] = [(0, 0)]
        self.replica = WorkQueue()  # restored from a snapshot now and then, then kept applying

    def stamped(self, step: int) -> int:
        self.stamp = max(0, self.stamp + step)
        self.now = max(self.now, self.stamp)
        return self.stamp

    def check(self, command: bytes, expected: QueueResult) -> None:
        assert self.queue.apply(command) == expected
        assert self.replica.apply(command) == expected

    @rule(payload=st.binary(max_size=3), step=steps)
    def enqueue(self, payload: bytes, step: int) -> None:
        now = self.stamped(step)
        self.items_made += 1
        self.items.append(Item(self.items_made, payload))
        self.check(
            queue_enqueue("q", payload, now_ns=now), QueueResult(ok=True, item=self.items_made)
        )

    @rule(worker=workers, visibility=st.integers(1, 30), step=steps)
    def claim(self, worker: str, visibility: int, step: int) -> None:
        now = self.stamped(step)
        free = [item for item in self.items if item.deadline <= self.now]
        if not free:
            expected = QueueResult(ok=False)
        else:
            item = free[0]
            self.tokens += 1
            item.token, item.worker, item.deadline = self.tokens, worker, self.now + visibility
            self.claims.append((item.id, item.token))
            expected = QueueResult(
                ok=True,
                item=item.id,
                payload=item.payload,
                token=item.token,
                deadline_ns=item.deadline,
            )
        self.check(queue_claim("q", worker, visibility_ns=visibility, now_ns=now), expected)

    def find(self, item_id: int, token: int) -> Item | None:
        return next((i for i in self.items if i.id == item_id and i.token == token and token), None)

    @rule(data=st.data(), step=steps)
    def ack(self, data: st.DataObject, step: int) -> None:
        item_id, token = data.draw(st.sampled_from(self.claims))
        now = self.stamped(step)
        item = self.find(item_id, token)
        if item is None:
            expected = QueueResult(ok=False)
        else:
            self.items.remove(item)
            self.acked.append(item_id)
            expected = QueueResult(ok=True, item=item_id, token=token)
        self.check(queue_ack("q", item_id, token, now_ns=now), expected)

    @rule(data=st.data(), step=steps)
    def release(self, data: st.DataObject, step: int) -> None:
        item_id, token = data.draw(st.sampled_from(self.claims))
        now = self.stamped(step)
        item = self.find(item_id, token)
        if item is None or item.deadline <= self.now:
            expected = QueueResult(ok=False)
        else:
            item.token, item.worker, item.deadline = 0, "", -1
            expected = QueueResult(ok=True, item=item_id, token=token)
        self.check(queue_release("q", item_id, token, now_ns=now), expected)

    @rule()
    def restore_the_replica(self) -> None:
        self.replica = WorkQueue()
        self.replica.restore(self.queue.snapshot())

    @invariant()
    def nothing_lost_nothing_acked_twice(self) -> None:
        assert len(self.acked) == len(set(self.acked))
        held = [item for item, _, _ in self.queue.items("q")]
        assert sorted(held + self.acked) == list(range(1, self.items_made + 1))
        assert self.queue.items("q") == [
            (i.id, i.payload, i.worker if i.deadline > self.now else None) for i in self.items
        ]
        assert self.replica.snapshot() == self.queue.snapshot()


TestWorkQueueMatchesModel = WorkQueueMatchesModel.TestCase
TestWorkQueueMatchesModel.settings = settings(max_examples=200, stateful_step_count=40)
