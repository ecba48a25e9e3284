"""Hypothesis strategies for fault schedules and workloads, and the code that runs them.

A *fault schedule* is a list of timed fault steps (`Partition`, `OneWay`, `Crash`, `Pause`,
`ClockSkew`, `Flaky`). Each step is a small frozen attrs class whose repr is the Python that
rebuilds it, so a failing schedule prints as something you can paste back into a test. Each
starts `at_ns` after the schedule is applied and lasts `for_ns`; times are drawn in whole
milliseconds and shrink toward zero, and lists shrink toward fewer steps, so a failure shrinks
toward the fewest, shortest, earliest faults that still break it.

`apply_schedule` puts a schedule on a `sim.Cluster`'s event queue through a `FaultInjector`,
which lets faults overlap: a node stays down while any crash covers it, a link stays cut while
any partition covers it, and so on. A *workload* is a list of timed `Proposal`s, proposed at the
leader by `apply_workload`. Nothing here draws randomness of its own: Hypothesis chooses the
steps, and the cluster's seed decides everything else.

This module needs Hypothesis (the `test` extra); `import sim` does not import it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TypeAlias

import attrs
from hypothesis import strategies as st

from raft import CommandTooLarge, NotLeader, Role
from sim._cluster import Cluster
from statemachines import encode_cas, encode_delete, encode_get, encode_put

__all__ = [
    "FAULT_KINDS",
    "ClockSkew",
    "Crash",
    "FaultInjector",
    "FaultStep",
    "Flaky",
    "OneWay",
    "Partition",
    "Pause",
    "Proposal",
    "apply_schedule",
    "apply_workload",
    "clock_skews",
    "crashes",
    "fault_schedules",
    "fault_steps",
    "flaky_networks",
    "kv_commands",
    "one_ways",
    "partitions",
    "pauses",
    "proposal_target",
    "seeds",
    "workloads",
]

_MS = 1_000_000

# ---- fault steps ---------------------------------------------------------------------------


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _probability(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1], got {value!r}")


def _positive_factor(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _disjoint_groups(
    _instance: object,
    _attribute: attrs.Attribute[tuple[tuple[int, ...], ...]],
    groups: tuple[tuple[int, ...], ...],
) -> None:
    members = [node for group in groups for node in group]
    if len(groups) < 2 or not all(groups) or len(set(members)) != len(members):
        raise ValueError(f"groups must be two or more disjoint, non-empty groups, got {groups!r}")


def _as_groups(groups: Iterable[Iterable[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(group) for group in groups)


@attrs.frozen
class Partition:
    """The nodes split into `groups` that cannot reach each other, both ways, for `for_ns`.

    Links within a group, and to nodes in no group, stay up. Messages already in flight across
    the cut are lost too (the network checks links at delivery).
    """

    groups: tuple[tuple[int, ...], ...] = attrs.field(
        converter=_as_groups, validator=_disjoint_groups
    )
    at_ns: int = attrs.field(default=0, validator=_non_negative)
    for_ns: int = attrs.field(default=1_000 * _MS, validator=_positive)

    def links(self) -> frozenset[tuple[int, int]]:
        """The one-way (sender, recipient) links this partition cuts."""
        return frozenset(
            (sender, recipient)
            for i, group in enumerate(self.groups)
            for j, other in enumerate(self.groups)
            if i != j
            for sender in group
            for recipient in other
        )


@attrs.frozen
class OneWay:
    """Messages from `sender` to `recipient` are lost for `for_ns`; the other way works."""

    sender: int
    recipient: int
    at_ns: int = attrs.field(default=0, validator=_non_negative)
    for_ns: int = attrs.field(default=1_000 * _MS, validator=_positive)

    def links(self) -> frozenset[tuple[int, int]]:
        """The one link this step cuts."""
        return frozenset({(self.sender, self.recipient)})


@attrs.frozen
class Crash:
    """`node` crashes (losing all but its storage) and restarts from storage `for_ns` later."""

    node: int
    at_ns: int = attrs.field(default=0, validator=_non_negative)
    for_ns: int = attrs.field(default=1_000 * _MS, validator=_positive)


@attrs.frozen
class Pause:
    """`node` freezes for `for_ns` (as under SIGSTOP): no ticks, and arriving messages wait
    until it resumes with its stale view."""

    node: int
    at_ns: int = attrs.field(default=0, validator=_non_negative)
    for_ns: int = attrs.field(default=1_000 * _MS, validator=_positive)


@attrs.frozen
class ClockSkew:
    """`node`'s tick interval is multiplied by `factor` for `for_ns`: a factor above 1 is a slow
    clock (late elections and heartbeats), below 1 a fast one (early elections)."""

    node: int
    factor: float = attrs.field(validator=_positive_factor)
    at_ns: int = attrs.field(default=0, validator=_non_negative)
    for_ns: int = attrs.field(default=1_000 * _MS, validator=_positive)


@attrs.frozen
class Flaky:
    """For `for_ns`, every message is lost with probability `loss` and delivered twice with
    probability `duplicate`; the cluster's seed decides which."""

    loss: float = attrs.field(validator=_probability)
    duplicate: float = attrs.field(default=0.0, validator=_probability)
    at_ns: int = attrs.field(default=0, validator=_non_negative)
    for_ns: int = attrs.field(default=1_000 * _MS, validator=_positive)


