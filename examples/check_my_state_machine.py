"""Check your own replicated state machine with trio-raft's property-based harness.

    python examples/check_my_state_machine.py

Hypothesis drives three simulated replicas of `Counter` through partitions, crashes, pauses,
clock skew and message loss, checking after every step that Raft kept them consistent and that
`Counter.apply` is deterministic. A failure prints the shortest list of steps that reproduces
it, starting with the simulated cluster's seed. See docs/testing.md.
"""

import unittest

from hypothesis import settings
from hypothesis import strategies as st

from sim.testing import ReplicatedStateMachineTest


class Counter:
    """The state machine under test: each command moves the total by a signed amount."""

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: bytes) -> int:
        self.total += int.from_bytes(command, "big", signed=True)
        return self.total

    def snapshot(self) -> bytes:
        return str(self.total).encode()

    def restore(self, data: bytes) -> None:
        self.total = int(data)

    def state_digest(self) -> int:
        return self.total


class CheckCounter(ReplicatedStateMachineTest):
    state_machine_factory = Counter
    commands = st.integers(-100, 100).map(lambda n: n.to_bytes(2, "big", signed=True))


TestCounter = CheckCounter.TestCase
# Small enough to finish in a second or two; derandomized so every run checks the same cases.
TestCounter.settings = settings(
    TestCounter.settings, max_examples=20, stateful_step_count=20, derandomize=True
)

if __name__ == "__main__":
    unittest.main()
