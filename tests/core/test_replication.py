"""Paper tests for log replication (§5.3) and commitment (§5.4.2), plus the flow control the core
adds on top of the paper: fast backtracking, pipelining, batching and recovery from lost messages.

Small scenarios step real replicas by hand (`deliver_all` passes messages first in first out, no
time passing); whole-run properties use the seeded simulator.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    Message,
    ProgressState,
    Ready,
    Role,
)
from sim._cluster import Cluster
from sim._invariants import election_safety, log_matching
from sim._network import LinkFaults
from sim._replica import Replica
from tests.builders import (
    AppliedLog,
    deliver_all,
    elect,
    make_cluster,
    make_group,
    make_leader,
    make_replica,
    messages_of,
    terms_of,
)

SECOND = 1_000_000_000


def to(*recipients: int) -> Callable[[Message], bool]:
    """A `drop` that loses every message to one of `recipients`."""
    return lambda message: message.recipient in recipients


def commit_only(message: Message) -> bool:
    """A `drop` that loses the messages that carry only a commit index: heartbeats (which
    also announce a new commit) and AppendEntries without entries."""
    return isinstance(message, Heartbeat) or (
        isinstance(message, AppendEntries) and not message.entries
    )


def appends_to(recipient: int, messages: Sequence[Message]) -> list[AppendEntries]:
    return [m for m in messages if isinstance(m, AppendEntries) and m.recipient == recipient]


def rejections_from(sender: int, messages: Sequence[Message]) -> list[AppendEntriesResponse]:
    return [
        m
        for m in messages
        if isinstance(m, AppendEntriesResponse) and m.sender == sender and not m.success
    ]


def log_of(replica: Replica) -> list[Entry]:
    node = replica.node
    return node.log_entries(1, node.last_index + 1)


def take_ready(replica: Replica) -> Ready:
    """Persist the replica's pending Ready and advance past it (nothing is applied); return it."""
    node = replica.node
    ready = node.ready()
    if ready.hard_state is not None:
        replica.storage.set_hard_state(ready.hard_state)
    replica.storage.append(ready.entries)
    node.advance(ready)
    return ready


def stored_terms(replica: Replica) -> list[int]:
    storage = replica.storage
    return [storage.term(index) for index in range(1, storage.last_index() + 1)]


# ---- §5.3: replicate, commit, apply ---------------------------------------------------------


def test_leader_commits_an_entry_once_a_majority_holds_it() -> None:
    """§5.3: an entry is committed once the leader that created it has replicated it on a
    majority of the servers; not before."""
    group = make_group(5)
    elect(group)
    leader = group[1]
    _, index = leader.node.propose(b"x")
    appends = messages_of(leader)

    deliver_all(group, appends_to(2, appends), drop=to(3, 4, 5))
    assert leader.node.commit_index == index - 1, "2 of 5 hold it: not committed"
    assert group[2].node.last_index == index

    deliver_all(group, appends_to(3, appends), drop=to(4, 5))
    assert leader.node.commit_index == index, "3 of 5 hold it: committed"
    assert group[4].node.last_index == index - 1


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda seed: f"seed={seed}")
def test_committed_entries_are_applied_on_every_node_in_order_exactly_once(seed: int) -> None:
    """§5.3: once an entry is committed every server applies it to its state machine, in log
    order; a command is applied once per state machine."""
    applied: dict[int, list[tuple[int, bytes]]] = {1: [], 2: [], 3: []}

    def record(node_id: int, entry: Entry, result: object) -> None:
        if entry.kind == EntryKind.COMMAND:
            applied[node_id].append((entry.index, entry.data))

    cluster = make_cluster(3, seed=seed, on_apply=record)
    leader = cluster.elect()
    proposed = [cluster.propose(leader, b"c%d" % i) for i in range(10)]
    cluster.settle()
    cluster.run_for(5 * cluster.tick_ns)

    expected = [(index, b"c%d" % i) for i, (_, index) in enumerate(proposed)]
    for node_id, replica in cluster.replicas.items():
        assert applied[node_id] == expected, f"node {node_id} (seed {seed})"
        assert isinstance(replica.state_machine, AppliedLog)
        assert replica.state_machine.commands == [data for _, data in expected]


