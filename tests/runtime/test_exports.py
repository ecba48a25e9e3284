"""`raft.runtime` follows the project's export rule (see tests/test_exports.py)."""

from __future__ import annotations

import raft.runtime
from tests.test_exports import test_every_public_name_is_exported_exactly_once as check_exports


def test_runtime_exports_each_public_name_once_from_a_private_module() -> None:
    check_exports(raft.runtime)
