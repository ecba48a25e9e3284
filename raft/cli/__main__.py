"""`python -m raft.cli` is `trio-raft`."""

from raft.cli import main

main()
