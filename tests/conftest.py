"""Test-wide settings: Hypothesis runs derandomized, so CI replays the same examples every time
(the project's determinism rule), with no per-example deadline on this shared, noisy machine."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "trio-raft",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("trio-raft")
