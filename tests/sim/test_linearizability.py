"""The linearizability checker: hand-built anomalies, generated correct histories, a brute-force
oracle, scale, and the check-history command."""

from __future__ import annotations

import io
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim._check_history import check_history_command
from sim._history import Op, OpKind, Outcome, Scalar, history_from_records
from sim._linearizability import MODELS, check_linearizability

READ, WRITE, CAS = OpKind.READ, OpKind.WRITE, OpKind.CAS
OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO
REPLAY = "replay: python -m pytest tests/sim/test_linearizability.py -k"


def op(
    process: int,
    kind: OpKind,
    value: Any,
    start: int,
    end: int | None = None,
    *,
    outcome: Outcome = OK,
    key: str | None = "x",
) -> Op:
    """An op on ``key``; leaving out ``end`` makes it info."""
    return Op(process, kind, key, value, INFO if end is None else outcome, start, end)


def test_an_empty_history_is_linearizable() -> None:
    assert check_linearizability([]).ok


def test_sequential_reads_see_the_latest_write() -> None:
    ops = [op(1, READ, None, 0, 1), op(1, WRITE, 1, 2, 3), op(2, READ, 1, 4, 5)]
    assert check_linearizability(ops).ok


def test_a_read_concurrent_with_a_write_may_see_either_value() -> None:
    for seen in (None, 1):
        assert check_linearizability([op(1, WRITE, 1, 0, 10), op(2, READ, seen, 2, 5)]).ok


def test_stale_read_after_a_completed_write_is_caught() -> None:
    write, read = op(1, WRITE, 1, 0, 10), op(2, READ, None, 11, 12)
    result = check_linearizability([write, read])
    assert not result.ok
    assert result.key == "x"
    assert set(result.counterexample) == {write, read}


def test_stale_read_of_an_overwritten_value_is_caught() -> None:
    first, second = op(1, WRITE, 1, 0, 1), op(1, WRITE, 2, 2, 3)
    stale = op(2, READ, 1, 4, 5)
    result = check_linearizability([first, second, stale])
    assert not result.ok
    assert {second, stale} <= set(result.counterexample)


def test_lost_write_is_caught() -> None:
    """An acknowledged write that a later read no longer sees, with nothing overwriting it."""
    ops = [op(1, WRITE, 1, 0, 1), op(1, WRITE, 2, 2, 3), op(2, READ, 2, 4, 5)]
    ops += [op(2, READ, 1, 6, 7)]
    assert not check_linearizability(ops).ok


def test_a_failed_write_never_takes_effect() -> None:
    ops = [op(1, WRITE, 1, 0, 1, outcome=FAIL), op(2, READ, 1, 2, 3)]
    result = check_linearizability(ops)
    assert not result.ok
    assert result.counterexample == (ops[1],)
    assert "no op invoked before it completed could have installed" in result.reason


def test_a_read_cannot_see_a_write_invoked_after_it_completed() -> None:
    ops = [op(1, READ, 1, 0, 1), op(2, WRITE, 1, 2, 3)]
    assert not check_linearizability(ops).ok


def test_an_ok_cas_needs_its_expected_value() -> None:
    assert check_linearizability([op(1, CAS, (None, 1), 0, 1), op(1, READ, 1, 2, 3)]).ok
    result = check_linearizability([op(1, CAS, (0, 1), 0, 1)])
    assert not result.ok


def test_two_concurrent_cas_from_one_value_cannot_both_succeed() -> None:
    ops = [op(1, CAS, (None, 1), 0, 10), op(2, CAS, (None, 2), 0, 10)]
    assert not check_linearizability(ops).ok
    ops[1] = op(2, CAS, (None, 2), 0, 10, outcome=FAIL)
    assert check_linearizability(ops).ok


def test_a_cas_chain_orders_concurrent_ops() -> None:
    ops = [op(1, CAS, (2, 3), 0, 10), op(2, CAS, (1, 2), 0, 10), op(3, WRITE, 1, 0, 10)]
    ops += [op(4, READ, 3, 11, 12)]
    assert check_linearizability(ops).ok


