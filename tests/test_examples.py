"""Every script in examples/ runs as its docstring says, and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script", sorted(EXAMPLES.glob("*.py")), ids=lambda path: path.name)
def test_example_exits_0(script: Path, tmp_path: Path) -> None:
    # Run from an empty directory so Hypothesis's example database lands there, not in the repo.
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["trio", "asyncio", "threads"])
def test_embedding_example_runs_a_cluster(mode: str, tmp_path: Path) -> None:
    # The three ways to embed (docs/embedding.md) each have an example: it must exist, elect a
    # leader, read its writes back on a follower, and see a follower refuse a write.
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"embed_{mode}.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leader: node" in result.stdout
    assert "read on follower" in result.stdout
    assert "follower refused a write" in result.stdout
