"""Checks of the Raft safety properties (Figure 3) over what a run left behind.

Each check returns None when the property holds, or a `Violation` naming the property and the
first offending place. They look only at plain data (logs, leader sightings, applied commands),
so tests can feed them hand-made violating inputs and see them fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import attrs

from raft import Entry


@attrs.frozen
class Violation:
    """A safety property that did not hold, where, and (when known) at what simulated time."""

    property: str
    detail: str
    time_ns: int | None = None

    def __str__(self) -> str:
        when = "" if self.time_ns is None else f" at {self.time_ns / 1e9:.3f}s"
        return f"{self.property} violated{when}: {self.detail}"


def election_safety(leaders_by_term: Mapping[int, set[int]]) -> Violation | None:
    """At most one leader per term (§5.2)."""
    for term in sorted(leaders_by_term):
        leaders = sorted(leaders_by_term[term])
        if len(leaders) > 1:
            return Violation("election safety", f"term {term} had leaders {leaders}")
    return None


def log_matching(logs: Mapping[int, Sequence[Entry]]) -> Violation | None:
    """Two logs holding an entry with the same index and term are identical up to it (§5.3).

    Each log is a node's consecutive entries in index order; it may start after index 1 when
    the node compacted its log (paper §7), and then only the indexes both logs hold compare.
    """
    for a, b in combinations(sorted(logs), 2):
        log_a, log_b = logs[a], logs[b]
        if not log_a or not log_b:
            continue
        first_a, first_b = log_a[0].index, log_b[0].index
        low = max(first_a, first_b)
        high = min(first_a + len(log_a), first_b + len(log_b)) - 1
        last_agreeing = next(
            (
                index
                for index in range(high, low - 1, -1)
                if log_a[index - first_a].term == log_b[index - first_b].term
            ),
            None,
        )
        if last_agreeing is None:
            continue
        for index in range(low, last_agreeing + 1):
            entry_a, entry_b = log_a[index - first_a], log_b[index - first_b]
            if entry_a != entry_b:
                return Violation(
                    "log matching",
                    f"nodes {a} and {b} agree on index {last_agreeing} term "
                    f"{log_a[last_agreeing - first_a].term} but differ at index {index}: "
                    f"{entry_a!r} vs {entry_b!r}",
                )
    return None


def state_machine_safety(applied: Mapping[int, Sequence[tuple[int, bytes]]]) -> Violation | None:
    """No two nodes apply different commands at one index (§5.4.3).

    `applied[node]` lists the (index, command) pairs the node applied, in order.
    """
    seen: dict[int, tuple[int, bytes]] = {}
    for node_id in sorted(applied):
        for index, command in applied[node_id]:
            first = seen.setdefault(index, (node_id, command))
            if first[1] != command:
                return Violation(
                    "state machine safety",
                    f"index {index}: node {first[0]} applied {first[1]!r}, "
                    f"node {node_id} applied {command!r}",
                )
    return None
