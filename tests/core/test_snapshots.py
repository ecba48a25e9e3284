"""Snapshots and log compaction (paper §7, thesis ch. 5): compaction keeps the log readable, a
leader sends a follower behind its first index the snapshot in chunks, and a follower installs
it safely whatever the network does to the chunks.

Small scenarios step real replicas by hand (`deliver_all` passes messages first in first out,
no time passing); the recording state machine (`AppliedLog`) shows what each replica holds.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raft import (
    AppendEntries,
    AppendEntriesResponse,
    Config,
    InstallSnapshot,
    InstallSnapshotResponse,
    Membership,
    Message,
    ProgressState,
    Snapshot,
    SnapshotMetadata,
    UsageError,
)
from sim._replica import Replica
from tests.builders import AppliedLog, deliver_all, elect, make_group, make_replica, messages_of

MEMBERS = Membership((1, 2, 3))


def to(*recipients: int) -> Callable[[Message], bool]:
    return lambda message: message.recipient in recipients


def lagging_group(entries: int = 20, **options: object) -> dict[int, Replica]:
    """Node 1 leads; node 3 missed `entries` commands that node 1 compacted away."""
    replicas = make_group(3, max_snapshot_chunk_bytes=16, **options)
    elect(replicas, 1)
    leader = replicas[1]
    for number in range(entries):
        leader.node.propose(b"cmd%d" % number)
        deliver_all(replicas, messages_of(leader), drop=to(3))
    deliver_all(replicas, messages_of(leader), drop=to(3))
    leader.snapshot_threshold = 5
    leader.node.propose(b"last")  # its Ready's advance finds a snapshot due
    deliver_all(replicas, messages_of(leader), drop=to(3))
    return replicas


def chunk_for(
    snapshot: Snapshot, offset: int, size: int, term: int = 1, sender: int = 1
) -> InstallSnapshot:
    metadata = snapshot.metadata
    data = snapshot.data[offset : offset + size]
    return InstallSnapshot(
        term,
        sender,
        2,
        metadata.index,
        metadata.term,
        metadata.membership,
        offset,
        data,
        offset + size >= len(snapshot.data),
    )


def follower(terms: list[int], commit: int, term: int = 1) -> Replica:
    return make_replica(2, terms=terms, term=term, commit=commit)


SNAPSHOT = Snapshot(SnapshotMetadata(6, 1, MEMBERS), b"0123456789")


# ---- compaction ----------------------------------------------------------------------------


def test_compaction_keeps_terms_and_later_entries_readable() -> None:
    replicas = lagging_group()
    leader = replicas[1]
    storage = leader.storage
    snapshot = storage.snapshot()

    assert snapshot is not None
    index = snapshot.metadata.index
    assert leader.node.applied_index - 5 < index <= leader.node.applied_index
    assert storage.first_index() == index + 1
    assert snapshot.metadata.term == leader.node.term
    assert snapshot.metadata.membership == MEMBERS
    assert leader.node.log_entries(1, index + 1) == []
    # Node 2 is up to date: appends after the snapshot still carry the right previous term.
    leader.node.propose(b"more")
    sent = deliver_all(replicas, messages_of(leader), drop=to(3))
    append = next(m for m in sent if isinstance(m, AppendEntries) and m.recipient == 2)
    assert append.prev_log_term == leader.node.term
    assert replicas[2].node.last_index == leader.node.last_index


def test_snapshot_due_counts_entries_applied_since_the_latest_snapshot() -> None:
    replica = make_replica(1, (1,), snapshot_threshold_entries=3)
    replica.node.campaign()
    messages_of(replica)  # the no-op commits at once in a one-node cluster
    assert not replica.node.snapshot_due()
    replica.node.propose_batch([b"a", b"b"])
    ready = replica.node.ready()
    assert not replica.node.snapshot_due()  # never while a Ready is out
    with pytest.raises(UsageError, match="between ready"):
        replica.node.snapshot_metadata()
    replica.storage.set_hard_state(ready.hard_state)  # type: ignore[arg-type]
    replica.storage.append(ready.entries)
    replica.node.advance(ready)
    assert replica.node.snapshot_due()
    metadata = replica.node.snapshot_metadata()
    assert (metadata.index, metadata.term) == (3, 1)
    replica.storage.create_snapshot(metadata, b"s")
    assert not replica.node.snapshot_due()
    with pytest.raises(UsageError, match="nothing applied since"):
        replica.node.snapshot_metadata()


def test_snapshot_due_counts_command_bytes_applied_since_the_latest_snapshot() -> None:
    replica = make_replica(1, (1,), snapshot_threshold_bytes=10)  # compacts when due
    replica.node.campaign()
    messages_of(replica)
    replica.node.propose(b"12345")
    messages_of(replica)
    assert replica.storage.snapshot() is None
    replica.node.propose(b"67890")
    messages_of(replica)
    snapshot = replica.storage.snapshot()
    assert snapshot is not None and snapshot.metadata.index == 3
    replica.node.propose(b"123456789")
    messages_of(replica)
    assert replica.storage.snapshot() is snapshot  # 9 bytes since: not yet
    assert not replica.node.snapshot_due()


def test_snapshot_thresholds_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="snapshot_threshold_bytes must be an integer >= 0"):
        Config(node_id=1, voters=(1,), snapshot_threshold_bytes=-1)
    with pytest.raises(ValueError, match="max_snapshot_chunk_bytes must be an integer >= 1"):
        Config(node_id=1, voters=(1,), max_snapshot_chunk_bytes=0)


def test_a_restarted_replica_restores_the_snapshot_and_applies_only_what_follows() -> None:
    replicas = lagging_group()
    leader = replicas[1]
    before = list(leader.state_machine.commands)  # type: ignore[attr-defined]
    snapshot = leader.storage.snapshot()
    assert snapshot is not None

    leader.crash()
    leader.restart()

    assert leader.node.applied_index == snapshot.metadata.index
    messages_of(leader)
    assert leader.state_machine.commands == before  # type: ignore[attr-defined]


# ---- sending: a follower behind the leader's first index -----------------------------------


def test_a_follower_behind_the_first_index_gets_the_snapshot_in_chunks() -> None:
    replicas = lagging_group()
    leader, lagging = replicas[1], replicas[3]
    snapshot = leader.storage.snapshot()
    assert snapshot is not None and len(snapshot.data) > 3 * 16

    leader.node.tick()  # a heartbeat; its answer makes the leader probe node 3
    sent = deliver_all(replicas, messages_of(leader))

    chunks = [m for m in sent if isinstance(m, InstallSnapshot)]
    assert len(chunks) == -(-len(snapshot.data) // 16)
    assert [c.offset for c in chunks] == list(range(0, len(snapshot.data), 16))
    assert all(len(c.data) <= 16 for c in chunks) and chunks[-1].done
    assert lagging.storage.snapshot() == snapshot
    assert lagging.state_machine.commands == leader.state_machine.commands  # type: ignore[attr-defined]
    assert lagging.node.commit_index == leader.node.commit_index
    progress = leader.node.progress()[3]
    assert progress.state is ProgressState.REPLICATE
    assert progress.match_index == leader.node.last_index


def test_snapshot_progress_is_paused_and_counts_no_match_until_acknowledged() -> None:
    replicas = lagging_group()
    leader = replicas[1]
    leader.node.tick()
    sent = deliver_all(replicas, messages_of(leader), drop=lambda m: isinstance(m, InstallSnapshot))

    assert any(isinstance(m, InstallSnapshot) for m in sent)
    progress = leader.node.progress()[3]
    assert progress.state is ProgressState.SNAPSHOT
    assert progress.is_paused()  # one chunk in flight at a time
    assert progress.match_index < leader.storage.first_index() - 1  # the election's no-op only
    # More proposals send node 3 nothing while its chunk is outstanding.
    leader.node.propose(b"x")
    assert not [m for m in messages_of(leader) if m.recipient == 3]


def test_lost_chunks_are_sent_again_after_the_next_heartbeat_response() -> None:
    replicas = lagging_group()
    leader, lagging = replicas[1], replicas[3]
    lost: set[int] = set()

    def lose_each_chunk_once(message: Message) -> bool:
        if isinstance(message, InstallSnapshot) and message.offset not in lost:
            lost.add(message.offset)
            return True
        return False

    for _ in range(20):
        leader.node.tick()
        deliver_all(replicas, messages_of(leader), drop=lose_each_chunk_once)
    assert lagging.storage.snapshot() == leader.storage.snapshot()
    assert lagging.node.commit_index == leader.node.commit_index


def test_duplicated_and_reordered_chunks_are_answered_with_the_wanted_offset() -> None:
    replica = follower([1, 1], commit=1)
    node = replica.node

    node.step(chunk_for(SNAPSHOT, 4, 4))  # out of order: nothing received yet
    assert messages_of(replica) == [InstallSnapshotResponse(1, 2, 1, 6, 0)]
    node.step(chunk_for(SNAPSHOT, 0, 4))
    assert messages_of(replica) == [InstallSnapshotResponse(1, 2, 1, 6, 4)]
    node.step(chunk_for(SNAPSHOT, 0, 4))  # a duplicate
    assert messages_of(replica) == [InstallSnapshotResponse(1, 2, 1, 6, 4)]
    node.step(chunk_for(SNAPSHOT, 8, 4))  # a gap
    assert messages_of(replica) == [InstallSnapshotResponse(1, 2, 1, 6, 4)]
    node.step(chunk_for(SNAPSHOT, 4, 4))
    assert messages_of(replica) == [InstallSnapshotResponse(1, 2, 1, 6, 8)]
    node.step(chunk_for(SNAPSHOT, 8, 4))

    ready = node.ready()
    assert ready.snapshot == SNAPSHOT
    assert ready.messages == (AppendEntriesResponse(1, 2, 1, True, 6),)


def test_a_new_leader_restarts_an_install_from_offset_zero() -> None:
    replica = follower([1, 1], commit=1)
    node = replica.node
    node.step(chunk_for(SNAPSHOT, 0, 4, term=1, sender=1))
    messages_of(replica)

    node.step(chunk_for(SNAPSHOT, 4, 4, term=2, sender=3))  # the old leader's partial is void
    assert messages_of(replica) == [InstallSnapshotResponse(2, 2, 3, 6, 0)]
    for offset in (0, 4, 8):
        node.step(chunk_for(SNAPSHOT, offset, 4, term=2, sender=3))
    assert node.ready().snapshot == SNAPSHOT


def test_a_chunk_of_another_snapshot_starts_over() -> None:
    replica = follower([1, 1], commit=1)
    node = replica.node
    node.step(chunk_for(SNAPSHOT, 0, 4))
    messages_of(replica)
    newer = Snapshot(SnapshotMetadata(8, 1, MEMBERS), b"abcdefgh")

    node.step(chunk_for(newer, 4, 4))
    assert messages_of(replica) == [InstallSnapshotResponse(1, 2, 1, 8, 0)]
    node.step(chunk_for(newer, 0, 8))
    assert node.ready().snapshot == newer


def test_a_leader_answered_with_a_stale_chunk_offset_does_not_get_stuck() -> None:
    replicas = lagging_group()
    leader, lagging = replicas[1], replicas[3]
    leader.node.tick()
    sent = deliver_all(replicas, messages_of(leader))
    answers = [m for m in sent if isinstance(m, InstallSnapshotResponse)]
    # A delayed, duplicated answer arrives after the install: the leader ignores it.
    leader.node.step(answers[0])
    assert leader.node.progress()[3].state is ProgressState.REPLICATE
    assert lagging.node.commit_index == leader.node.commit_index


# ---- installing ----------------------------------------------------------------------------


def test_a_follower_ignores_a_snapshot_no_newer_than_its_commit_index() -> None:
    replica = follower([1] * 8, commit=7)
    node = replica.node

    node.step(chunk_for(SNAPSHOT, 0, 10))

    ready = node.ready()
    assert ready.snapshot is None
    assert ready.messages == (AppendEntriesResponse(1, 2, 1, True, 7),)
    node.advance(ready)
    assert node.last_index == 8 and node.commit_index == 7


def test_a_follower_whose_log_holds_the_last_entry_keeps_its_suffix() -> None:
    replica = follower([1] * 8, commit=2)
    node = replica.node

    node.step(chunk_for(SNAPSHOT, 0, 10))

    ready = node.ready()
    assert ready.snapshot is None  # nothing to install: it commits its own entries up to 6
    assert [e.index for e in ready.committed_entries][-1] == 6
    assert ready.messages == (AppendEntriesResponse(1, 2, 1, True, 6),)
    node.advance(ready)
    assert node.last_index == 8 and node.commit_index == 6


def test_a_follower_with_a_conflicting_log_discards_it_for_the_snapshot() -> None:
    replica = follower([1, 1, 1, 1, 1, 2, 2], commit=2, term=3)
    node = replica.node

    node.step(chunk_for(SNAPSHOT, 0, 10, term=3))
    replica.process_ready()

    assert replica.storage.snapshot() == SNAPSHOT
    assert node.last_index == 6 and node.commit_index == 6 and node.applied_index == 6
    assert replica.storage.first_index() == 7
    assert replica.storage.initial_state().commit == 6
    node.step(AppendEntries(3, 1, 2, 6, 1, (), 6))
    assert messages_of(replica) == [AppendEntriesResponse(3, 2, 1, True, 6)]


def test_the_install_is_acknowledged_only_in_the_ready_that_carries_it() -> None:
    replica = follower([1, 1], commit=1)
    node = replica.node
    readies = []
    for offset in (0, 4, 8):
        node.step(chunk_for(SNAPSHOT, offset, 4))
        ready = node.ready()
        readies.append(ready)
        node.advance(ready)

    acknowledging = [
        r for r in readies if any(isinstance(m, AppendEntriesResponse) for m in r.messages)
    ]
    assert acknowledging == [readies[-1]]
    assert readies[-1].snapshot == SNAPSHOT
    assert [r.snapshot for r in readies[:-1]] == [None, None]


def test_an_installed_snapshot_goes_to_the_state_machine() -> None:
    source = AppliedLog()
    for command in (b"a", b"b", b"c"):
        source.apply(command)
    snapshot = Snapshot(SnapshotMetadata(6, 1, MEMBERS), source.snapshot())
    replica = follower([1, 1], commit=1)

    replica.node.step(chunk_for(snapshot, 0, 100))
    replica.process_ready()

    assert replica.state_machine.commands == [b"a", b"b", b"c"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "bad",
    [
        chunk_for(SNAPSHOT, 0, 4).__class__(1, 1, 2, 6, 1, MEMBERS, -4, b"xxxx", False),
        chunk_for(SNAPSHOT, 0, 4).__class__(1, 1, 2, 6, 1, MEMBERS, 99, b"xxxx", True),
        chunk_for(SNAPSHOT, 0, 4).__class__(1, 1, 2, 6, 5, MEMBERS, 0, b"xxxx", True),
        chunk_for(SNAPSHOT, 0, 4).__class__(1, 1, 2, 6, 0, MEMBERS, 0, b"xxxx", True),
        chunk_for(SNAPSHOT, 0, 4).__class__(1, 1, 2, 6, 1, (1, 2), 0, b"xxxx", True),  # type: ignore[arg-type]
        chunk_for(SNAPSHOT, 0, 4).__class__(1, 1, 2, -3, 1, MEMBERS, 0, b"xxxx", True),
    ],
    ids=["negative offset", "offset past received", "future term", "term 0", "membership", "index"],
)
def test_bad_chunks_never_crash_or_install(bad: InstallSnapshot) -> None:
    replica = follower([1, 1], commit=1)

    replica.node.step(bad)
    ready = replica.node.ready()

    assert ready.snapshot is None
    assert replica.node.commit_index == 1


def test_a_chunk_from_a_stale_term_is_refused_so_its_leader_steps_down() -> None:
    replica = follower([1, 1], commit=1, term=4)

    replica.node.step(chunk_for(SNAPSHOT, 0, 10, term=1))

    assert messages_of(replica) == [AppendEntriesResponse(4, 2, 1, False)]
    assert replica.storage.snapshot() is None


@pytest.mark.parametrize("wanted", [-5, 10_000])
def test_a_leader_sends_a_valid_chunk_whatever_offset_a_follower_asks_for(wanted: int) -> None:
    replicas = lagging_group()
    leader = replicas[1]
    snapshot = leader.storage.snapshot()
    assert snapshot is not None
    leader.node.tick()
    deliver_all(replicas, messages_of(leader), drop=lambda m: isinstance(m, InstallSnapshot))
    index = leader.node.progress()[3].snapshot_index

    leader.node.step(InstallSnapshotResponse(leader.node.term, 3, 1, index, wanted))

    (chunk,) = [m for m in messages_of(leader) if isinstance(m, InstallSnapshot)]
    assert 0 <= chunk.offset <= len(snapshot.data)
    assert chunk.data == snapshot.data[chunk.offset : chunk.offset + 16]