def test_commit_index_reaches_followers_on_the_next_append() -> None:
    """§5.3: the leader includes the highest index it knows committed in future AppendEntries,
    and a follower commits up to it (but not beyond its last new entry, Figure 2)."""
    group = make_group(3)
    elect(group)
    leader = group[1]
    _, first = leader.node.propose(b"a")
    deliver_all(group, messages_of(leader), drop=commit_only)
    assert leader.node.commit_index == first
    assert [group[2].node.commit_index, group[3].node.commit_index] == [first - 1, first - 1]

    _, second = leader.node.propose(b"b")
    deliver_all(group, messages_of(leader), drop=commit_only)

    assert group[2].node.commit_index == first, "the append of b carried a's commit"
    assert group[3].node.commit_index == first
    assert leader.node.commit_index == second


def test_a_new_commit_index_rides_on_the_next_heartbeat_not_a_message_of_its_own() -> None:
    """§5.3: the leader includes the commit index in future AppendEntries, heartbeats included;
    committing an entry sends nothing extra, and the next heartbeat brings it to followers."""
    group = make_group(3)
    elect(group)
    leader = group[1]
    _, index = leader.node.propose(b"a")

    sent = deliver_all(group, messages_of(leader))

    assert sorted(type(m).__name__ for m in sent) == [
        "AppendEntries",
        "AppendEntries",
        "AppendEntriesResponse",
        "AppendEntriesResponse",
    ]
    assert leader.node.commit_index == index
    assert [group[2].node.commit_index, group[3].node.commit_index] == [index - 1, index - 1]

    leader.node.tick()
    deliver_all(group, messages_of(leader))

    assert [group[2].node.commit_index, group[3].node.commit_index] == [index, index]


def test_commit_index_reaches_followers_on_a_heartbeat() -> None:
    """§5.3: with nothing new to send, the leader's heartbeat carries the commit index."""
    group = make_group(3)
    elect(group)
    leader = group[1]
    _, index = leader.node.propose(b"a")
    deliver_all(group, messages_of(leader), drop=commit_only)
    assert group[2].node.commit_index == index - 1

    leader.node.tick()
    deliver_all(group, messages_of(leader))

    assert [group[2].node.commit_index, group[3].node.commit_index] == [index, index]


def test_heartbeat_commit_never_exceeds_what_the_follower_is_known_to_hold() -> None:
    """Figure 2: a follower may only commit entries it holds in agreement with the leader, so a
    heartbeat carries min(commit, matchIndex) to each follower."""
    group = make_group(3)
    elect(group)
    leader = group[1]
    _, index = leader.node.propose(b"a")
    deliver_all(group, messages_of(leader), drop=to(3))
    assert leader.node.commit_index == index

    leader.node.tick()
    heartbeats = {m.recipient: m for m in messages_of(leader) if isinstance(m, Heartbeat)}

    assert heartbeats[2].commit == index
    assert heartbeats[3].commit == index - 1 == leader.node.progress()[3].match_index


def test_heartbeat_commit_beyond_the_followers_log_is_ignored() -> None:
    """A follower never commits an entry it does not hold (Figure 2: commitIndex never passes
    the log); a heartbeat claiming more is answered and otherwise ignored."""
    follower = make_replica(2, terms=[1, 2], term=2)

    follower.node.step(Heartbeat(2, 1, 2, commit=5))
    sent = messages_of(follower)

    assert follower.node.commit_index == 0
    assert sent == [HeartbeatResponse(2, 2, 1)]


# ---- Figures 7 and 8 ------------------------------------------------------------------------

FIGURE_7_LEADER = (1, 1, 1, 4, 4, 5, 5, 6, 6, 6)
FIGURE_7_FOLLOWERS = {
    "a": (1, 1, 1, 4, 4, 5, 5, 6, 6),
    "b": (1, 1, 1, 4),
    "c": (1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6),
    "d": (1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7),
    "e": (1, 1, 1, 4, 4, 4, 4),
    "f": (1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3),
}


def figure_7() -> tuple[dict[int, Replica], dict[str, int]]:
    """The leader (node 1) and followers (a)-(f) (nodes 2-7) of Figure 7, all in term 7."""
    logs: dict[int, tuple[int, ...]] = {1: FIGURE_7_LEADER}
    names = {}
    for node_id, (name, terms) in enumerate(FIGURE_7_FOLLOWERS.items(), 2):
        logs[node_id] = terms
        names[name] = node_id
    voters = tuple(logs)
    replicas = {
        node_id: make_replica(node_id, voters, terms=terms, term=7, seed=node_id)
        for node_id, terms in logs.items()
    }
    return replicas, names


