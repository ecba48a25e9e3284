"""``python -m sim check-history``: check a JSONL client history for linearizability."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from ._history import HistoryError, Outcome, load_history
from ._linearizability import MODELS, check_linearizability

_EXIT_LINEARIZABLE = 0
_EXIT_NOT_LINEARIZABLE = 1
_EXIT_BAD_INPUT = 2


def check_history_command(path: str, model: str, out: TextIO) -> int:
    """Check the history at ``path`` under ``model`` ("kv" or "register"), writing to ``out``.

    Returns 0 and prints op counts when the history is linearizable; 1 and the counterexample,
    one op per line with its file lines, when it is not; 2 with a one-line reason when the
    model is unknown or the file cannot be read or is not a valid history. Never raises for bad
    input.
    """
    if model not in MODELS:
        out.write(f"unknown model {model!r}: expected one of {', '.join(MODELS)}\n")
        return _EXIT_BAD_INPUT
    try:
        ops = load_history(path)
    except HistoryError as error:
        out.write(f"{path}: {error}\n")
        return _EXIT_BAD_INPUT
    except OSError as error:
        out.write(f"cannot read history {path!r}: {error.strerror or error}\n")
        return _EXIT_BAD_INPUT
    try:
        result = check_linearizability(ops, model)
    except ValueError as error:
        # The history parsed but the model cannot read it, e.g. keyless ops under kv.
        out.write(f"{path}: {error}\n")
        return _EXIT_BAD_INPUT
    if not result.ok:
        out.write(result.explain() + "\n")
        return _EXIT_NOT_LINEARIZABLE
    outcomes = Counter(op.outcome for op in ops)
    keys = len({op.key for op in ops}) if model == "kv" else 1
    out.write(
        f"linearizable: {len(ops)} ops ({outcomes[Outcome.OK]} ok, {outcomes[Outcome.FAIL]} "
        f"fail, {outcomes[Outcome.INFO]} info) on {keys} register{'s' * (keys != 1)}, "
        f"{model} model\n"
    )
    return _EXIT_LINEARIZABLE
