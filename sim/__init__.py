"""The deterministic Raft simulator: networks, nemeses, workloads and checkers."""