def test_figure_7_every_follower_ends_with_the_leaders_log() -> None:
    """§5.3, Figure 7: when the leader of term 8 comes to power, followers (a)-(f) may miss
    entries, hold extra uncommitted entries, or both; the leader forces each follower's log to
    duplicate its own, deleting the conflicting entries and filling in the missing ones."""
    replicas, _ = figure_7()
    leader = replicas[1]

    elect(replicas)
    leader.node.tick()
    deliver_all(replicas, messages_of(leader))

    assert leader.node.term == 8
    expected = [*FIGURE_7_LEADER, 8]
    for node_id, replica in replicas.items():
        assert terms_of(replica) == expected, f"node {node_id}"
        assert stored_terms(replica) == expected, f"node {node_id} must persist the repair"
        assert replica.node.commit_index == len(expected), f"node {node_id}"
    violation = log_matching({node_id: log_of(replica) for node_id, replica in replicas.items()})
    assert violation is None, str(violation)


def test_figure_7_fast_backtracking_needs_one_rejection_per_conflicting_term() -> None:
    """§5.3 (last paragraphs): with the follower's conflicting term and the first index it holds
    of that term, the leader skips a whole term per round trip. Decrementing nextIndex one entry
    at a time would take 1, 6, 0, 0, 5 and 7 rejections for (a)-(f): 19 in all."""
    replicas, names = figure_7()

    sent = elect(replicas)

    rejections = {name: len(rejections_from(node_id, sent)) for name, node_id in names.items()}
    assert rejections == {"a": 1, "b": 1, "c": 0, "d": 0, "e": 2, "f": 2}
    assert sum(rejections.values()) < 19


def figure_8(**options: Any) -> dict[int, Replica]:
    """Figure 8 (c): S1 holds the term-2 entry at index 2 and shares it with S2; S5 holds a
    term-3 entry there instead. Index 1 is committed everywhere; everyone is in term 3."""
    logs = {1: (1, 2), 2: (1, 2), 3: (1,), 4: (1,), 5: (1, 3)}
    voters = tuple(logs)
    return {
        node_id: make_replica(
            node_id, voters, terms=terms, term=3, commit=1, seed=node_id, **options
        )
        for node_id, terms in logs.items()
    }


def carries_term(term: int) -> Callable[[Message], bool]:
    return lambda m: isinstance(m, AppendEntries) and any(e.term == term for e in m.entries)


def only_old_entries_to_s3(replicas: dict[int, Replica]) -> Callable[[Message], bool]:
    """A `drop` that cuts S4 and S5 off and lets S3 take S1's term-2 entry but nothing of
    term 4 once it has it."""
    s3 = replicas[3].node

    def drop(message: Message) -> bool:
        if message.recipient in (4, 5):
            return True
        return message.recipient == 3 and s3.last_index >= 2 and carries_term(4)(message)

    return drop


def test_figure_8_an_earlier_terms_entry_is_not_committed_by_counting_replicas() -> None:
    """§5.4.2, Figure 8: a leader never commits an entry of an earlier term because a majority
    holds it; only an entry of its own term is committed by counting, and that commits every
    entry before it."""
    replicas = figure_8(max_entries_per_message=1)
    leader = replicas[1]

    elect(replicas, drop=only_old_entries_to_s3(replicas))

    assert leader.node.term == 4
    term_2_entry = log_of(leader)[1]
    holders = [n for n, r in replicas.items() if r.node.log_entries(2, 3) == [term_2_entry]]
    assert holders == [1, 2, 3], "the term-2 entry is on a majority"
    assert [terms_of(replicas[n]) for n in (1, 2, 3)] == [[1, 2, 4], [1, 2, 4], [1, 2]]
    assert leader.node.commit_index == 1, "yet it is not committed"

    leader.node.tick()
    deliver_all(replicas, messages_of(leader), drop=to(4, 5))

    assert terms_of(replicas[3]) == [1, 2, 4]
    assert leader.node.commit_index == 3, "the term-4 entry on a majority commits both"
    leader.node.tick()
    deliver_all(replicas, messages_of(leader), drop=to(4, 5))
    assert [replicas[n].node.commit_index for n in (2, 3)] == [3, 3]


