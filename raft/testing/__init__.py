"""Test support for users of trio-raft: `raft.testing.storage` is a conformance suite that any
storage backend can run (it needs pytest)."""
