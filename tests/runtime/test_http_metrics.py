"""``GET /metrics`` of the HTTP API (`raft.runtime._http`, `raft.runtime._metrics`): the
Prometheus text format scraped from each node of a real 3-process cluster, and a 501 when
prometheus-client is missing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from raft.runtime._http import KVHttpApp
from raft.testing.processes import ProcessCluster


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    from prometheus_client import parser  # noqa: PLC0415

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(client: Any, base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


async def test_metrics_on_each_node_of_a_three_process_cluster(tmp_path: Path) -> None:
    pytest.importorskip("hypercorn")
    pytest.importorskip("prometheus_client")
    httpx = pytest.importorskip("httpx")
    cluster = ProcessCluster(tmp_path, http=True)
    try:
        await cluster.start_all()
        leader = await cluster.find_leader()
        base = {i: f"http://127.0.0.1:{n.http_port}" for i, n in cluster.nodes.items()}
        async with httpx.AsyncClient(timeout=5.0) as client:
            scrapes = {i: await _scrape(client, base[i]) for i in base}
            leaders = [i for i, s in scrapes.items() if s[("raft_is_leader", ())] == 1]
            assert leaders == [leader]
            for i, samples in scrapes.items():
                assert samples[("raft_node_id", ())] == i
                assert samples[("raft_voters", ())] == 3
                assert samples[("raft_learners", ())] == 0
                assert samples[("raft_term", ())] >= 1
                assert samples[("raft_transport_sent_total", ())] > 0
                assert samples[("raft_transport_auth_failures_total", ())] == 0
                for name in ("received", "dropped", "bad_frames", "connections"):
                    assert ("raft_transport_" + name + "_total", ()) in samples
                assert ("raft_persists_total", ()) in samples
                assert ("raft_max_persist_seconds", ()) in samples
                peers = {dict(k[1])["peer"] for k in samples if k[0] == "raft_peer_match_index"}
                assert peers == ({"1", "2", "3"} if i == leader else set())
            before = scrapes[leader][("raft_commit_index", ())]

            put = await client.put(f"{base[leader]}/v1/kv/metered", json=1)
            assert put.status_code == 200, put.text
            after = await _scrape(client, base[leader])
            assert after[("raft_commit_index", ())] > before
            assert after[("raft_applied_index", ())] >= after[("raft_commit_index", ())] - 1
            follower = next(i for i in base if i != leader)
            assert (await _scrape(client, base[follower]))[("raft_leader_id", ())] == leader

            wrong = await client.post(f"{base[leader]}/metrics")
            assert wrong.status_code == 405
    finally:
        with trio.CancelScope(shield=True):
            await cluster.aclose()


async def test_metrics_answer_501_without_prometheus_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import raft.runtime  # noqa: PLC0415

    prefixes = ("prometheus_client", "raft.runtime._metrics")
    for name in [m for m in sys.modules if m.startswith(prefixes)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(raft.runtime, "_metrics", raising=False)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # `import` raises ImportError
    app = KVHttpApp(object(), {}, dict)
    assert app.metrics_registry is None
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b""}
    await app(scope, receive, send)
    assert sent[0]["status"] == 501
    assert b"prometheus-client" in sent[1]["body"]