FaultStep: TypeAlias = Partition | OneWay | Crash | Pause | ClockSkew | Flaky
"""One timed fault of a schedule."""

FAULT_KINDS: tuple[type[FaultStep], ...] = (Partition, Crash, Pause, OneWay, ClockSkew, Flaky)
"""Every kind of fault step, in the order schedules shrink toward (earlier kinds first)."""

# ---- strategies for fault steps ------------------------------------------------------------


def seeds() -> st.SearchStrategy[int]:
    """Cluster seeds: 32-bit unsigned integers, shrinking toward 0."""
    return st.integers(0, 2**32 - 1)


def _milliseconds(low_ns: int, high_ns: int) -> st.SearchStrategy[int]:
    """Whole milliseconds between the bounds (as ns), shrinking toward `low_ns`."""
    low, high = -(-low_ns // _MS), high_ns // _MS
    if low > high:
        raise ValueError(f"no whole millisecond lies in [{low_ns}, {high_ns}] ns")
    return st.integers(low, high).map(lambda ms: ms * _MS)


def _node_ids(nodes: int) -> list[int]:
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"nodes must be an integer >= 1, got {nodes!r}")
    return list(range(1, nodes + 1))


def _timing(
    max_at_ns: int, min_for_ns: int, max_for_ns: int
) -> tuple[st.SearchStrategy[int], st.SearchStrategy[int]]:
    """Start offsets and durations, in whole milliseconds; durations are at least 1 ms."""
    return _milliseconds(0, max_at_ns), _milliseconds(max(min_for_ns, _MS), max_for_ns)


def partitions(
    nodes: int, *, max_at_ns: int = 0, min_for_ns: int = _MS, max_for_ns: int = 3_000 * _MS
) -> st.SearchStrategy[Partition]:
    """Symmetric partitions of nodes 1..`nodes` into two or three groups (`nodes` >= 2); they
    shrink toward cutting off the highest-numbered node alone."""
    ids = _node_ids(nodes)
    if len(ids) < 2:
        raise ValueError("a partition needs at least 2 nodes")
    at_ns, for_ns = _timing(max_at_ns, min_for_ns, max_for_ns)
    labels = st.lists(
        st.integers(0, min(len(ids), 3) - 1), min_size=len(ids) - 1, max_size=len(ids) - 1
    )

    def build(others: list[int], cut_off: int, at: int, duration: int) -> Partition:
        # Node 1 is in group 0 and the `cut_off`-th node from the end in another group, so
        # every draw is a real partition: nothing is rejected, and shrinking stays cheap.
        group_of = [0, *others]
        group_of[-1 - cut_off] = group_of[-1 - cut_off] or 1
        by_group: dict[int, list[int]] = {}
        for node, group in zip(ids, group_of, strict=True):
            by_group.setdefault(group, []).append(node)
        return Partition(sorted(tuple(group) for group in by_group.values()), at, duration)

    return st.builds(build, labels, st.integers(0, len(ids) - 2), at_ns, for_ns)


def one_ways(
    nodes: int, *, max_at_ns: int = 0, min_for_ns: int = _MS, max_for_ns: int = 3_000 * _MS
) -> st.SearchStrategy[OneWay]:
    """One-way link cuts between two distinct nodes of 1..`nodes` (`nodes` >= 2)."""
    ids = _node_ids(nodes)
    if len(ids) < 2:
        raise ValueError("a one-way cut needs at least 2 nodes")
    at_ns, for_ns = _timing(max_at_ns, min_for_ns, max_for_ns)

    def build(sender: int, offset: int, at: int, duration: int) -> OneWay:
        # An offset of 1..nodes-1 from the sender never lands on it, so no draw is rejected.
        return OneWay(ids[sender], ids[(sender + offset) % len(ids)], at, duration)

    return st.builds(
        build, st.integers(0, len(ids) - 1), st.integers(1, len(ids) - 1), at_ns, for_ns
    )