def test_an_info_write_may_take_effect_long_after_it_was_invoked() -> None:
    """The write's outcome is unknown: it can explain a read well after a read that missed it."""
    ops = [op(1, WRITE, 1, 0), op(2, READ, None, 5, 6), op(2, READ, 1, 10, 11)]
    assert check_linearizability(ops).ok


def test_an_info_write_never_observed_may_never_happen() -> None:
    ops = [op(1, WRITE, 1, 0), op(2, READ, None, 5, 6), op(2, READ, None, 10, 11)]
    assert check_linearizability(ops).ok


def test_an_info_write_takes_effect_at_most_once() -> None:
    ops = [op(1, WRITE, 1, 0), op(2, READ, 1, 1, 2), op(2, WRITE, 2, 3, 4)]
    ops += [op(2, READ, 1, 5, 6)]
    assert not check_linearizability(ops).ok


def test_an_info_write_cannot_explain_a_read_that_completed_before_it() -> None:
    ops = [op(2, READ, 1, 0, 1), op(1, WRITE, 1, 2)]
    assert not check_linearizability(ops).ok


def test_a_chain_of_info_cas_ops_explains_a_read() -> None:
    ops = [op(1, CAS, (None, 1), 0), op(2, CAS, (1, 2), 0), op(3, READ, 2, 5, 6)]
    assert check_linearizability(ops).ok
    assert not check_linearizability([*ops[1:], op(1, CAS, (None, 1), 0, 1, outcome=FAIL)]).ok


def test_an_info_read_observes_nothing() -> None:
    ops = [op(1, READ, None, 0), op(2, WRITE, 1, 1, 2), op(2, READ, 1, 3, 4)]
    assert check_linearizability(ops).ok


def test_an_op_invoked_as_another_completes_is_concurrent_with_it() -> None:
    """One clock reading cannot order two processes, so the checker gives the benefit."""
    assert check_linearizability([op(1, WRITE, 1, 0, 5), op(2, READ, None, 5, 6)]).ok
    assert not check_linearizability([op(1, WRITE, 1, 0, 5), op(2, READ, None, 6, 7)]).ok
    assert check_linearizability([op(1, WRITE, 1, 5), op(2, READ, 1, 0, 5)]).ok
    assert not check_linearizability([op(1, WRITE, 1, 6), op(2, READ, 1, 0, 5)]).ok


@pytest.mark.parametrize("read", [True, 1.0, "1"])
def test_values_of_different_json_types_differ(read: Scalar) -> None:
    assert not check_linearizability([op(1, WRITE, 1, 0, 1), op(1, READ, read, 2, 3)]).ok


def test_the_register_model_ignores_keys() -> None:
    ops = [op(1, WRITE, 1, 0, 1, key="a"), op(1, READ, 1, 2, 3, key="b")]
    assert check_linearizability(ops, "register").ok
    assert not check_linearizability(ops, "kv").ok


def test_the_register_model_checks_keyless_ops() -> None:
    ops = [op(1, WRITE, 1, 0, 1, key=None), op(2, READ, None, 2, 3, key=None)]
    result = check_linearizability(ops, "register")
    assert not result.ok
    assert result.key is None


def test_the_kv_model_refuses_keyless_ops() -> None:
    with pytest.raises(ValueError, match="needs a key on every op"):
        check_linearizability([op(1, WRITE, 1, 0, 1, key=None)], "kv")


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model 'graph'"):
        check_linearizability([], "graph")
    assert set(MODELS) == {"kv", "register"}


