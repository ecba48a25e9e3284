"""The sans-IO contract of `RaftNode`: inputs in, one `Ready` out, `advance` back (DESIGN.md).

What a caller may rely on: which errors a bad call raises, that a `Ready` hands out every piece
of work exactly once, that a node which raised refuses further use, and that the public API and
the purity of `raft.core` hold by construction.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Callable

import pytest

import raft
import raft.core
from raft import (
    AppendEntries,
    CommandTooLarge,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    NodeFailed,
    NotLeader,
    RaftError,
    RaftNode,
    Ready,
    Role,
    UsageError,
    VoteRequest,
)
from tests.builders import make_cluster, make_leader, make_replica, messages_of

# ---- propose -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_propose_on_a_follower_raises_not_leader_naming_the_leader(seed: int) -> None:
    cluster = make_cluster(3, seed=seed)
    leader = cluster.elect()
    cluster.settle()
    follower = next(node_id for node_id in cluster.replicas if node_id != leader)

    with pytest.raises(NotLeader) as raised:
        cluster.replicas[follower].node.propose(b"x")

    assert raised.value.leader_id == leader, f"seed {seed}"
    assert raised.value.node_id == follower
    assert f"try node {leader}" in str(raised.value)


def test_propose_without_a_known_leader_raises_not_leader_with_none() -> None:
    replica = make_replica(1)

    with pytest.raises(NotLeader) as raised:
        replica.node.propose(b"x")

    assert raised.value.leader_id is None
    assert raised.value.node_id == 1
    assert isinstance(raised.value, RaftError)


def test_propose_on_a_candidate_raises_not_leader() -> None:
    replica = make_replica(1, pre_vote=False)
    replica.node.campaign()
    assert replica.node.role is Role.CANDIDATE

    with pytest.raises(NotLeader):
        replica.node.propose_batch([b"x"])


def test_command_above_max_bytes_per_message_raises_command_too_large() -> None:
    replica = make_leader(1, voters=(1,), max_bytes_per_message=8)
    node = replica.node
    last = node.last_index

    with pytest.raises(CommandTooLarge) as raised:
        node.propose(b"123456789")

    assert (raised.value.size, raised.value.limit) == (9, 8)
    assert node.last_index == last
    assert not node.has_ready()
    # The limit itself fits, and the node is still usable after the refusal.
    assert node.propose(b"12345678") == (node.term, last + 1)


def test_one_oversized_command_refuses_the_whole_batch() -> None:
    replica = make_leader(1, voters=(1,), max_bytes_per_message=4)
    node = replica.node
    last = node.last_index

    with pytest.raises(CommandTooLarge):
        node.propose_batch([b"a", b"toolong", b"b"])

    assert node.last_index == last


@pytest.mark.parametrize(
    "commands",
    [["text"], [bytearray(b"x")], [b"ok", "text"], [None], [memoryview(b"x")]],
    ids=["str", "bytearray", "mixed", "None", "memoryview"],
)
def test_non_bytes_commands_raise_type_error_and_leave_the_node_usable(commands: list) -> None:
    replica = make_leader(1, voters=(1,))
    node = replica.node
    last = node.last_index

    with pytest.raises(TypeError, match="commands must be bytes"):
        node.propose_batch(commands)

    assert node.last_index == last
    assert node.propose(b"fine") == (node.term, last + 1)


def test_empty_propose_batch_raises_usage_error() -> None:
    replica = make_leader()

    with pytest.raises(UsageError):
        replica.node.propose_batch([])

    assert not replica.node.has_ready()


def test_propose_batch_returns_term_and_first_index_of_consecutive_entries() -> None:
    replica = make_leader(1, voters=(1, 2, 3), terms=[1, 1], term=1)
    node = replica.node

    term, first = node.propose_batch([b"a", b"b", b"c"])
    next_term, after = node.propose(b"d")

    assert (term, first) == (2, 4)  # after the two old entries and the no-op of term 2
    assert (next_term, after) == (2, 7)
    assert node.log_entries(first, after + 1) == [
        Entry(2, 4, b"a"),
        Entry(2, 5, b"b"),
        Entry(2, 6, b"c"),
        Entry(2, 7, b"d"),
    ]
    ready = node.ready()
    assert [entry.index for entry in ready.entries] == [4, 5, 6, 7]


# ---- ready / advance -----------------------------------------------------------------------


def test_ready_twice_without_advance_raises_usage_error() -> None:
    replica = make_leader()
    node = replica.node
    node.propose(b"x")
    ready = node.ready()

    with pytest.raises(UsageError):
        node.ready()

    # The refusal is the caller's fault: the node goes on once the Ready is handed back.
    node.advance(ready)
    assert node.ready().entries == ()


def test_advance_with_another_ready_raises_usage_error() -> None:
    replica = make_leader()
    node = replica.node
    node.propose(b"x")
    ready = node.ready()
    lookalike = Ready(
        ready.hard_state, ready.entries, ready.messages, ready.committed_entries, ready.soft_state
    )

    with pytest.raises(UsageError):
        node.advance(lookalike)

    node.advance(ready)
    with pytest.raises(UsageError):
        node.advance(ready)


def test_advance_without_ready_raises_usage_error() -> None:
    replica = make_replica()
    empty = Ready(None, (), (), (), None)

    with pytest.raises(UsageError):
        replica.node.advance(empty)


def test_has_ready_is_false_once_everything_is_drained() -> None:
    replica = make_replica(1, voters=(1,))
    node = replica.node
    assert not node.has_ready()

    node.campaign()
    assert node.has_ready()
    messages_of(replica)
    assert not node.has_ready()
    node.propose(b"x")
    assert node.has_ready()
    messages_of(replica)

    assert not node.has_ready()
    ready = node.ready()
    assert ready == Ready(None, (), (), (), None)
    node.advance(ready)


def test_restarted_node_hands_out_its_committed_log_to_apply() -> None:
    """A node rebuilt from storage re-applies what its persisted commit index covers."""
    replica = make_replica(1, terms=[1, 1, 2], term=2, commit=2)

    ready = replica.node.ready()

    assert [entry.index for entry in ready.committed_entries] == [1, 2]
    assert ready.entries == ()
    assert ready.hard_state is None


def test_a_vote_and_its_reply_come_in_one_ready() -> None:
    """Persist before send: the hard state that records a vote rides in the same Ready as the
    reply that grants it (§5.2, Figure 2)."""
    replica = make_replica(2)

    replica.node.step(VoteRequest(1, 1, 2, 0, 0))
    ready = replica.node.ready()

    assert ready.hard_state == HardState(term=1, vote=1, commit=0)
    assert [(type(m).__name__, m.recipient) for m in ready.messages] == [("VoteResponse", 1)]


@pytest.mark.parametrize("seed", range(5))
def test_committed_entries_appear_only_after_commit_and_exactly_once(seed: int) -> None:
    """§5.3: a command is applied once a majority stores it, on every node, exactly once."""
    applied: list[tuple[int, int]] = []

    def on_apply(node_id: int, entry: Entry, result: object) -> None:
        holders = [
            replica
            for replica in cluster.replicas.values()
            if replica.storage.last_index() >= entry.index
            and replica.storage.term(entry.index) == entry.term
        ]
        assert len(holders) >= 2, f"seed {seed}: {entry} applied before a majority stored it"
        if entry.kind == EntryKind.COMMAND:
            applied.append((node_id, entry.index))

    cluster = make_cluster(3, seed=seed, on_apply=on_apply)
    leader = cluster.elect()
    cluster.settle()
    leader_node = cluster.replicas[leader].node

    _, index = cluster.propose(leader, b"x")

    # The leader has it persisted, but alone it is no majority: nothing is applied yet.
    assert leader_node.commit_index < index, f"seed {seed}"
    assert applied == []
    cluster.settle()
    cluster.run_for(1_000_000_000)
    assert sorted(applied) == [(node_id, index) for node_id in (1, 2, 3)], f"seed {seed}"
    for replica in cluster.replicas.values():
        assert replica.state_machine.commands == [b"x"], f"seed {seed}"


def test_committed_entries_never_reach_past_the_majority() -> None:
    """§5.3: until a follower acknowledges, a three-node leader's Readys carry the entry to
    persist and send, but never to apply."""
    replica = make_leader(1)
    node = replica.node

    _, index = node.propose(b"x")
    first = node.ready()
    node.advance(first)
    node.tick()
    second = node.ready()

    assert [entry.index for entry in first.entries] == [index]
    assert first.committed_entries == ()
    assert second.committed_entries == ()
    assert node.commit_index < index


def test_messages_for_another_node_are_ignored() -> None:
    replica = make_replica(1)
    node = replica.node

    node.step(VoteRequest(5, 2, 3, 0, 0))
    node.step(AppendEntries(5, 2, 3, 0, 0, (Entry(5, 1, b"x"),), 1))
    node.step(Heartbeat(5, 2, 3, 0))

    assert node.term == 0
    assert node.leader_id is None
    assert node.last_index == 0
    assert not node.has_ready()


# ---- failure -------------------------------------------------------------------------------


class DiskGone(Exception):
    """Stands in for whatever a broken storage backend raises."""


def broken(*args: object) -> object:
    raise DiskGone("storage read failed")


NODE_CALLS: dict[str, Callable[[RaftNode], object]] = {
    "tick": RaftNode.tick,
    "campaign": RaftNode.campaign,
    "step": lambda node: node.step(Heartbeat(1, 2, 1, 0)),
    "propose": lambda node: node.propose(b"x"),
    "has_ready": RaftNode.has_ready,
    "ready": RaftNode.ready,
    "advance": lambda node: node.advance(Ready(None, (), (), (), None)),
}


@pytest.mark.parametrize("call", NODE_CALLS)
def test_node_that_raised_inside_step_refuses_every_later_call(
    call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h11's ERROR rule: state left half-changed by an exception must not be used again."""
    replica = make_replica(1, terms=[1, 1], term=1)
    monkeypatch.setattr(replica.storage, "term", broken)

    with pytest.raises(DiskGone) as original:
        replica.node.step(AppendEntries(1, 2, 1, 2, 1, (), 0))

    with pytest.raises(NodeFailed, match="rebuilt from storage") as refused:
        NODE_CALLS[call](replica.node)
    assert refused.value.__cause__ is original.value