def crashes(
    nodes: int, *, max_at_ns: int = 0, min_for_ns: int = _MS, max_for_ns: int = 3_000 * _MS
) -> st.SearchStrategy[Crash]:
    """A crash of one node of 1..`nodes`, restarted after the drawn duration."""
    at_ns, for_ns = _timing(max_at_ns, min_for_ns, max_for_ns)
    return st.builds(Crash, st.sampled_from(_node_ids(nodes)), at_ns, for_ns)


def pauses(
    nodes: int, *, max_at_ns: int = 0, min_for_ns: int = _MS, max_for_ns: int = 3_000 * _MS
) -> st.SearchStrategy[Pause]:
    """A pause of one node of 1..`nodes`, resumed after the drawn duration."""
    at_ns, for_ns = _timing(max_at_ns, min_for_ns, max_for_ns)
    return st.builds(Pause, st.sampled_from(_node_ids(nodes)), at_ns, for_ns)


def clock_skews(
    nodes: int, *, max_at_ns: int = 0, min_for_ns: int = _MS, max_for_ns: int = 3_000 * _MS
) -> st.SearchStrategy[ClockSkew]:
    """One node's clock running 2x or 4x slow or fast; milder factors first when shrinking."""
    at_ns, for_ns = _timing(max_at_ns, min_for_ns, max_for_ns)
    return st.builds(
        ClockSkew,
        st.sampled_from(_node_ids(nodes)),
        st.sampled_from((2.0, 0.5, 4.0, 0.25)),
        at_ns,
        for_ns,
    )


def flaky_networks(
    *, max_at_ns: int = 0, min_for_ns: int = _MS, max_for_ns: int = 3_000 * _MS
) -> st.SearchStrategy[Flaky]:
    """Spells of message loss (5% to 50%) and duplication (0% to 20%); milder rates first."""
    at_ns, for_ns = _timing(max_at_ns, min_for_ns, max_for_ns)
    return st.builds(
        Flaky,
        st.sampled_from((0.05, 0.1, 0.2, 0.3, 0.5)),
        st.sampled_from((0.0, 0.05, 0.1, 0.2)),
        at_ns,
        for_ns,
    )


def fault_steps(
    nodes: int,
    *,
    kinds: Iterable[type[FaultStep]] = FAULT_KINDS,
    max_at_ns: int = 0,
    min_for_ns: int = _MS,
    max_for_ns: int = 3_000 * _MS,
) -> st.SearchStrategy[FaultStep]:
    """One fault step of any of `kinds` (in `FAULT_KINDS` order, which is the shrink order).

    Kinds that need two nodes (`Partition`, `OneWay`) are left out of a one-node cluster.
    """
    _node_ids(nodes)
    wanted = set(kinds)
    unknown = wanted - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(k.__name__ for k in unknown)}")
    if nodes < 2:
        wanted -= {Partition, OneWay}
    options = {"max_at_ns": max_at_ns, "min_for_ns": min_for_ns, "max_for_ns": max_for_ns}
    makers: dict[type[FaultStep], Callable[[], st.SearchStrategy[FaultStep]]] = {
        Partition: lambda: partitions(nodes, **options),
        Crash: lambda: crashes(nodes, **options),
        Pause: lambda: pauses(nodes, **options),
        OneWay: lambda: one_ways(nodes, **options),
        ClockSkew: lambda: clock_skews(nodes, **options),
        Flaky: lambda: flaky_networks(**options),
    }
    chosen = [makers[kind]() for kind in FAULT_KINDS if kind in wanted]
    if not chosen:
        raise ValueError("fault_steps needs at least one kind that fits this many nodes")
    return st.one_of(chosen)


