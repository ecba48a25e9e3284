"""Prometheus metrics for a `RaftServer` (``GET /metrics`` of `raft.runtime._http`).

Needs ``prometheus-client`` (the optional ``http`` extra). Every value is read from
`RaftServer.status()` and the transport's `TransportCounters` when scraped: nothing is counted
twice and nothing runs between scrapes. Each app gets its own `CollectorRegistry` (never the
global one), so several nodes can share a process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "RaftCollector", "make_registry", "render"]

_TRANSPORT_HELP: Final = {
    "sent": "Messages handed to a peer.",
    "received": "Messages from peers handed to this node.",
    "dropped": "Messages discarded (full queue, unreachable peer, lost write, ...).",
    "bad_frames": "Connections closed for a malformed, oversized or mismatched frame.",
    "auth_failures": "Connections closed because the handshake failed.",
    "connections": "Authenticated connections opened, incoming and outgoing.",
}


class RaftCollector:
    """A custom collector: the node's status and transport counters, read at scrape time."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        status = self.server.status()
        membership = status.membership

        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, value=value)

        yield gauge("raft_node_id", "This node's id.", status.node_id)
        yield gauge("raft_term", "The current term.", status.term)
        yield gauge(
            "raft_commit_index", "The highest log index known committed.", status.commit_index
        )
        yield gauge("raft_applied_index", "The highest log index applied.", status.applied_index)
        yield gauge("raft_last_index", "The last index in this node's log.", status.last_index)
        yield gauge(
            "raft_is_leader",
            "1 when this node is the leader, else 0.",
            status.role.name == "LEADER",
        )
        leader = status.leader_id
        yield gauge(
            "raft_leader_id",
            "The known leader's id; -1 when none is known.",
            -1 if leader is None else leader,
        )
        yield gauge(
            "raft_voters", "Voters in the membership.", len(membership.voters) if membership else 0
        )
        yield gauge(
            "raft_learners",
            "Learners in the membership.",
            len(membership.learners) if membership else 0,
        )
        yield gauge(
            "raft_pending_proposals",
            "Proposals waiting for their result.",
            status.pending_proposals,
        )
        yield gauge(
            "raft_pending_bytes",
            "Bytes of proposals waiting for their result.",
            status.pending_bytes,
        )
        yield gauge("raft_sessions", "Clients in the session table.", status.sessions)
        yield gauge(
            "raft_disk_full", "1 when the last write found the disk full, else 0.", status.disk_full
        )
        yield gauge(
            "raft_max_persist_seconds",
            "The longest one persist (write and fsync) took since the node started.",
            status.max_persist_seconds,
        )
        yield CounterMetricFamily(
            "raft_persists",
            "Readys persisted (fsyncs, with durable storage).",
            value=status.persists,
        )
        match = GaugeMetricFamily(
            "raft_peer_match_index",
            "As leader, the highest index known replicated on each member (empty on a follower).",
            labels=["peer"],
        )
        next_index = GaugeMetricFamily(
            "raft_peer_next_index",
            "As leader, the next index to send each member (empty on a follower).",
            labels=["peer"],
        )
        for peer, progress in sorted(status.progress.items()):
            match.add_metric([str(peer)], progress.match_index)
            next_index.add_metric([str(peer)], progress.next_index)
        yield match
        yield next_index
        for name, value in self.server.transport.counters.as_dict().items():
            yield CounterMetricFamily(
                f"raft_transport_{name}",
                _TRANSPORT_HELP.get(name, f"Transport {name}."),
                value=value,
            )


def make_registry(server: Any) -> CollectorRegistry:
    """A fresh registry holding a `RaftCollector` for `server`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RaftCollector(server))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)