def test_node_that_raised_inside_ready_refuses_every_later_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """h11's ERROR rule holds for output calls too: a `ready()` that raised after handing some
    entries out must not be retried, or those entries would never be persisted while the
    acknowledgements for them were sent."""
    replica = make_replica(1, terms=[1, 1, 1], term=1, commit=3)
    node = replica.node
    node.step(AppendEntries(1, 2, 1, 3, 1, (Entry(1, 4, b"new"),), 3))
    monkeypatch.setattr(replica.storage, "entries", broken)

    with pytest.raises(DiskGone) as original:
        node.ready()

    with pytest.raises(NodeFailed) as refused:
        node.ready()
    assert refused.value.__cause__ is original.value


# ---- single node ---------------------------------------------------------------------------


@pytest.mark.parametrize("pre_vote", [True, False], ids=["pre-vote", "no-pre-vote"])
def test_single_node_cluster_elects_itself_on_campaign(pre_vote: bool) -> None:
    """§5.2: a candidate wins with a majority, and one node is a majority of one."""
    replica = make_replica(1, voters=(1,), pre_vote=pre_vote)
    node = replica.node

    node.campaign()
    ready = node.ready()

    assert node.role is Role.LEADER
    assert node.term == 1
    assert ready.hard_state == HardState(term=1, vote=1, commit=1)
    assert ready.messages == ()
    assert [(e.term, e.index, e.kind) for e in ready.committed_entries] == [(1, 1, EntryKind.NOOP)]


