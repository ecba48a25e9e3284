"""The protocol a replicated state machine implements."""

from __future__ import annotations

from typing import Protocol


class StateMachine(Protocol):
    """Deterministic application state fed by the committed log (§5, "replicated state machine").

    Every replica applies the same committed commands in the same order, so `apply` must depend
    only on the command and the machine's current state: no clock, no randomness, no I/O whose
    answer can differ between replicas. A malformed command must produce an error *result*, never
    an exception: an exception would stop this replica while the others go on.

    `snapshot` and `restore` let a node compact its log and catch up a lagging follower (paper
    §7, thesis ch. 5): the caller takes a snapshot at an applied index and stores it in place of
    the log up to there, and a follower restores one its leader sent instead of the entries.
    """

    def apply(self, command: bytes) -> object:
        """Apply one committed command and return its result for the client that proposed it."""
        ...

    def snapshot(self) -> bytes:
        """The whole state, serialized: exactly the effect of the commands applied so far.

        `restore` on a fresh machine of this class (on any replica, in any later version of
        the program) must rebuild an equal state, one that answers every later command alike.
        """
        ...

    def restore(self, data: bytes) -> None:
        """Replace all state with what `data` (from `snapshot`) holds; the state before does
        not matter. Data that is not a valid snapshot raises `ValueError` and changes nothing."""
        ...
