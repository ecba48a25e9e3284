"""A snapshot as storage keeps it: the state machine's bytes and where in the log they stand."""

from __future__ import annotations

import attrs

from raft.core._membership import Membership


@attrs.frozen
class SnapshotMetadata:
    """Where a snapshot sits: the last log `index` it covers, that entry's `term`, and the
    cluster `membership` in force at that index (a compacted log can no longer tell)."""

    index: int
    term: int
    membership: Membership


@attrs.frozen
class Snapshot:
    """A state machine image covering the log up to `metadata.index`; `data` is opaque."""

    metadata: SnapshotMetadata
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