def test_single_node_cluster_elects_itself_when_its_timer_fires() -> None:
    replica = make_replica(1, voters=(1,), election_ticks=5)

    for _ in range(10):
        replica.node.tick()

    assert replica.node.role is Role.LEADER


def test_single_node_cluster_commits_proposals_immediately() -> None:
    replica = make_leader(1, voters=(1,))
    node = replica.node

    term, index = node.propose_batch([b"a", b"b"])
    ready = node.ready()

    assert node.commit_index == index + 1
    assert ready.entries == ready.committed_entries
    assert [e.data for e in ready.committed_entries] == [b"a", b"b"]
    assert all(e.term == term for e in ready.committed_entries)
    node.advance(ready)
    assert node.applied_index == index + 1
    assert not node.has_ready()


# ---- public API ----------------------------------------------------------------------------


def test_raft_reexports_the_core_objects_unchanged() -> None:
    """DESIGN: everything a user needs is importable from `raft`, and is the same object."""
    for name in raft.core.__all__:
        assert getattr(raft, name) is getattr(raft.core, name), name


def test_each_public_object_is_exported_under_one_name() -> None:
    exported = [getattr(raft, name) for name in raft.__all__]
    assert len({id(value) for value in exported}) == len(exported)


# ---- purity of raft.core -------------------------------------------------------------------