def test_figure_8_an_earlier_terms_entry_on_a_majority_can_still_be_overwritten() -> None:
    """§5.4.2, Figure 8 (d): why the rule above matters. With S1 down before its term-4 entry
    spreads, S5 (last term 3) wins votes from S3 and S4 and overwrites the term-2 entry that a
    majority held; had S1 counted it committed, a committed entry would be lost."""
    replicas = figure_8(max_entries_per_message=1, pre_vote=False, check_quorum=False)
    elect(replicas, drop=only_old_entries_to_s3(replicas))
    assert terms_of(replicas[3]) == [1, 2]
    replicas[1].crash()
    replicas[2].crash()

    s5 = replicas[5]
    for _ in range(2):
        s5.node.campaign()
        deliver_all(replicas, messages_of(s5))
        if s5.node.role is Role.LEADER:
            break

    assert s5.node.role is Role.LEADER
    assert [terms_of(replicas[n]) for n in (3, 4, 5)] == [[1, 3, s5.node.term]] * 3
    s5.node.tick()
    deliver_all(replicas, messages_of(s5))
    assert all(replicas[n].node.commit_index == 3 for n in (3, 4, 5))


# ---- §5.3: conflicts, duplicates, stale appends ---------------------------------------------


def test_follower_replaces_a_conflicting_uncommitted_suffix_with_the_leaders_entries() -> None:
    """§5.3, Figure 2 receiver rule 3: if an existing entry conflicts with a new one (same index,
    different term), delete it and all that follow, then append the new entries."""
    follower = make_replica(2, terms=[1, 1, 2, 2, 2], term=3, commit=2)

    follower.node.step(AppendEntries(3, 1, 2, 2, 1, (Entry(3, 3, b"new"),), 2))
    sent = messages_of(follower)

    assert terms_of(follower) == [1, 1, 3]
    assert stored_terms(follower) == [1, 1, 3]
    assert follower.node.log_entries(3, 4) == [Entry(3, 3, b"new")]
    assert sent == [AppendEntriesResponse(3, 2, 1, True, match_index=3)]


def test_follower_does_not_rewrite_entries_it_already_holds() -> None:
    """§5.3, Figure 2 receiver rules 3-4: only a conflicting entry is deleted; entries that match
    are not written again, and entries after the append's last one stay."""
    follower = make_replica(2, terms=[1, 1, 2, 2], term=2)

    follower.node.step(AppendEntries(2, 1, 2, 1, 1, (Entry(1, 2, b"2"), Entry(2, 3, b"3")), 0))
    ready = take_ready(follower)

    assert ready.entries == (), "nothing new to persist"
    assert ready.messages == (AppendEntriesResponse(2, 2, 1, True, match_index=3),)
    assert terms_of(follower) == [1, 1, 2, 2]


def test_follower_fills_in_missing_entries_after_a_matching_prefix() -> None:
    """§5.3, Figure 2 receiver rule 4: append any new entries not already in the log."""
    follower = make_replica(2, terms=[1, 1], term=2)

    follower.node.step(AppendEntries(2, 1, 2, 1, 1, (Entry(1, 2, b"2"), Entry(2, 3, b"c")), 0))
    ready = take_ready(follower)

    assert [entry.index for entry in ready.entries] == [3], "only the missing entry is written"
    assert terms_of(follower) == [1, 1, 2]


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param((Entry(1, 2, b"2"),), id="append-of-a-held-entry"),
        pytest.param((), id="empty-append"),
    ],
)
def test_follower_commits_no_further_than_the_last_entry_the_append_vouches_for(
    entries: tuple[Entry, ...],
) -> None:
    """Figure 2 receiver rule 5: commitIndex = min(leaderCommit, index of last new entry). The
    entries after it may be stale ones of an older term that the leader has yet to overwrite."""
    follower = make_replica(2, terms=[1, 1, 2, 2], term=3)
    prev_index = 2 - len(entries)

    follower.node.step(AppendEntries(3, 1, 2, prev_index, 1, entries, 4))
    ready = take_ready(follower)

    assert follower.node.commit_index == 2
    assert [entry.index for entry in ready.committed_entries] == [1, 2]
    assert ready.messages == (AppendEntriesResponse(3, 2, 1, True, match_index=2),)


def test_duplicate_or_reordered_appends_never_truncate_acknowledged_entries() -> None:
    """§5.3: a follower acknowledges entries it holds; an older AppendEntries arriving again or
    late (a duplicate, or overtaken on the network) must not cut them off again."""
    group = make_group(3)
    elect(group)
    leader, follower = group[1], group[2]
    appends = []
    for command in (b"a", b"b", b"c"):
        leader.node.propose(command)
        appends.append(appends_to(2, messages_of(leader))[0])
    deliver_all(group, appends, drop=to(3))
    held = log_of(follower)
    assert leader.node.progress()[2].match_index == len(held)

    responses = []
    for stale in (appends[0], appends[1], appends[0]):
        follower.node.step(stale)
        responses.extend(messages_of(follower))

    assert log_of(follower) == held
    assert stored_terms(follower) == [entry.term for entry in held]
    assert all(isinstance(r, AppendEntriesResponse) and r.success for r in responses)
    deliver_all(group, responses)
    assert leader.node.progress()[2].match_index == len(held), "stale acks are ignored"