def test_keys_are_checked_independently_and_the_first_failing_key_is_reported() -> None:
    healthy = [op(1, WRITE, 1, 0, 1, key="a"), op(1, READ, 1, 2, 3, key="a")]
    broken_c = [op(2, WRITE, 1, 0, 1, key="c"), op(2, READ, None, 2, 3, key="c")]
    broken_b = [op(3, WRITE, 1, 0, 1, key="b"), op(3, READ, 2, 2, 3, key="b")]
    result = check_linearizability([*broken_c, *healthy, *broken_b])
    assert (result.ok, result.key) == (False, "b")
    assert set(result.counterexample) <= set(broken_b)
    # Each key is its own register: the same ops on one key would interfere.
    assert check_linearizability([*healthy, op(4, READ, None, 2, 3, key="d")]).ok


def test_explain_lists_the_counterexample_one_op_per_line() -> None:
    ops = [op(1, WRITE, 1, 0, 10), op(2, READ, None, 11, 12)]
    result = check_linearizability(ops)
    lines = result.explain().splitlines()
    assert lines[0].startswith("not linearizable under the kv model at key 'x': ")
    assert lines[1:] == [f"  {ops[0].describe()}", f"  {ops[1].describe()}"]
    assert str(result) == result.explain()
    assert str(check_linearizability(ops[:1])) == "linearizable under the kv model"


# A brute-force oracle: every order of every subset of info ops, straight from the definition.


def brute_force_linearizable(ops: list[Op]) -> bool:
    live = [o for o in ops if o.outcome is not FAIL and not (o.kind is READ and o.outcome is INFO)]

    def typed(value: Scalar) -> tuple[type, Scalar]:
        return type(value), value

    def must_precede(a: Op, b: Op) -> bool:
        return a.complete_time is not None and a.complete_time < b.invoke_time

    @cache
    def search(done: frozenset[int], value: tuple[type, Scalar]) -> bool:
        if all(i in done or o.outcome is INFO for i, o in enumerate(live)):
            return True
        for i, candidate in enumerate(live):
            if i in done or any(
                j not in done and must_precede(other, candidate) for j, other in enumerate(live)
            ):
                continue
            after: tuple[type, Scalar] | None
            if isinstance(candidate.value, tuple):
                expected, new = candidate.value
                after = typed(new) if typed(expected) == value else None
            elif candidate.kind is WRITE:
                after = typed(candidate.value)
            else:
                after = value if typed(candidate.value) == value else None
            if after is not None and search(done | {i}, after):
                return True
        return False

    return search(frozenset(), typed(None))


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    """Up to 9 ops on 1-4 processes over values None, 0, 1: tiny, so the oracle is quick."""
    values = st.sampled_from([None, 0, 1])
    ops = []
    free_at = dict.fromkeys(range(draw(st.integers(1, 4))), 0)
    for _ in range(draw(st.integers(0, 9))):
        process = draw(st.sampled_from(sorted(free_at)))
        start = free_at[process] + draw(st.integers(0, 3))
        end = start + draw(st.integers(0, 6))
        kind = draw(st.sampled_from(list(OpKind)))
        value = (draw(values), draw(values)) if kind is CAS else draw(values)
        outcome = draw(st.sampled_from([OK, OK, OK, FAIL, INFO]))
        if kind is READ and outcome is not OK:
            value = None
        free_at[process] = end + 1
        ops.append(
            op(process, kind, value, start, None if outcome is INFO else end, outcome=outcome)
        )
    return ops


@settings(max_examples=500, derandomize=True, deadline=None)
@given(small_histories())
def test_the_checker_agrees_with_brute_force(ops: list[Op]) -> None:
    assert check_linearizability(ops).ok == brute_force_linearizable(ops)


# Histories generated from a correct register: every op takes effect atomically at one instant
# within its window (or, when info, at any later instant or never).


