"""The HTTP API (`raft.runtime._http`, served by hypercorn) of a real 3-process cluster on
127.0.0.1, through a real HTTP client (httpx): writes to a follower are redirected to the
leader with a 307, reads at each consistency, compare-and-set, delete, status."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from raft.testing.processes import ProcessCluster

pytest.importorskip("hypercorn")
httpx = pytest.importorskip("httpx")


async def test_kv_over_http_on_a_three_process_cluster(tmp_path: Path) -> None:
    cluster = ProcessCluster(tmp_path, http=True, lease_reads=True)
    try:
        await cluster.start_all()
        leader = await cluster.find_leader()
        base = {i: f"http://127.0.0.1:{n.http_port}" for i, n in cluster.nodes.items()}
        follower = next(i for i in cluster.nodes if i != leader)
        async with httpx.AsyncClient(timeout=5.0) as client:
            statuses = [(await client.get(f"{base[i]}/v1/status")).json() for i in base]
            assert sorted(s["id"] for s in statuses) == [1, 2, 3]
            assert [s["id"] for s in statuses if s["role"] == "LEADER"] == [leader]

            redirect = await client.put(f"{base[follower]}/v1/kv/colour", json="blue")
            assert redirect.status_code == 307
            assert redirect.headers["location"] == f"{base[leader]}/v1/kv/colour"
            put = await client.put(
                f"{base[follower]}/v1/kv/colour", json="blue", follow_redirects=True
            )
            assert put.status_code == 200, put.text
            assert put.json() == {"key": "colour", "previous": None}

            got = await client.get(f"{base[leader]}/v1/kv/colour")
            assert got.json() == {"key": "colour", "value": "blue"}
            got = await client.get(
                f"{base[follower]}/v1/kv/colour",
                params={"consistency": "linearizable"},
                follow_redirects=True,
            )
            assert got.json()["value"] == "blue"
            with trio.fail_after(5):  # a stale read on a follower catches up
                while True:
                    stale = await client.get(
                        f"{base[follower]}/v1/kv/colour", params={"consistency": "stale"}
                    )
                    if stale.status_code == 200:
                        break
                    await trio.sleep(0.05)
            assert stale.json()["value"] == "blue"
            lease = await client.get(
                f"{base[leader]}/v1/kv/colour", params={"consistency": "lease"}
            )
            assert lease.json()["value"] == "blue"
            bad = await client.get(f"{base[leader]}/v1/kv/colour", params={"consistency": "x"})
            assert bad.status_code == 400

            cas = f"{base[leader]}/v1/cas/colour"
            swapped = await client.post(cas, json={"expected": "blue", "value": {"rgb": [0, 1]}})
            assert swapped.status_code == 200
            assert swapped.json() == {"key": "colour", "ok": True, "previous": "blue"}
            refused = await client.post(cas, json={"expected": "blue", "value": "red"})
            assert refused.status_code == 409
            assert refused.json()["value"] == {"rgb": [0, 1]}

            deleted = await client.delete(f"{base[follower]}/v1/kv/colour", follow_redirects=True)
            assert deleted.status_code == 200
            assert (await client.get(f"{base[leader]}/v1/kv/colour")).status_code == 404
            not_json = await client.put(f"{base[leader]}/v1/kv/k", content=b"{nope")
            assert not_json.status_code == 400
            assert (await client.get(f"{base[leader]}/v2/nothing")).status_code == 404
    finally:
        with trio.CancelScope(shield=True):
            await cluster.aclose()