def test_append_from_an_earlier_term_is_rejected_and_changes_nothing() -> None:
    """§5.1, Figure 2 receiver rule 1: reply false if term < currentTerm."""
    follower = make_replica(2, terms=[1, 1, 3], term=3)

    follower.node.step(AppendEntries(2, 1, 2, 2, 1, (Entry(2, 3, b"old"),), 3))
    sent = messages_of(follower)

    assert terms_of(follower) == [1, 1, 3]
    assert follower.node.commit_index == 0
    assert sent == [AppendEntriesResponse(3, 2, 1, False)]


def test_append_reaching_below_the_commit_index_changes_no_committed_entry() -> None:
    """§5.4 (leader completeness): entries up to the commit index agree with every later
    leader, so an append whose prefix lies below the commit index is answered with the commit
    index and leaves the committed entries alone."""
    follower = make_replica(2, terms=[1, 1, 1], term=2, commit=2)

    follower.node.step(AppendEntries(2, 1, 2, 1, 1, (Entry(2, 2, b"x"), Entry(2, 3, b"y")), 3))
    sent = messages_of(follower)

    assert terms_of(follower) == [1, 1, 1]
    assert follower.node.commit_index == 2
    assert sent == [AppendEntriesResponse(2, 2, 1, True, match_index=2)]


# ---- fast backtracking ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commit", "prev_index", "prev_term", "conflict"),
    [
        pytest.param(0, 7, 3, (0, 6), id="log-too-short"),
        pytest.param(0, 5, 3, (2, 3), id="term-mismatch"),
        pytest.param(0, 2, 3, (1, 1), id="term-mismatch-at-the-start"),
        pytest.param(3, 5, 3, (2, 4), id="hint-stays-above-the-commit"),
    ],
)
def test_rejection_carries_the_conflicting_term_and_its_first_index(
    commit: int, prev_index: int, prev_term: int, conflict: tuple[int, int]
) -> None:
    """§5.3: a follower that rejects an append says which term it holds at prevLogIndex (0 when
    its log is shorter) and the first index it stores of that term (past its log's end when
    shorter), never reaching back to its commit index."""
    follower = make_replica(2, terms=[1, 1, 2, 2, 2], term=3, commit=commit)
    before = terms_of(follower)

    entries = (Entry(3, prev_index + 1, b"x"),)
    follower.node.step(AppendEntries(3, 1, 2, prev_index, prev_term, entries, commit))
    sent = messages_of(follower)

    conflict_term, conflict_index = conflict
    assert sent == [
        AppendEntriesResponse(
            3,
            2,
            1,
            False,
            rejected_index=prev_index,
            conflict_term=conflict_term,
            conflict_index=conflict_index,
        )
    ]
    assert terms_of(follower) == before


def test_leader_jumps_next_index_to_the_conflict_index_of_a_rejection() -> None:
    """§5.3: with the conflict hint the leader decrements nextIndex past the whole conflicting
    term in one step, and probes from there."""
    leader = make_leader(1, terms=[1, 1, 1, 4, 4, 5, 5, 6, 6, 6], term=7)
    progress = leader.node.progress()[2]
    assert (progress.state, progress.next_index) == (ProgressState.PROBE, 11)

    rejection = AppendEntriesResponse(8, 2, 1, False, 0, 10, conflict_term=3, conflict_index=7)
    leader.node.step(rejection)
    probes = appends_to(2, messages_of(leader))

    assert leader.node.progress()[2].next_index == 7
    assert [(p.prev_log_index, p.prev_log_term) for p in probes] == [(6, 5)]
    assert [entry.index for entry in probes[0].entries] == [7, 8, 9, 10, 11]

    leader.node.step(rejection)
    assert messages_of(leader) == [], "the same rejection again is stale"
    assert leader.node.progress()[2].next_index == 7


def test_leader_moves_to_replicate_once_a_probe_is_accepted() -> None:
    """Etcd's flow control on top of §5.3: once nextIndex is found, the leader streams."""
    leader = make_leader(1, terms=[1, 1], term=1)
    index = leader.node.last_index

    leader.node.step(AppendEntriesResponse(leader.node.term, 2, 1, True, match_index=index))

    progress = leader.node.progress()[2]
    assert progress.state is ProgressState.REPLICATE
    assert (progress.match_index, progress.next_index) == (index, index + 1)