CORE = pathlib.Path(raft.core.__file__).parent
OUTSIDE_WORLD = frozenset(
    {
        "asyncio",
        "datetime",
        "io",
        "logging",
        "multiprocessing",
        "os",
        "pathlib",
        "secrets",
        "select",
        "selectors",
        "shutil",
        "signal",
        "socket",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "trio",
        "uuid",
    }
)


def impure_imports(source: str) -> list[str]:
    """What in `source` reaches the outside world: an import of a module in `OUTSIDE_WORLD`
    or from outside `raft.core`'s layer, or any use of `random` beyond the `random.Random`
    type (module-level functions share one hidden global generator)."""
    problems = []
    random_names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OUTSIDE_WORLD:
                    problems.append(f"import {alias.name}")
                elif alias.name == "random":
                    random_names.add(alias.asname or "random")
                elif alias.name.startswith("raft.") and not alias.name.startswith("raft.core"):
                    problems.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            root = node.module.split(".")[0]
            imported = [alias.name for alias in node.names]
            if root in OUTSIDE_WORLD:
                problems.append(f"from {node.module} import {', '.join(imported)}")
            elif node.module == "random" and imported != ["Random"]:
                problems.append(f"from random import {', '.join(imported)}")
            elif root == "raft" and not node.module.startswith("raft.core"):
                problems.append(f"from {node.module} import {', '.join(imported)}")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in random_names
            and node.attr != "Random"
        ):
            problems.append(f"{node.value.id}.{node.attr}")
    return problems


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os.path",
        "from socket import socket",
        "import trio",
        "from asyncio import sleep",
        "import random\nrandom.randrange(3)",
        "import random as r\nx = r.choice([1])",
        "from random import shuffle",
        "from raft.storage import MemoryStorage",
        "import threading",
    ],
)
def test_impure_imports_flags_what_touches_the_outside_world(source: str) -> None:
    """The purity check below can fail."""
    assert impure_imports(source)


def test_impure_imports_allows_the_random_type_and_the_core_itself() -> None:
    source = (
        "import random\nfrom random import Random\nfrom raft.core._log import RaftLog\n"
        "def f(rng: random.Random) -> None: ...\n"
    )
    assert impure_imports(source) == []


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda path: path.name)
def test_core_imports_nothing_that_touches_the_outside_world(path: pathlib.Path) -> None:
    """DESIGN: `raft.core` has no clock, no I/O and no randomness of its own, so the simulator
    and the runtime drive the same code."""
    assert impure_imports(path.read_text()) == []