def correct_history(
    rng: random.Random,
    *,
    processes: int,
    ops_per_process: int,
    values: int | None,
    info_rate: float,
    keys: tuple[str, ...] = ("x",),
) -> list[dict[str, Any]]:
    """Jepsen records of clients against an atomic register per key, ``values`` distinct values
    (None: every write unique), a share ``info_rate`` of ops with their outcome lost."""
    ops: list[dict[str, Any]] = []
    for process in range(processes):
        time = rng.randrange(5)
        for _ in range(ops_per_process):
            f = rng.choice(("read", "read", "write", "cas"))
            start = time
            point = start + rng.randint(0, 10)
            end = point + rng.randint(0, 10)
            outcome, applies = "ok", True
            if rng.random() < info_rate:
                outcome, applies = "info", rng.random() < 0.5
                point = start + rng.randint(0, 200)
            elif f == "write" and rng.random() < 0.05:
                outcome, applies = "fail", False
            ops.append({"process": process, "f": f, "key": rng.choice(keys), "start": start})
            ops[-1].update(point=point, end=end, outcome=outcome, applies=applies)
            time = end + rng.randint(0, 5)
    register: dict[str, Any] = dict.fromkeys(keys)
    for count, record in enumerate(sorted(ops, key=lambda record: record["point"])):
        key, f = record["key"], record["f"]
        fresh = count if values is None else rng.randrange(values)
        if f == "write":
            record["value"] = fresh
        elif f == "cas":
            likely = register[key] if values is None else rng.randrange(values)
            record["value"] = [likely if rng.random() < 0.7 else -1, fresh]
        if not record["applies"]:
            continue
        if f == "read":
            record["result"] = register[key]
        elif f == "write":
            register[key] = record["value"]
        elif register[key] == record["value"][0]:
            register[key] = record["value"][1]
        elif record["outcome"] == "ok":
            record["outcome"] = "fail"
    events = []
    for record in ops:
        common = {"process": record["process"], "f": record["f"], "key": record["key"]}
        value = record.get("value")
        events.append((record["start"], {**common, "type": "invoke", "value": value}))
        done = record.get("result") if record["f"] == "read" else value
        events.append((record["end"], {**common, "type": record["outcome"], "value": done}))
    # Stable: a process's completion stays before its next invocation at the same instant.
    events.sort(key=lambda event: event[0])
    return [{**record, "time": time} for time, record in events]