# ---- pipelining and batching ----------------------------------------------------------------


def test_leader_pipelines_up_to_max_inflight_appends_then_waits_for_an_ack() -> None:
    """A replicating follower gets several AppendEntries without waiting for answers, up to
    max_inflight_messages; each acknowledgement frees room for one more."""
    group = make_group(3, max_inflight_messages=3, max_entries_per_message=1)
    elect(group)
    leader = group[1]
    assert leader.node.progress()[2].state is ProgressState.REPLICATE

    _, first = leader.node.propose_batch([b"c%d" % i for i in range(6)])
    window = appends_to(2, messages_of(leader))

    assert [[e.index for e in m.entries] for m in window] == [[first], [first + 1], [first + 2]]
    assert leader.node.progress()[2].is_paused()

    group[2].node.step(window[0])
    leader.node.step(messages_of(group[2])[0])
    more = appends_to(2, messages_of(leader))

    assert [[e.index for e in m.entries] for m in more] == [[first + 3]]
    assert leader.node.progress()[2].is_paused()


def test_leader_sends_a_probing_follower_one_append_at_a_time() -> None:
    """Until a follower accepts an append, the leader does not know where its log matches and
    sends it nothing more while a probe is unanswered."""
    group = make_group(3)
    elect(group, drop=to(3))
    leader = group[1]
    assert leader.node.progress()[3].state is ProgressState.PROBE

    sent = []
    for command in (b"a", b"b", b"c"):
        leader.node.propose(command)
        sent.extend(messages_of(leader))

    assert appends_to(3, sent) == []
    assert len(appends_to(2, sent)) == 3

    leader.node.tick()
    heartbeat = next(m for m in messages_of(leader) if m.recipient == 3)
    group[3].node.step(heartbeat)
    leader.node.step(messages_of(group[3])[0])
    probes = appends_to(3, messages_of(leader))

    assert len(probes) == 1, "the heartbeat's answer releases exactly one probe"


@pytest.mark.parametrize(
    ("max_entries", "max_bytes", "sizes", "per_message"),
    [
        pytest.param(4, 1 << 20, [1] * 10, [4, 4, 2], id="count-limit"),
        pytest.param(100, 10, [4] * 10, [2, 2, 2, 2, 2], id="byte-limit"),
        pytest.param(100, 10, [10, 1, 10, 9, 1], [1, 1, 1, 2], id="byte-limit-uneven"),
        pytest.param(3, 10, [2] * 7, [3, 3, 1], id="count-before-bytes"),
        pytest.param(100, 3, [3, 3, 3], [1, 1, 1], id="one-full-entry-each"),
    ],
)
def test_large_batch_is_split_into_messages_within_the_limits(
    max_entries: int, max_bytes: int, sizes: list[int], per_message: list[int]
) -> None:
    """A large `propose_batch` leaves in several AppendEntries, each with at most
    max_entries_per_message entries and max_bytes_per_message bytes, but at least one entry."""
    group = make_group(3, max_entries_per_message=max_entries, max_bytes_per_message=max_bytes)
    elect(group)
    leader = group[1]
    commands = [bytes([65 + i]) * size for i, size in enumerate(sizes)]

    _, first = leader.node.propose_batch(commands)
    appends = appends_to(2, messages_of(leader))

    assert [len(m.entries) for m in appends] == per_message
    assert all(sum(len(e.data) for e in m.entries) <= max_bytes for m in appends)
    indexes = [e.index for m in appends for e in m.entries]
    assert indexes == list(range(first, first + len(commands)))
    assert [m.prev_log_index for m in appends] == [m.entries[0].index - 1 for m in appends]

    deliver_all(group, appends)
    assert [e.data for e in group[2].node.log_entries(first, first + len(commands))] == commands


# ---- lost messages --------------------------------------------------------------------------