def fault_schedules(
    nodes: int,
    *,
    kinds: Iterable[type[FaultStep]] = FAULT_KINDS,
    min_faults: int = 0,
    max_faults: int = 4,
    horizon_ns: int = 5_000 * _MS,
    min_for_ns: int = _MS,
    max_for_ns: int = 3_000 * _MS,
) -> st.SearchStrategy[list[FaultStep]]:
    """Lists of `min_faults` to `max_faults` fault steps on nodes 1..`nodes`, sorted by start.

    Each starts within `horizon_ns` of the schedule being applied and lasts between
    `min_for_ns` and `max_for_ns` (whole milliseconds). Schedules shrink toward fewer steps,
    earlier and shorter ones, and kinds early in `FAULT_KINDS`.
    """
    steps = fault_steps(
        nodes, kinds=kinds, max_at_ns=horizon_ns, min_for_ns=min_for_ns, max_for_ns=max_for_ns
    )
    return st.lists(steps, min_size=min_faults, max_size=max_faults).map(
        lambda schedule: sorted(schedule, key=lambda step: step.at_ns)
    )


# ---- running a schedule --------------------------------------------------------------------


class FaultInjector:
    """Starts and stops fault steps on one cluster, letting overlapping faults compose.

    A node is down while any `Crash` covers it, and frozen while any `Pause` does (a node that
    restarts while a pause still covers it comes back frozen); a link is cut while any
    `Partition` or `OneWay` covers it; the newest `ClockSkew` on a node wins, and without one
    the node ticks every `cluster.tick_ns`; the loss of overlapping `Flaky` steps compounds, the
    highest duplication applies, and without one the network has the link faults it had when
    the injector was made. The injector owns the network's blocked links, so mix it with direct
    calls to `cluster.network.partition` only while it has no link faults active.

    `on_crash(node)` is called right after each node goes down, and `on_restart(node)` right
    after it comes back, for checkers that track what each incarnation applied.
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        on_crash: Callable[[int], None] | None = None,
        on_restart: Callable[[int], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self._on_crash = on_crash
        self._on_restart = on_restart
        self._active: dict[int, FaultStep] = {}
        self._next_token = 0
        self._generation = 0
        self._crashed: Counter[int] = Counter()
        self._paused: Counter[int] = Counter()
        self._base_link_faults = cluster.network.faults

    @property
    def active(self) -> list[FaultStep]:
        """The fault steps in effect now, oldest first."""
        return list(self._active.values())

    def apply(self, schedule: Iterable[FaultStep]) -> None:
        """Schedule every step: each starts `at_ns` from now and stops `for_ns` after that."""
        generation = self._generation
        cluster = self.cluster
        for step in schedule:
            cluster.schedule(
                cluster.now + step.at_ns, partial(self._start_scheduled, step, generation)
            )

    def _start_scheduled(self, step: FaultStep, generation: int) -> None:
        if generation != self._generation:
            return
        token = self.start(step)
        self.cluster.schedule(self.cluster.now + step.for_ns, lambda: self.stop(token))

    def start(self, step: FaultStep) -> int:
        """Put `step` in effect now, whatever its `at_ns` and `for_ns`; returns the token that
        `stop` takes."""
        token = self._next_token
        self._next_token += 1
        self._active[token] = step
        cluster = self.cluster
        match step:
            case Crash(node=node):
                self._crashed[node] += 1
                if self._crashed[node] == 1:
                    cluster.crash(node)
                    if self._on_crash is not None:
                        self._on_crash(node)
            case Pause(node=node):
                self._paused[node] += 1
                if self._paused[node] == 1:
                    cluster.pause(node)
            case ClockSkew(node=node):
                self._update_clock(node)
            case Partition() | OneWay():
                self._update_links()
            case Flaky():
                self._update_link_faults()
        return token

    def stop(self, token: int) -> None:
        """End the step that `start` returned `token` for; nothing if it already ended."""
        step = self._active.pop(token, None)
        cluster = self.cluster
        match step:
            case None:
                return
            case Crash(node=node):
                self._crashed[node] -= 1
                if self._crashed[node] == 0:
                    cluster.restart(node)
                    if self._paused[node]:
                        cluster.pause(node)
                    if self._on_restart is not None:
                        self._on_restart(node)
            case Pause(node=node):
                self._paused[node] -= 1
                if self._paused[node] == 0:
                    cluster.resume(node)
            case ClockSkew(node=node):
                self._update_clock(node)
            case Partition() | OneWay():
                self._update_links()
            case Flaky():
                self._update_link_faults()

    def heal(self, *, cancel_pending: bool = True) -> None:
        """End every active step now, newest first; unless told otherwise, also cancel every
        scheduled step that has not started yet."""
        if cancel_pending:
            self._generation += 1
        for token in reversed(list(self._active)):
            self.stop(token)

    def _update_clock(self, node: int) -> None:
        cluster = self.cluster
        skews = [s for s in self._active.values() if isinstance(s, ClockSkew) and s.node == node]
        factor = skews[-1].factor if skews else 1.0
        cluster.tick_ns_of[node] = max(1, int(cluster.tick_ns * factor))

    def _update_links(self) -> None:
        cut: set[tuple[int, int]] = set()
        for step in self._active.values():
            if isinstance(step, Partition | OneWay):
                cut |= step.links()
        self.cluster.network.cut(cut)

    def _update_link_faults(self) -> None:
        base = self._base_link_faults
        survive, duplicate = 1.0 - base.loss, base.duplicate
        for step in self._active.values():
            if isinstance(step, Flaky):
                survive *= 1.0 - step.loss
                duplicate = max(duplicate, step.duplicate)
        self.cluster.network.faults = attrs.evolve(base, loss=1.0 - survive, duplicate=duplicate)


def apply_schedule(
    cluster: Cluster,
    schedule: Iterable[FaultStep],
    *,
    on_crash: Callable[[int], None] | None = None,
    on_restart: Callable[[int], None] | None = None,
) -> FaultInjector:
    """Schedule `schedule` on `cluster`, its times counted from `cluster.now`.

    Returns the `FaultInjector` that runs it (passing it `on_crash` and `on_restart`): its
    `heal()` ends every fault at once, and its `apply` adds more steps that compose with these.
    Nothing happens until the cluster runs.
    """
    injector = FaultInjector(cluster, on_crash=on_crash, on_restart=on_restart)
    injector.apply(schedule)
    return injector


# ---- workloads -----------------------------------------------------------------------------


@attrs.frozen
class Proposal:
    """A client proposing `command` at the leader, `at_ns` after the workload is applied."""

    at_ns: int = attrs.field(validator=_non_negative)
    command: bytes


def workloads(
    commands: st.SearchStrategy[bytes],
    *,
    max_ops: int = 20,
    horizon_ns: int = 5_000 * _MS,
) -> st.SearchStrategy[list[Proposal]]:
    """Lists of up to `max_ops` proposals of commands drawn from `commands`, at whole
    milliseconds within `horizon_ns`, sorted by time; they shrink toward fewer, earlier ones."""
    proposal = st.builds(Proposal, _milliseconds(0, horizon_ns), commands)
    return st.lists(proposal, max_size=max_ops).map(
        lambda workload: sorted(workload, key=lambda p: p.at_ns)
    )


def kv_commands(
    keys: Sequence[str] = ("a", "b", "c"), values: st.SearchStrategy[int] | None = None
) -> st.SearchStrategy[bytes]:
    """`statemachines.KVStore` commands (get, put, delete, cas) on `keys`, with integer values
    drawn from `values` (0 to 9 by default)."""
    key = st.sampled_from(tuple(keys))
    value = values if values is not None else st.integers(0, 9)
    return st.one_of(
        st.builds(encode_put, key, value),
        st.builds(encode_get, key),
        st.builds(encode_delete, key),
        st.builds(encode_cas, key, st.none() | value, value),
    )


def proposal_target(cluster: Cluster) -> int | None:
    """Where a client would propose now: the running, unpaused leader of the highest term."""
    best: tuple[int, int] | None = None
    for node_id, replica in cluster.replicas.items():
        node = replica.node
        if (
            replica.up
            and not cluster.is_paused(node_id)
            and node.role is Role.LEADER
            and (best is None or node.term > best[0])
        ):
            best = (node.term, node_id)
    return None if best is None else best[1]


def apply_workload(cluster: Cluster, workload: Iterable[Proposal]) -> list[tuple[int, int, bytes]]:
    """Schedule each proposal at `proposal_target(cluster)` at its time (from `cluster.now`).

    Returns a list that fills, as the cluster runs, with the (term, index, command) of every
    proposal a leader accepted; one made with no leader, or refused (`NotLeader`,
    `CommandTooLarge`), is dropped, as a client that gave up would.
    """
    accepted: list[tuple[int, int, bytes]] = []

    def propose(command: bytes) -> None:
        target = proposal_target(cluster)
        if target is None:
            return
        try:
            term, index = cluster.propose(target, command)
        except (NotLeader, CommandTooLarge):
            return
        accepted.append((term, index, command))

    for proposal in workload:
        cluster.schedule(cluster.now + proposal.at_ns, partial(propose, proposal.command))
    return accepted