def mutate_read(records: list[dict[str, Any]], rng: random.Random, value: Any) -> int:
    """Make one ok read from the second half return ``value``; its record index."""
    reads = [i for i, r in enumerate(records) if r["type"] == "ok" and r["f"] == "read"]
    index = rng.choice(reads[len(reads) // 2 :])
    records[index]["value"] = value
    return index


CONFIGS: dict[str, dict[str, Any]] = {
    "unique-values": {"processes": 10, "ops_per_process": 30, "values": None, "info_rate": 0.1},
    "three-values": {"processes": 10, "ops_per_process": 30, "values": 3, "info_rate": 0.1},
    "many-info": {"processes": 6, "ops_per_process": 40, "values": None, "info_rate": 0.4},
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(8))
def test_histories_of_a_correct_register_are_linearizable(config: str, seed: int) -> None:
    records = correct_history(random.Random(seed), keys=("a", "b"), **CONFIGS[config])
    result = check_linearizability(history_from_records(records))
    assert result.ok, f"seed {seed}: {result}\n{REPLAY} '{config}-{seed}'"


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(8))
def test_a_read_of_a_value_never_written_is_caught(config: str, seed: int) -> None:
    rng = random.Random(seed)
    records = correct_history(rng, **CONFIGS[config])
    index = mutate_read(records, rng, "never written")
    result = check_linearizability(history_from_records(records))
    assert not result.ok, f"seed {seed}\n{REPLAY} '{config}-{seed}'"
    assert [o.complete_line for o in result.counterexample] == [index + 1]


@pytest.mark.parametrize("seed", range(8))
def test_a_stale_read_is_caught_with_a_small_counterexample(seed: int) -> None:
    rng = random.Random(seed)
    records = correct_history(rng, **CONFIGS["unique-values"])
    writes = [r["value"] for r in records if r["type"] == "ok" and r["f"] == "write"]
    index = mutate_read(records, rng, writes[0])
    result = check_linearizability(history_from_records(records))
    assert not result.ok, f"seed {seed}\n{REPLAY} 'stale and {seed}'"
    assert len(result.counterexample) <= 4, result.explain()
    assert index + 1 in {o.complete_line for o in result.counterexample}, result.explain()


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    processes=st.integers(1, 12),
    values=st.sampled_from([None, 2, 5]),
    info_rate=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_generated_correct_histories_always_pass(
    seed: int, processes: int, values: int | None, info_rate: float
) -> None:
    records = correct_history(
        random.Random(seed),
        processes=processes,
        ops_per_process=15,
        values=values,
        info_rate=info_rate,
    )
    assert check_linearizability(history_from_records(records)).ok


@pytest.mark.parametrize("values", [None, 5])
def test_two_thousand_ops_on_one_key_with_twenty_processes_and_info_ops(
    values: int | None,
) -> None:
    records = correct_history(
        random.Random(2024), processes=20, ops_per_process=100, values=values, info_rate=0.15
    )
    ops = history_from_records(records)
    assert len(ops) == 2000
    assert sum(o.outcome is INFO for o in ops) > 200
    assert check_linearizability(ops).ok


# The check-history command.


def write_history(path: Path, records: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def run_command(path: str, model: str = "kv") -> tuple[int, str]:
    out = io.StringIO()
    return check_history_command(path, model, out), out.getvalue()


def test_check_history_exits_0_with_op_counts(tmp_path: Path) -> None:
    records = correct_history(
        random.Random(7), processes=4, ops_per_process=10, values=None, info_rate=0.2
    )
    code, output = run_command(write_history(tmp_path / "h.jsonl", records))
    ops = history_from_records(records)
    assert code == 0
    assert output.startswith(f"linearizable: {len(ops)} ops (")
    assert f"{sum(o.outcome is INFO for o in ops)} info" in output


def test_check_history_exits_1_with_the_counterexample_and_its_lines(tmp_path: Path) -> None:
    records = [
        {"process": 1, "type": "invoke", "f": "write", "key": "k", "value": 1, "time": 0},
        {"process": 1, "type": "ok", "f": "write", "key": "k", "value": 1, "time": 10},
        {"process": 2, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 20},
        {"process": 2, "type": "ok", "f": "read", "key": "k", "value": None, "time": 30},
    ]
    code, output = run_command(write_history(tmp_path / "h.jsonl", records))
    assert code == 1
    lines = output.splitlines()
    assert lines[0].startswith("not linearizable under the kv model at key 'k'")
    assert lines[1:] == [
        '  process 1 write key="k" value=1 ok t=0..10 (lines 1-2)',
        '  process 2 read key="k" value=null ok t=20..30 (lines 3-4)',
    ]


def test_check_history_exits_2_naming_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"process": 1, "type": "invoke", "f": "read", "time": 0}\n\n{oops\n')
    assert run_command(str(path)) == (2, f"{path}: line 3: not valid JSON: " + _json_error())


def _json_error() -> str:
    try:
        json.loads("{oops")
    except ValueError as error:
        return f"{error}\n"
    raise AssertionError("'{oops' parsed")


def test_check_history_exits_2_for_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"
    assert run_command(str(path)) == (
        2,
        f"cannot read history {str(path)!r}: No such file or directory\n",
    )


def test_check_history_exits_2_for_an_unknown_model(tmp_path: Path) -> None:
    path = write_history(tmp_path / "h.jsonl", [])
    assert run_command(path, "graph") == (
        2,
        "unknown model 'graph': expected one of kv, register\n",
    )


def test_check_history_exits_2_for_keyless_ops_under_kv(tmp_path: Path) -> None:
    records = [{"process": 1, "type": "invoke", "f": "write", "value": 1, "time": 0}]
    path = write_history(tmp_path / "h.jsonl", records)
    code, output = run_command(path)
    assert code == 2
    assert "needs a key on every op" in output
    assert run_command(path, "register")[0] == 0