def test_lost_append_in_replicate_is_recovered_through_a_rejection_and_a_probe() -> None:
    """A replicating follower that missed an append rejects the next one (its prevLogIndex is
    past the follower's log); the leader falls back to probing and resends what was lost. With
    nothing new to send, the next heartbeat's response prompts that append."""
    group = make_group(3)
    elect(group)
    leader, follower = group[1], group[2]
    leader.node.propose(b"lost")
    appends = messages_of(leader)
    lost = appends_to(2, appends)
    deliver_all(group, [m for m in appends if m not in lost])
    assert follower.node.last_index < leader.node.last_index

    leader.node.tick()
    sent = deliver_all(group, messages_of(leader))

    rejections = rejections_from(2, sent)
    assert [(r.rejected_index, r.conflict_index) for r in rejections] == [(2, 2)]
    assert [len(m.entries) for m in appends_to(2, sent)] == [0, 1], "empty append, then probe"
    assert log_of(follower) == log_of(leader)
    assert leader.node.progress()[2].state is ProgressState.REPLICATE
    assert follower.node.commit_index == leader.node.commit_index == 2


def test_lost_append_with_a_full_window_is_recovered_by_a_heartbeat_response() -> None:
    """With the window full of an append that was lost, no ack will ever free it; the next
    heartbeat's answer frees the oldest slot so the leader sends again and finds the gap."""
    group = make_group(3, max_inflight_messages=1)
    elect(group)
    leader, follower = group[1], group[2]
    leader.node.propose(b"lost")
    appends = messages_of(leader)
    lost = appends_to(2, appends)
    deliver_all(group, [m for m in appends if m not in lost])
    leader.node.propose(b"stuck")
    assert appends_to(2, messages_of(leader)) == [], "the window is full"
    assert follower.node.last_index == 1

    leader.node.tick()
    deliver_all(group, messages_of(leader))

    assert log_of(follower) == log_of(leader)
    assert leader.node.progress()[2].match_index == 3
    leader.node.tick()
    deliver_all(group, messages_of(leader))
    assert follower.node.commit_index == 3


# ---- whole runs in the simulator ------------------------------------------------------------


def converged(cluster: Cluster) -> bool:
    """Every node up, one leader, and every log identical and committed to its end."""
    if cluster.leader() is None or len(cluster.live()) != len(cluster.replicas):
        return False
    nodes = [replica.node for replica in cluster.replicas.values()]
    if len({(node.last_index, node.commit_index) for node in nodes}) != 1:
        return False
    logs = [tuple(log_of(replica)) for replica in cluster.replicas.values()]
    return len(set(logs)) == 1 and nodes[0].commit_index == nodes[0].last_index


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6], ids=lambda seed: f"seed={seed}")
def test_replication_converges_under_message_loss_and_duplication(seed: int) -> None:
    """§5.3: the leader retries AppendEntries indefinitely, so with a fifth of the messages lost
    and a fifth duplicated every log still converges to one committed log; every entry applied
    anywhere stays at its index, and every state machine applies the same commands once."""
    applied: dict[tuple[int, bytes], set[int]] = {}

    def record(node_id: int, entry: Entry, result: object) -> None:
        if entry.kind == EntryKind.COMMAND:
            applied.setdefault((entry.index, entry.data), set()).add(node_id)

    cluster = make_cluster(
        5, seed=seed, faults=LinkFaults(loss=0.2, duplicate=0.2), on_apply=record
    )
    cluster.elect()
    proposals = [b"c%d" % i for i in range(40)]
    for command in proposals:
        leader = cluster.leader()
        if leader is not None:
            cluster.propose(leader, command)
        cluster.run_for(3 * cluster.tick_ns)

    assert cluster.run_until(lambda: converged(cluster), 60 * SECOND), f"seed {seed}"

    final = log_of(cluster.replicas[1])
    commands = [entry.data for entry in final if entry.data]
    assert len(commands) >= 20, f"too few commands committed (seed {seed}): {len(commands)}"
    assert commands == [c for c in proposals if c in commands], f"order or duplicates (seed {seed})"
    for (index, data), nodes in applied.items():
        assert final[index - 1].data == data, f"applied entry {index} was lost (seed {seed})"
        assert nodes == set(cluster.replicas), f"entry {index} applied by {nodes} (seed {seed})"
    for node_id, replica in cluster.replicas.items():
        assert log_of(replica) == final, f"node {node_id} (seed {seed})"
        assert isinstance(replica.state_machine, AppliedLog)
        assert replica.state_machine.commands == commands, f"node {node_id} (seed {seed})"
    assert election_safety(cluster.leaders_by_term) is None


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda seed: f"seed={seed}")
def test_restarted_follower_catches_up_and_reapplies_the_committed_log(seed: int) -> None:
    """§5.3, §5.1: a crashed follower keeps what it persisted; once back, the leader's
    AppendEntries bring it the entries it missed, and it applies the whole committed log."""
    cluster = make_cluster(3, seed=seed)
    leader = cluster.elect()
    follower = next(node_id for node_id in cluster.replicas if node_id != leader)
    for i in range(5):
        cluster.propose(leader, b"before%d" % i)
    cluster.run_for(5 * cluster.tick_ns)
    cluster.crash(follower)
    for i in range(5):
        cluster.propose(leader, b"during%d" % i)
    cluster.run_for(5 * cluster.tick_ns)
    leader_node = cluster.replicas[leader].node
    assert leader_node.commit_index == leader_node.last_index, "the other two commit alone"

    cluster.restart(follower)
    replica = cluster.replicas[follower]
    assert replica.node.last_index < leader_node.last_index, "it missed the later entries"
    cluster.run_for(10 * cluster.tick_ns)

    assert log_of(replica) == log_of(cluster.replicas[leader]), f"seed {seed}"
    assert replica.node.commit_index == leader_node.commit_index
    assert isinstance(replica.state_machine, AppliedLog)
    expected = [b"before%d" % i for i in range(5)] + [b"during%d" % i for i in range(5)]
    assert replica.state_machine.commands == expected, f"seed {seed}"


