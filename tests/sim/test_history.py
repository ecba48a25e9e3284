"""Reading Jepsen-shaped histories: pairing, outcomes, and every bad input named by its line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from sim._history import HistoryError, Op, OpKind, Outcome, history_from_records, load_history


def invoke(
    process: int, f: str, value: Any = None, *, time: int = 0, key: str = "x"
) -> dict[str, Any]:
    return {"process": process, "type": "invoke", "f": f, "key": key, "value": value, "time": time}


def complete(
    process: int, kind: str, f: str, value: Any = None, *, time: int = 1, key: str = "x"
) -> dict[str, Any]:
    return {"process": process, "type": kind, "f": f, "key": key, "value": value, "time": time}


def test_invocations_pair_with_the_next_completion_of_their_process() -> None:
    ops = history_from_records(
        [
            invoke(1, "write", 5, time=10),
            invoke(2, "read", time=11),
            complete(2, "ok", "read", 5, time=20),
            complete(1, "ok", "write", 5, time=25),
            invoke(2, "cas", [5, 6], time=30),
            complete(2, "fail", "cas", [5, 6], time=31),
        ]
    )
    assert ops == [
        Op(1, OpKind.WRITE, "x", 5, Outcome.OK, 10, 25, invoke_line=1, complete_line=4),
        Op(2, OpKind.READ, "x", 5, Outcome.OK, 11, 20, invoke_line=2, complete_line=3),
        Op(2, OpKind.CAS, "x", (5, 6), Outcome.FAIL, 30, 31, invoke_line=5, complete_line=6),
    ]


def test_a_read_observes_only_through_an_ok_completion() -> None:
    ops = history_from_records(
        [
            invoke(1, "read"),
            complete(1, "fail", "read", 3),
            invoke(1, "read", time=2),
            complete(1, "info", "read", 3, time=3),
        ]
    )
    assert [op.value for op in ops] == [None, None]


def test_info_and_never_completed_ops_have_no_completion_time() -> None:
    ops = history_from_records(
        [invoke(1, "write", 1), complete(1, "info", "write", 1, time=7), invoke(2, "write", 2)]
    )
    assert [(op.outcome, op.complete_time, op.complete_line) for op in ops] == [
        (Outcome.INFO, None, 2),
        (Outcome.INFO, None, None),
    ]


def test_a_process_may_invoke_again_after_an_info_completion() -> None:
    ops = history_from_records(
        [
            invoke(1, "write", 1),
            complete(1, "info", "write", time=5),
            invoke(1, "read", time=6),
            complete(1, "ok", "read", 1, time=8),
        ]
    )
    assert [op.kind for op in ops] == [OpKind.WRITE, OpKind.READ]


def test_the_key_may_be_omitted_for_the_register_model() -> None:
    records = [{"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 0}]
    records.append({"process": 0, "type": "ok", "f": "write", "value": 1, "time": 1})
    assert history_from_records(records)[0].key is None


def test_load_history_skips_blank_lines_and_reports_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    lines = [json.dumps(invoke(1, "write", 1)), "", "   ", json.dumps(complete(1, "ok", "write"))]
    path.write_text("\n".join(lines) + "\n")
    [op] = load_history(path)
    assert (op.invoke_line, op.complete_line) == (1, 4)


def test_load_history_names_the_line_of_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(invoke(1, "write", 1)) + "\n\n{not json\n")
    with pytest.raises(HistoryError) as caught:
        load_history(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith("line 3: not valid JSON")


def test_load_history_rejects_nan_which_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"process": 1, "type": "invoke", "f": "write", "value": NaN, "time": 0}\n')
    with pytest.raises(HistoryError, match="NaN is not a JSON number") as caught:
        load_history(path)
    assert caught.value.line == 1


def test_load_history_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_bytes(json.dumps(invoke(1, "read")).encode() + b"\n\xff\xfe\n")
    with pytest.raises(HistoryError, match="not valid UTF-8") as caught:
        load_history(path)
    assert caught.value.line == 2


def test_load_history_lets_a_missing_file_raise_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_history(tmp_path / "missing.jsonl")


def _without(record: dict[str, Any], field: str) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != field}


BAD_HISTORIES: dict[str, tuple[list[Any], int, str]] = {
    "not an object": ([invoke(1, "read"), [1, 2]], 2, "expected a JSON object"),
    "missing process": ([_without(invoke(1, "read"), "process")], 1, "missing field 'process'"),
    "missing type": ([_without(invoke(1, "read"), "type")], 1, "missing field 'type'"),
    "missing f": ([_without(invoke(1, "read"), "f")], 1, "missing field 'f'"),
    "missing time": ([_without(invoke(1, "read"), "time")], 1, "missing field 'time'"),
    "missing write value": ([_without(invoke(1, "write"), "value")], 1, "missing field 'value'"),
    "missing read result": (
        [invoke(1, "read"), _without(complete(1, "ok", "read"), "value")],
        2,
        "missing field 'value'",
    ),
    "unknown type": ([invoke(1, "read"), complete(1, "done", "read")], 2, 'unknown type "done"'),
    "unknown f": ([invoke(1, "append", 1)], 1, 'unknown f "append"'),
    "process not an integer": ([{**invoke(1, "read"), "process": "a"}], 1, "must be an integer"),
    "process a boolean": ([{**invoke(1, "read"), "process": True}], 1, "must be an integer"),
    "time not an integer": ([{**invoke(1, "read"), "time": 1.5}], 1, "must be an integer"),
    "key not a string": ([{**invoke(1, "read"), "key": 3}], 1, "field 'key' must be a string"),
    "second invocation while outstanding": (
        [invoke(1, "write", 1), invoke(2, "read"), invoke(1, "read", time=2)],
        3,
        "process 1 invokes read while its write from line 1 is still outstanding",
    ),
    "completion without invocation": (
        [invoke(1, "read"), complete(2, "ok", "read", 1)],
        2,
        "completion for process 2, which has no outstanding invocation",
    ),
    "completion of another f": (
        [invoke(1, "read"), complete(1, "ok", "write", 1)],
        2,
        "completion f 'write' does not match the invocation's 'read' (line 1)",
    ),
    "completion of another key": (
        [invoke(1, "read"), complete(1, "ok", "read", 1, key="y")],
        2,
        "completion key 'y' does not match the invocation's 'x' (line 1)",
    ),
    "completion before invocation": (
        [invoke(1, "read", time=5), complete(1, "ok", "read", 1, time=4)],
        2,
        "completion time 4 is before its invocation's 5",
    ),
    "cas value a scalar": ([invoke(1, "cas", 3)], 1, "a cas value must be a list [expected, new]"),
    "cas value of three": ([invoke(1, "cas", [1, 2, 3])], 1, "must be a list [expected, new]"),
    "value not a scalar": ([invoke(1, "write", {"a": 1})], 1, "must be a JSON scalar"),
    "cas element not a scalar": ([invoke(1, "cas", [[1], 2])], 1, "must be a JSON scalar"),
}


@pytest.mark.parametrize("name", sorted(BAD_HISTORIES))
def test_bad_records_raise_history_error_naming_the_line(name: str) -> None:
    records, line, message = BAD_HISTORIES[name]
    with pytest.raises(HistoryError) as caught:
        history_from_records(records)
    assert caught.value.line == line
    assert message in caught.value.message
    assert str(caught.value) == f"line {line}: {caught.value.message}"


def test_history_error_is_a_value_error() -> None:
    assert issubclass(HistoryError, ValueError)


@pytest.mark.parametrize(
    ("kind", "value", "outcome", "complete_time"),
    [
        (OpKind.CAS, 1, Outcome.OK, 2),
        (OpKind.WRITE, (1, 2), Outcome.OK, 2),
        (OpKind.WRITE, 1, Outcome.INFO, 2),
        (OpKind.WRITE, 1, Outcome.OK, None),
        (OpKind.WRITE, 1, Outcome.OK, 0),
    ],
)
def test_op_refuses_inconsistent_fields(
    kind: OpKind, value: Any, outcome: Outcome, complete_time: int | None
) -> None:
    with pytest.raises(ValueError):
        Op(1, kind, "x", value, outcome, invoke_time=1, complete_time=complete_time)


def test_describe_names_process_f_key_value_outcome_times_and_lines() -> None:
    op = Op(3, OpKind.CAS, "x", (1, None), Outcome.INFO, 10, None, invoke_line=4, complete_line=9)
    assert op.describe() == 'process 3 cas key="x" value=[1, null] info t=10..? (lines 4-9)'
    keyless = Op(0, OpKind.READ, None, 2, Outcome.OK, 1, 2)
    assert keyless.describe() == "process 0 read value=2 ok t=1..2"


def test_history_error_survives_pickling_across_processes() -> None:
    error = pickle.loads(pickle.dumps(HistoryError(7, "missing field 'f'")))
    assert (error.line, error.message, str(error)) == (
        7,
        "missing field 'f'",
        "line 7: missing field 'f'",
    )
