"""What a leader knows of one follower's log (§5.3 nextIndex/matchIndex, etcd's progress).

A follower is in one of three states:

* PROBE: the leader does not know where the follower's log diverges from its own. It sends one
  AppendEntries at a time and waits for the answer (or the next heartbeat response) before
  sending another, backing `next_index` off with each rejection's hint.
* REPLICATE: the follower accepted an append, so the leader streams entries optimistically,
  moving `next_index` past what it sent, up to `max_inflight_messages` unacknowledged messages.
* SNAPSHOT: the follower needs entries the leader compacted away, so the leader sends it its
  snapshot (paper §7), one chunk at a time: `snapshot_offset` is where the next chunk starts,
  as the follower last asked. An acknowledged install moves it to REPLICATE; until then the
  snapshot does not count as a match.

Invariant: `match_index < next_index`; entries up to `match_index` are known to agree with the
leader's log.
"""

from __future__ import annotations

import enum

from raft.core._inflights import Inflights


class ProgressState(enum.Enum):
    """How the leader replicates to one follower."""

    PROBE = 1
    REPLICATE = 2
    SNAPSHOT = 3


class Progress:
    """Replication progress of one follower, as tracked by the leader."""

    __slots__ = (
        "inflights",
        "match_index",
        "next_index",
        "probe_sent",
        "recent_active",
        "snapshot_index",
        "snapshot_offset",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        self.match_index = 0
        self.next_index = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        """In PROBE a probe, in SNAPSHOT a chunk, is outstanding: send nothing more until an
        answer (or a heartbeat response, in case it was lost) arrives."""
        self.recent_active = False
        """Heard from within the current check-quorum period."""
        self.inflights = Inflights(max_inflight)
        self.snapshot_index = 0
        """In SNAPSHOT: the index of the snapshot being sent."""
        self.snapshot_offset = 0
        """In SNAPSHOT: where in the snapshot's data the next chunk starts."""

    def __repr__(self) -> str:
        return (
            f"Progress(state={self.state.name}, match={self.match_index}, "
            f"next={self.next_index}, inflight={len(self.inflights)})"
        )

    def become_probe(self) -> None:
        """Fall back to one-at-a-time probing from just after the last known match."""
        self.state = ProgressState.PROBE
        self.next_index = self.match_index + 1
        self.probe_sent = False
        self.inflights.clear()

    def become_replicate(self) -> None:
        """Start streaming after the last known match."""
        self.state = ProgressState.REPLICATE
        self.next_index = self.match_index + 1
        self.probe_sent = False
        self.inflights.clear()

    def become_snapshot(self, index: int) -> None:
        """Start sending the snapshot at `index` from its first byte."""
        self.state = ProgressState.SNAPSHOT
        self.probe_sent = False
        self.inflights.clear()
        self.snapshot_index = index
        self.snapshot_offset = 0

    def is_paused(self) -> bool:
        """Whether the leader must not send this follower more now."""
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return self.probe_sent

    def sent_entries(self, last_index: int) -> None:
        """Account for an AppendEntries whose last entry is `last_index`."""
        if self.state is ProgressState.REPLICATE:
            self.next_index = last_index + 1
            self.inflights.add(last_index)
        else:
            self.probe_sent = True

    def acknowledged(self, match_index: int) -> bool:
        """Take a successful append up to `match_index`; False if it was stale news."""
        if match_index <= self.match_index:
            return False
        self.match_index = match_index
        self.next_index = max(self.next_index, match_index + 1)
        self.probe_sent = False
        return True

    def rejected(self, rejected_index: int, conflict_index: int) -> bool:
        """Take a rejection of the append after `rejected_index`; False if it was stale.

        The follower's hint `conflict_index` lets `next_index` skip a whole divergent term
        (§5.3); it never goes below `match_index + 1`, which is known to agree. While a
        snapshot is on its way, rejections of earlier appends are stale.
        """
        if self.state is ProgressState.SNAPSHOT:
            return False
        if self.state is ProgressState.REPLICATE:
            if rejected_index <= self.match_index:
                return False
            self.become_probe()
            self.next_index = max(self.match_index + 1, min(rejected_index, conflict_index))
            return True
        if rejected_index != self.next_index - 1:
            return False
        self.next_index = max(self.match_index + 1, min(rejected_index, conflict_index))
        self.probe_sent = False
        return True
