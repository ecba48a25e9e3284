"""`RaftServer` with snapshots: compaction when due, a lagging server caught up by an installed
snapshot, a restart from a stored snapshot, and sessions carried inside snapshots."""

from __future__ import annotations

import trio
import trio.testing

from raft.runtime import SessionTable, encode_envelope
from statemachines import KVResult, KVStore, encode_put
from tests.runtime._cluster import Cluster


def _encode(result: object) -> object:
    assert isinstance(result, KVResult)
    return [result.ok, result.value, result.error]


def _decode(fields: object) -> object:
    assert isinstance(fields, list)
    return KVResult(*fields)


KV_CODEC = {"encode_result": _encode, "decode_result": _decode}


async def test_compaction_install_and_restart_from_a_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, config_options={"snapshot_threshold_entries": 10}, **KV_CODEC)
        await cluster.start_all()
        leader = await cluster.leader()
        await leader.apply(encode_put("s", "first"), client_id=5, seq=1)
        lagging = cluster.followers()[0].node.node_id
        cluster.stop(lagging)
        for i in range(60):
            await leader.apply(encode_put("x", i))
        storage = cluster.storages[leader.node.node_id]
        assert storage.snapshot() is not None
        assert storage.first_index() > 40  # compacted: the lagging node needs the snapshot
        back = await cluster.start(lagging)
        await back.wait_applied(leader.status().applied_index, timeout=20)
        assert back.state_machine.get("x") == 59  # type: ignore[attr-defined]
        lagging_storage = cluster.storages[lagging]
        assert lagging_storage.snapshot() is not None  # installed, not replayed
        # The session table came with the snapshot: a retry of (5, 1) is not applied again.
        cluster.stop(leader.node.node_id)
        new = await cluster.leader()
        assert await new.apply(encode_put("s", "again"), client_id=5, seq=1) == KVResult(True, None)
        assert await new.read(lambda kv: kv.get("s")) == "first"
        # Restart from a stored snapshot: the state machine starts from it, then the log.
        node_id = new.node.node_id
        applied = new.status().applied_index
        cluster.stop(node_id)
        restarted = await cluster.start(node_id)
        await restarted.wait_applied(applied, timeout=20)
        assert restarted.state_machine.get("x") == 59  # type: ignore[attr-defined]
        assert restarted.state_machine.get("s") == "first"  # type: ignore[attr-defined]
        nursery.cancel_scope.cancel()


def test_session_table_snapshot_round_trip() -> None:
    table = SessionTable(KVStore(), max_clients=2, **KV_CODEC)
    assert table.apply(encode_envelope(1, 1, encode_put("a", 1))) == KVResult(True, None)
    assert table.apply(encode_envelope(2, 1, encode_put("a", 2))) == KVResult(True, 1)
    copy = SessionTable(KVStore(), max_clients=2, **KV_CODEC)
    copy.restore(table.snapshot())
    # duplicates answered from the restored table, not applied
    assert copy.apply(encode_envelope(1, 1, encode_put("a", 1))) == KVResult(True, None)
    assert copy.apply(encode_envelope(2, 1, encode_put("a", 2))) == KVResult(True, 1)
    assert copy.state_machine.get("a") == 2  # type: ignore[attr-defined]
    # a third client evicts the least recently active one (deterministically)
    copy.apply(encode_envelope(3, 1, encode_put("b", 1)))
    assert len(copy) == 2 and copy.evictions == 1
    # no session: applied every time
    assert copy.apply(encode_envelope(0, 0, encode_put("a", 3))) == KVResult(True, 2)
    assert copy.apply(encode_envelope(0, 0, encode_put("a", 3))) == KVResult(True, 3)
    # garbage never raises
    assert isinstance(copy.apply(b"\xc1not an envelope"), ValueError)


def test_results_msgpack_cannot_hold_are_expired_after_a_restore() -> None:
    table = SessionTable(KVStore())  # no result codec: KVResult is not msgpack
    table.apply(encode_envelope(1, 1, encode_put("a", 1)))
    copy = SessionTable(KVStore())
    copy.restore(table.snapshot())
    result = copy.apply(encode_envelope(1, 1, encode_put("a", 1)))
    assert "not kept" in str(getattr(result, "error", ""))
    assert copy.state_machine.get("a") == 1  # type: ignore[attr-defined]
