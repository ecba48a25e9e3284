"""The timeline page: one self-contained document that draws every node, fault, op and verdict."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest

from raft import Role
from sim._invariants import Violation
from sim._run import RunOptions, run_simulation
from sim._timeline import FaultSpan, Timeline
from sim._timeline_html import render_timeline_html

S = 1_000_000_000
REPO = Path(__file__).resolve().parents[2]


def record(process: int, kind: str, f: str, value: Any, time_ns: int) -> dict[str, Any]:
    return {"process": process, "type": kind, "f": f, "key": "x", "value": value, "time": time_ns}


def make_timeline(**changes: Any) -> Timeline:
    """Three nodes over 10 s: an election, a crash, a pause, two faults and three client ops."""
    base = Timeline(
        seed=7,
        nodes=(1, 2, 3),
        duration_ns=10 * S,
        role_changes=(
            (1 * S, 1, Role.PRE_CANDIDATE, 0),
            (1 * S + 5_000, 1, Role.CANDIDATE, 1),
            (1 * S + 9_000, 1, Role.LEADER, 1),
            (1 * S + 10_000, 2, Role.FOLLOWER, 1),
            (6 * S, 2, Role.LEADER, 2),
        ),
        commit_changes=((2 * S, 1, 1), (2 * S, 2, 1), (3 * S, 1, 2)),
        node_events=((4 * S, 3, "crash"), (5 * S, 3, "restart"), (7 * S, 2, "pause")),
        faults=(
            FaultSpan("partition-halves", "[1] | [2, 3]", 2 * S, 4 * S),
            FaultSpan("kill", "nodes [3]", 4 * S, 5 * S),
        ),
        history=(
            record(0, "invoke", "write", 1, 1 * S),
            record(1, "invoke", "read", None, 1 * S + 1),
            record(0, "ok", "write", 1, 2 * S),
            record(2, "invoke", "cas", [1, 2], 3 * S),
            record(1, "fail", "read", None, 3 * S),
            record(2, "info", "cas", [1, 2], 5 * S),
        ),
        violations=(),
    )
    return attrs.evolve(base, **changes)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text outside tags, of one HTML document."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if name in (a.get("class") or "").split()]


@pytest.fixture(scope="module")
def seed3() -> Timeline:
    timeline = run_simulation(3).timeline
    assert timeline is not None
    return timeline


def test_page_is_one_document_that_fetches_nothing(seed3: Timeline) -> None:
    page = render_timeline_html(seed3)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1
    assert page.count("</html>") == 1
    assert "http://" not in page
    assert "https://" not in page
    elements = Elements(page)
    references = [
        value
        for _, attributes in elements.tags
        for name, value in attributes.items()
        if name in {"src", "href", "xlink:href", "action"}
    ]
    assert references == []
    assert {tag for tag, _ in elements.tags}.isdisjoint({"script", "link", "img", "iframe"})
    assert set(re.findall(r"url\(([^)]*)\)", page)) <= {"#hatch-crashed", "#hatch-paused"}


def test_page_has_a_lane_per_node(seed3: Timeline) -> None:
    lanes = Elements(render_timeline_html(seed3)).with_class("lane")
    assert [lane["data-node"] for lane in lanes] == [str(node) for node in seed3.nodes]


def test_page_has_a_band_per_fault(seed3: Timeline) -> None:
    assert seed3.faults, "seed 3 should inject faults"
    bands = Elements(render_timeline_html(seed3)).with_class("fault")
    assert [band["data-kind"] for band in bands] == [fault.kind for fault in seed3.faults]


def test_page_has_a_bar_per_completed_op_coloured_by_outcome(seed3: Timeline) -> None:
    elements = Elements(render_timeline_html(seed3))
    for outcome in ("ok", "fail", "info"):
        completed = sum(1 for r in seed3.history if r["type"] == outcome)
        assert len(elements.with_class(outcome)) == completed, outcome
    assert len(elements.with_class("op")) == sum(1 for r in seed3.history if r["type"] != "invoke")


def test_op_never_completed_is_drawn_as_info() -> None:
    timeline = make_timeline(history=(record(5, "invoke", "write", 3, 9 * S),))
    elements = Elements(render_timeline_html(timeline))
    assert len(elements.with_class("info")) == 1


def test_header_counts_ops_faults_and_elections() -> None:
    page = render_timeline_html(make_timeline())
    assert "seed 7" in page
    assert "3 ops" in page
    assert "2 faults" in page
    assert "2 elections" in page


def test_crashes_and_pauses_are_marked_on_their_lanes() -> None:
    elements = Elements(render_timeline_html(make_timeline()))
    assert len(elements.with_class("crashed")) == 1
    assert len(elements.with_class("paused")) == 1


def test_green_banner_when_every_property_held() -> None:
    elements = Elements(render_timeline_html(make_timeline()))
    assert len(elements.with_class("held")) == 1
    assert elements.with_class("violation") == []


def test_red_banner_and_line_name_the_first_violation() -> None:
    violations = (
        Violation("election safety", "term 2 had leaders [1, 2]\nsecond line", time_ns=6 * S),
        Violation("durability", "lost entry 4"),
    )
    page = render_timeline_html(make_timeline(violations=violations))
    banner = re.search(r'<div class="banner violation">(.*?)<details>', page, re.DOTALL)
    assert banner is not None
    assert "election safety" in banner.group(1)
    assert "term 2 had leaders [1, 2]" in banner.group(1)
    assert "second line" not in banner.group(1)
    assert "and 1 more" in banner.group(1)
    assert re.search(r'<g class="violation">.*?<line ', page, re.DOTALL)


def test_violation_without_a_time_gets_a_banner_but_no_line() -> None:
    violation = Violation("linearizability", "not linearizable at key 'x'")
    page = render_timeline_html(make_timeline(violations=(violation,)))
    assert '<div class="banner violation">' in page
    assert "time unknown" in page
    assert '<g class="violation">' not in page


def test_hostile_text_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    timeline = make_timeline(
        faults=(FaultSpan(f"<b>{hostile}", hostile, 1 * S, 2 * S),),
        history=(
            {**record(0, "invoke", "write", hostile, S), "key": hostile},
            {**record(0, "ok", "write", hostile, 2 * S), "key": hostile},
        ),
        violations=(Violation(hostile, hostile, time_ns=S),),
    )
    page = render_timeline_html(timeline)
    assert "<script" not in page.lower()
    assert "<b>" not in page
    tags = {tag for tag, _ in Elements(page).tags}
    assert tags.isdisjoint({"script", "b"})
    assert "&lt;script&gt;" in page


def test_commit_lines_keep_at_most_one_point_per_pixel() -> None:
    commits = tuple((t * 100_000, 1, t) for t in range(1, 20_001))
    page = render_timeline_html(make_timeline(commit_changes=commits))
    path = re.search(r'<path class="commit" data-node="1" d="([^"]*)"', page)
    assert path is not None
    assert path.group(1).count("V") < 1600


def test_rendering_is_deterministic() -> None:
    first = run_simulation(3, RunOptions(duration=5)).timeline
    second = run_simulation(3, RunOptions(duration=5)).timeline
    assert first is not None
    assert second is not None
    assert render_timeline_html(first) == render_timeline_html(second)
    assert render_timeline_html(first) == render_timeline_html(first)


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (Debian: apt-get install chromium); screenshot not taken",
)
def test_screenshot_script_writes_a_png(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "screenshot_timeline.py"),
            str(tmp_path),
            "--seed",
            "3",
            "--duration",
            "5",
        ],
        check=True,
        timeout=180,
    )
    png = tmp_path / "timeline-seed3.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 1000
