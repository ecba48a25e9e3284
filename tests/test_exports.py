"""STYLE 3 (trio's test_exports): each package's `__all__` is exactly its public namespace,
every public class lives in a private module, and nothing is exported twice."""

from __future__ import annotations

import types

import pytest

import raft
import raft.core
import raft.storage
import sim
import statemachines

PACKAGES = [raft, raft.core, raft.storage, statemachines, sim]


@pytest.mark.parametrize("module", PACKAGES, ids=lambda module: module.__name__)
def test_every_public_name_is_exported_exactly_once(module: types.ModuleType) -> None:
    exported = list(module.__all__)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert len(exported) == len(set(exported)), "duplicates in __all__"
    assert set(exported) == public
    for name in exported:
        value = getattr(module, name)
        if isinstance(value, type):
            assert value.__name__ == name, f"{name} is an alias of {value.__name__}"
            assert value.__module__.rsplit(".", 1)[-1].startswith("_"), (
                f"{name} is defined in {value.__module__}, not in a private module"
            )