def disturb(cluster: Cluster, rng: random.Random) -> None:
    """One random fault: a partition, a heal, a crash (at most two down) or a restart."""
    ids = list(cluster.replicas)
    down = [node_id for node_id in ids if not cluster.replicas[node_id].up]
    action = rng.choice(["partition", "heal", "crash", "restart"])
    if action == "partition":
        rng.shuffle(ids)
        cut = rng.randint(1, len(ids) - 1)
        cluster.network.partition(ids[:cut], ids[cut:])
    elif action == "heal":
        cluster.network.heal()
    elif action == "crash" and len(down) < 2:
        cluster.crash(rng.choice(cluster.live()))
    elif action == "restart" and down:
        cluster.restart(rng.choice(down))


@pytest.mark.parametrize("seed", [0, 1, 2, 3], ids=lambda seed: f"seed={seed}")
def test_leaders_only_append_and_committed_entries_survive_partitions_and_crashes(
    seed: int,
) -> None:
    """Figure 3: a leader never overwrites or deletes entries in its log (Leader Append-Only);
    no node ever loses, or sees change, an entry once it knows it committed (§5.4); all nodes'
    committed entries agree (State Machine Safety). Checked after every tick of a run with
    random partitions, crashes and restarts."""
    cluster = make_cluster(5, seed=seed)
    rng = random.Random(f"{seed}/faults")
    leader_logs: dict[tuple[int, int], list[Entry]] = {}
    committed: dict[int, list[Entry]] = {node_id: [] for node_id in cluster.replicas}
    chosen: list[Entry] = []
    proposals = 0

    for step in range(800):
        if step % 30 == 29:
            disturb(cluster, rng)
        leader = cluster.leader()
        if leader is not None and step % 2 == 0:
            cluster.propose(leader, b"%d" % proposals)
            proposals += 1
        cluster.run_for(cluster.tick_ns)

        where = f"(seed {seed}, step {step})"
        for node_id in cluster.live():
            node = cluster.replicas[node_id].node
            log = log_of(cluster.replicas[node_id])
            held = committed[node_id]
            assert log[: len(held)] == held, f"node {node_id} lost committed entries {where}"
            assert node.commit_index >= len(held), f"node {node_id} commit went back {where}"
            held = committed[node_id] = log[: node.commit_index]
            shorter, longer = sorted((held, chosen), key=len)
            assert longer[: len(shorter)] == shorter, f"node {node_id} committed a rival {where}"
            chosen = longer
            if node.role is Role.LEADER:
                before = leader_logs.get((node_id, node.term), [])
                assert log[: len(before)] == before, f"leader {node_id} rewrote its log {where}"
                leader_logs[(node_id, node.term)] = log

    cluster.network.heal()
    for node_id in cluster.replicas:
        if not cluster.replicas[node_id].up:
            cluster.restart(node_id)
    assert cluster.run_until(lambda: converged(cluster), 30 * SECOND), f"seed {seed}"
    logs = {node_id: log_of(replica) for node_id, replica in cluster.replicas.items()}
    assert log_matching(logs) is None
    assert election_safety(cluster.leaders_by_term) is None
    assert logs[1][: len(chosen)] == chosen, f"a committed entry was lost (seed {seed})"
    assert len(chosen) > 50, f"the run committed too little to mean much (seed {seed})"
