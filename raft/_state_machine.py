"""The protocol a replicated state machine implements."""

from __future__ import annotations

from typing import Protocol


class StateMachine(Protocol):
    """Deterministic application state fed by the committed log (§5, "replicated state machine").

    Every replica applies the same committed commands in the same order, so `apply` must depend
    only on the command and the machine's current state: no clock, no randomness, no I/O whose
    answer can differ between replicas. A malformed command must produce an error *result*, never
    an exception: an exception would stop this replica while the others go on.
    """

    def apply(self, command: bytes) -> object:
        """Apply one committed command and return its result for the client that proposed it."""
        ...
