"""One run drawn as a single self-contained HTML page: roles, faults, commits, client ops, verdict.

`render_timeline_html` turns a `Timeline` into one document with inline CSS and inline SVG. Nothing
is fetched (no script, font, image or stylesheet) and hover details are SVG `<title>` elements, so
the page renders the same offline, in any browser, and can be attached to a bug report as is.

Every section shares one horizontal axis in simulated seconds: that is what makes cause and effect
readable, from a partition band to the election it provokes, the stall in the commit index and the
client operations that time out while it lasts. Output is a pure function of the timeline, so the
same seed draws the same bytes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from raft import Role
from sim._invariants import Violation
from sim._timeline import FaultSpan, Timeline

_SECOND = 1_000_000_000
_WIDTH = 1560
_LEFT = 84
_RIGHT = 24
_LANE_H = 24
_LANE_GAP = 8
_LABEL_ROW_H = 15
_CHART_H = 110
_OP_ROW_H_RANGE = (4, 9)
_OPS_TARGET_H = 440
"""Client-op rows shrink (within the range) so a run with many processes still fits one screen."""
_PROCESS_LABEL_H = 9
_SECTION_GAP = 34
_LABEL_CHAR_W = 6.6
"""Roughly the width of one 11 px character, so fault labels can be kept from overlapping."""
_TICK_STEPS_NS = tuple(
    int(seconds * _SECOND) for seconds in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
)
_MAX_TICKS = 30

_ROLE_COLOURS = {
    Role.FOLLOWER: "#c9d3e0",
    Role.PRE_CANDIDATE: "#f3d77e",
    Role.CANDIDATE: "#ef9a3c",
    Role.LEADER: "#2f5fc4",
}
_OUTCOME_COLOURS = {"ok": "#2e9d4a", "fail": "#d64541", "info": "#e9a100"}
_NODE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4")
_FAULT_COLOURS = ("#8e6bd1", "#2aa198", "#607d8b", "#6b8e23", "#b8860b", "#4682b4", "#a0522d")
_VIOLATION_RED = "#c62828"

_CSS = """
body { font: 13px/1.4 "DejaVu Sans", "Liberation Sans", sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; }
.figures { color: #444; margin-bottom: 8px; }
.banner { padding: 8px 12px; border-radius: 4px; margin-bottom: 8px; font-weight: bold; }
.banner.violation { background: #fdecea; border: 2px solid #c62828; color: #8e1b1b; }
.banner pre { white-space: pre-wrap; font-weight: normal; margin: 4px 0 0; }
.banner summary { font-weight: normal; cursor: pointer; }
.banner.held { background: #e8f5e9; border: 2px solid #2e7d32; color: #1b5e20; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-bottom: 6px; font-size: 12px; }
.swatch { display: inline-block; width: 22px; height: 11px; vertical-align: -1px;
  margin-right: 4px; border: 1px solid #888; }
svg { width: 100%; height: auto; display: block; }
svg text { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; }
"""

_SVG_DEFS = (
    "<defs>"
    '<pattern id="hatch-crashed" width="6" height="6" patternUnits="userSpaceOnUse"'
    ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#9e9e9e"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#424242" stroke-width="2.5"/></pattern>'
    '<pattern id="hatch-paused" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<rect width="5" height="5" fill="#ffffff" fill-opacity="0.55"/>'
    '<line x1="0" y1="0" x2="0" y2="5" stroke="#555" stroke-width="1.2"/></pattern>'
    "</defs>"
)


@attrs.frozen
class _Axis:
    """Maps simulated nanoseconds onto the shared horizontal pixel axis."""

    duration_ns: int

    def x(self, time_ns: int) -> float:
        clamped = min(max(time_ns, 0), self.duration_ns)
        return _LEFT + (_WIDTH - _LEFT - _RIGHT) * clamped / self.duration_ns


@attrs.frozen
class _Segment:
    """A stretch of time during which one node held one role in one term."""

    node: int
    role: Role
    term: int
    start_ns: int
    end_ns: int


@attrs.frozen
class _Operation:
    """One client operation from invoke to completion.

    An `info` completion only says the client stopped waiting (at `end_ns`): the op may still take
    effect at any later time, so it is drawn on to the end of the run, fainter after `end_ns`.
    """

    process: int
    f: str
    key: str
    value: Any
    outcome: str
    start_ns: int
    end_ns: int


@attrs.frozen
class _Layout:
    """Where each section of the picture starts, top to bottom, in SVG pixels."""

    label_rows: int
    nodes: int
    op_rows: int

    @property
    def lanes_top(self) -> int:
        return self.label_rows * _LABEL_ROW_H + 26

    @property
    def chart_top(self) -> int:
        return self.lanes_top + self.nodes * (_LANE_H + _LANE_GAP) + _SECTION_GAP

    @property
    def ops_top(self) -> int:
        return self.chart_top + _CHART_H + _SECTION_GAP

    @property
    def ops_bottom(self) -> int:
        return self.ops_top + self.op_rows * self.op_row_h

    @property
    def op_row_h(self) -> int:
        low, high = _OP_ROW_H_RANGE
        return max(low, min(high, _OPS_TARGET_H // max(self.op_rows, 1)))

    @property
    def height(self) -> int:
        return self.ops_bottom + 26


def render_timeline_html(timeline: Timeline) -> str:
    """Draw `timeline` as one self-contained HTML document (inline CSS and SVG, nothing fetched).

    The page holds a header with the run's figures, a red banner naming the first violation (or a
    green one when every property held), a legend, and one SVG on a shared time axis: a role lane
    per node with crashes and pauses, fault bands, the commit index of every node, and a bar per
    client operation. The same timeline always gives the same string.
    """
    axis = _Axis(max(timeline.duration_ns, 1))
    segments = _role_segments(timeline)
    operations = _operations(timeline)
    processes = sorted({operation.process for operation in operations})
    label_rows = _fault_label_rows(timeline.faults, axis)
    # The top label row is kept for the violation marker, so fault labels never hide it.
    layout = _Layout(max(label_rows, default=-1) + 2, len(timeline.nodes), len(processes))
    svg = [
        f'<svg viewBox="0 0 {_WIDTH} {layout.height}" role="img">',
        _SVG_DEFS,
        *_fault_bands(timeline.faults, label_rows, axis, layout),
        *_time_grid(axis, layout),
        *_role_lanes(timeline, segments, axis, layout.lanes_top),
        *_commit_chart(timeline, axis, layout.chart_top),
        *_operation_rows(operations, processes, axis, layout),
        *_violation_line(timeline.violations, axis, layout),
        "</svg>",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>trio-raft timeline, seed {timeline.seed}</title>",
            f"<style>{_CSS}</style></head><body>",
            *_header(timeline, segments, operations),
            _banner(timeline.violations),
            _legend(timeline),
            *svg,
            "</body></html>",
            "",
        ]
    )


def _role_segments(timeline: Timeline) -> list[_Segment]:
    """Cut each node's time into role segments; every node starts a follower in term 0."""
    current = {node: (0, Role.FOLLOWER, 0) for node in timeline.nodes}
    segments: list[_Segment] = []
    for time_ns, node, role, term in timeline.role_changes:
        start_ns, old_role, old_term = current[node]
        segments.append(_Segment(node, old_role, old_term, start_ns, time_ns))
        current[node] = (time_ns, role, term)
    for node, (start_ns, role, term) in current.items():
        segments.append(_Segment(node, role, term, start_ns, timeline.duration_ns))
    return segments


def _node_spans(timeline: Timeline, begin: str, end: str) -> list[tuple[int, int, int]]:
    """(node, start, end) for each `begin` event up to the node's next `end` (or the run's end)."""
    open_since: dict[int, int] = {}
    spans: list[tuple[int, int, int]] = []
    for time_ns, node, kind in timeline.node_events:
        if kind == begin:
            open_since.setdefault(node, time_ns)
        elif kind == end and node in open_since:
            spans.append((node, open_since.pop(node), time_ns))
    spans.extend((node, start, timeline.duration_ns) for node, start in open_since.items())
    return spans


def _operations(timeline: Timeline) -> list[_Operation]:
    """Pair each invoke with its process's completion; an op never completed counts as info."""
    pending: dict[int, dict[str, Any]] = {}
    operations: list[_Operation] = []
    for record in timeline.history:
        if record["type"] == "invoke":
            pending[record["process"]] = record
            continue
        invoke = pending.pop(record["process"], None)
        if invoke is not None:
            operations.append(_operation(invoke, record, timeline.duration_ns))
    operations.extend(_operation(invoke, None, timeline.duration_ns) for invoke in pending.values())
    return operations


def _operation(
    invoke: dict[str, Any], completion: dict[str, Any] | None, duration_ns: int
) -> _Operation:
    outcome = "info" if completion is None else str(completion["type"])
    end_ns = duration_ns if completion is None else int(completion["time"])
    value = invoke.get("value")
    if completion is not None and completion.get("value") is not None:
        value = completion["value"]
    return _Operation(
        process=int(invoke["process"]),
        f=str(invoke["f"]),
        key=str(invoke.get("key", "")),
        value=value,
        outcome=outcome,
        start_ns=int(invoke["time"]),
        end_ns=end_ns,
    )


def _role_name(role: Role) -> str:
    return role.name.lower().replace("_", "-")


def _seconds(time_ns: int) -> str:
    return f"{time_ns / _SECOND:.3f}s"


def _header(
    timeline: Timeline, segments: Sequence[_Segment], operations: Sequence[_Operation]
) -> list[str]:
    elections = sum(1 for segment in segments if segment.role is Role.LEADER)
    figures = [
        "nodes " + ", ".join(str(node) for node in timeline.nodes),
        f"{timeline.duration_ns / _SECOND:g} s simulated",
        f"{len(operations)} ops",
        f"{len(timeline.faults)} faults",
        f"{elections} elections",
    ]
    separated = " &middot; ".join(html.escape(figure) for figure in figures)
    return [
        f"<h1>trio-raft simulation, seed {timeline.seed}</h1>",
        f'<div class="figures">{separated}</div>',
    ]


def _banner(violations: Sequence[Violation]) -> str:
    """A red banner naming the first violation, or a green one when every property held."""
    if not violations:
        return '<div class="banner held">All properties held.</div>'
    first = violations[0]
    when = "time unknown" if first.time_ns is None else f"at {_seconds(first.time_ns)}"
    detail_lines = first.detail.splitlines() or [""]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    full = "\n\n".join(str(violation) for violation in violations)
    return (
        '<div class="banner violation">'
        f"VIOLATED: {html.escape(first.property)} ({when}){more}: {html.escape(detail_lines[0])}"
        f"<details><summary>full detail</summary><pre>{html.escape(full)}</pre></details></div>"
    )


def _legend(timeline: Timeline) -> str:
    items = [(f"background:{colour}", _role_name(role)) for role, colour in _ROLE_COLOURS.items()]
    items += [
        ("background:repeating-linear-gradient(45deg,#424242 0 2px,#9e9e9e 2px 5px)", "crashed"),
        ("background:repeating-linear-gradient(90deg,#555 0 1px,#eee 1px 5px)", "paused"),
    ]
    items += [
        (f"background:{colour}", f"op {outcome}") for outcome, colour in _OUTCOME_COLOURS.items()
    ]
    items += [
        (f"background:{colour};opacity:0.5", f"fault: {kind}")
        for kind, colour in _fault_colours(timeline.faults).items()
    ]
    spans = (
        f'<span><span class="swatch" style="{style}"></span>{html.escape(name)}</span>'
        for style, name in items
    )
    return f'<div class="legend">{"".join(spans)}</div>'


def _fault_colours(faults: Iterable[FaultSpan]) -> dict[str, str]:
    kinds = sorted({fault.kind for fault in faults})
    return {kind: _FAULT_COLOURS[i % len(_FAULT_COLOURS)] for i, kind in enumerate(kinds)}


def _fault_label_rows(faults: Sequence[FaultSpan], axis: _Axis) -> list[int]:
    """Give each fault's label the first row above the lanes where it overlaps no other label."""
    row_ends: list[float] = []
    rows: list[int] = []
    for fault in faults:
        x = axis.x(fault.start_ns)
        row = next((i for i, end in enumerate(row_ends) if end < x), len(row_ends))
        if row == len(row_ends):
            row_ends.append(0.0)
        row_ends[row] = x + len(fault.kind) * _LABEL_CHAR_W + 8
        rows.append(row)
    return rows


def _fault_bands(
    faults: Sequence[FaultSpan], label_rows: Sequence[int], axis: _Axis, layout: _Layout
) -> list[str]:
    colours = _fault_colours(faults)
    parts: list[str] = []
    for fault, row in zip(faults, label_rows, strict=True):
        x0, x1 = axis.x(fault.start_ns), axis.x(fault.end_ns)
        label_y = 12 + (row + 1) * _LABEL_ROW_H
        tip = html.escape(
            f"{fault.kind}: {fault.detail} ({_seconds(fault.start_ns)} to {_seconds(fault.end_ns)})"
        )
        colour = colours[fault.kind]
        parts.append(
            f'<g class="fault" data-kind="{html.escape(fault.kind)}"><title>{tip}</title>'
            f'<rect x="{x0:.1f}" y="{label_y - 10}" width="{max(x1 - x0, 1.5):.1f}"'
            f' height="{layout.ops_bottom - label_y + 10}" fill="{colour}" fill-opacity="0.13"/>'
            f'<line x1="{x0:.1f}" y1="{label_y - 10}" x2="{x0:.1f}" y2="{layout.ops_bottom}"'
            f' stroke="{colour}" stroke-opacity="0.6"/>'
            f'<text x="{x0 + 3:.1f}" y="{label_y}" font-size="11" fill="{colour}"'
            f' font-weight="bold">{html.escape(fault.kind)}</text></g>'
        )
    return parts


def _tick_step_ns(duration_ns: int) -> int:
    return next(
        (step for step in _TICK_STEPS_NS if duration_ns / step <= _MAX_TICKS), _TICK_STEPS_NS[-1]
    )


def _time_grid(axis: _Axis, layout: _Layout) -> list[str]:
    """Vertical grid lines with second labels above the lanes and below the client ops."""
    step = _tick_step_ns(axis.duration_ns)
    parts: list[str] = []
    for tick in range(0, axis.duration_ns + 1, step):
        x = axis.x(tick)
        label = f"{tick / _SECOND:g}s"
        parts.append(
            f'<line x1="{x:.1f}" y1="{layout.lanes_top - 4}" x2="{x:.1f}" y2="{layout.ops_bottom}"'
            ' stroke="#000" stroke-opacity="0.08"/>'
        )
        for y in (layout.lanes_top - 8, layout.ops_bottom + 16):
            parts.append(
                f'<text x="{x:.1f}" y="{y}" font-size="11" text-anchor="middle" fill="#555">'
                f"{label}</text>"
            )
    return parts


def _role_lanes(
    timeline: Timeline, segments: Sequence[_Segment], axis: _Axis, top: int
) -> list[str]:
    """A lane per node: role segments (term written on leaders), then crash and pause overlays."""
    lane_y = {node: top + i * (_LANE_H + _LANE_GAP) for i, node in enumerate(timeline.nodes)}
    parts: list[str] = []
    for node, y in lane_y.items():
        parts.append(f'<g class="lane" data-node="{node}">')
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + _LANE_H / 2 + 4:.0f}" font-size="12"'
            f' text-anchor="end" font-weight="bold">node {node}</text>'
        )
        parts.extend(_segment(segment, axis, y) for segment in segments if segment.node == node)
        parts.append("</g>")
    for span in _node_spans(timeline, "crash", "restart"):
        parts.append(_overlay("crashed", span, axis, lane_y[span[0]]))
    for span in _node_spans(timeline, "pause", "resume"):
        parts.append(_overlay("paused", span, axis, lane_y[span[0]]))
    return parts


def _segment(segment: _Segment, axis: _Axis, y: int) -> str:
    x0, x1 = axis.x(segment.start_ns), axis.x(segment.end_ns)
    width = max(x1 - x0, 1.5)
    role = _role_name(segment.role)
    tip = (
        f"node {segment.node}: {role}, term {segment.term}, "
        f"{_seconds(segment.start_ns)} to {_seconds(segment.end_ns)}"
    )
    text = ""
    if segment.role is Role.LEADER and width >= 24:
        text = (
            f'<text x="{x0 + width / 2:.1f}" y="{y + _LANE_H / 2 + 4:.0f}" font-size="11"'
            f' text-anchor="middle" fill="#fff" font-weight="bold">T{segment.term}</text>'
        )
    return (
        f'<g class="segment {role}"><title>{html.escape(tip)}</title>'
        f'<rect x="{x0:.1f}" y="{y}" width="{width:.1f}" height="{_LANE_H}"'
        f' fill="{_ROLE_COLOURS[segment.role]}"/>{text}</g>'
    )


def _overlay(kind: str, span: tuple[int, int, int], axis: _Axis, y: int) -> str:
    node, start_ns, end_ns = span
    x0, x1 = axis.x(start_ns), axis.x(end_ns)
    width = max(x1 - x0, 1.5)
    tip = f"node {node} {kind} from {_seconds(start_ns)} to {_seconds(end_ns)}"
    return (
        f'<g class="{kind}"><title>{html.escape(tip)}</title>'
        f'<rect x="{x0:.1f}" y="{y - 2}" width="{width:.1f}" height="{_LANE_H + 4}"'
        f' fill="url(#hatch-{kind})"'
        ' stroke="#333" stroke-width="1"/></g>'
    )


def _commit_chart(timeline: Timeline, axis: _Axis, top: int) -> list[str]:
    """One step line per node of its commit index, merged to at most a point per pixel."""
    highest = max((commit for _, _, commit in timeline.commit_changes), default=0)
    bottom = top + _CHART_H

    def y_of(commit: int) -> float:
        return bottom - _CHART_H * commit / max(highest, 1)

    parts = [_chart_title(timeline.nodes, top), *_chart_frame(highest, top, y_of)]
    for i, node in enumerate(timeline.nodes):
        points = [(t, commit) for t, changed, commit in timeline.commit_changes if changed == node]
        colour = _NODE_COLOURS[i % len(_NODE_COLOURS)]
        parts.append(
            f'<path class="commit" data-node="{node}" d="{_step_path(points, axis, y_of)}"'
            f' fill="none" stroke="{colour}" stroke-width="1.6" stroke-opacity="0.85">'
            f"<title>node {node} commit index</title></path>"
        )
    return parts


def _chart_title(nodes: Sequence[int], top: int) -> str:
    keys = "".join(
        f'<tspan fill="{_NODE_COLOURS[i % len(_NODE_COLOURS)]}" font-weight="bold">'
        f"  \u25a0 node {node}</tspan>"
        for i, node in enumerate(nodes)
    )
    return f'<text x="{_LEFT}" y="{top - 8}" font-size="12">commit index{keys}</text>'


def _chart_frame(highest: int, top: int, y_of: Callable[[int], float]) -> list[str]:
    bottom = top + _CHART_H
    parts = [
        f'<rect x="{_LEFT}" y="{top}" width="{_WIDTH - _LEFT - _RIGHT}" height="{_CHART_H}"'
        ' fill="#fafafa" stroke="#ccc"/>'
    ]
    for value in sorted({0, highest // 2, highest}):
        y = y_of(value)
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.0f}" font-size="11" text-anchor="end"'
            f' fill="#555">{value}</text>'
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{bottom}" x2="{_WIDTH - _RIGHT}" y2="{bottom}" stroke="#999"/>'
    )
    return parts


def _step_path(points: Sequence[tuple[int, int]], axis: _Axis, y_of: Callable[[int], float]) -> str:
    """An SVG step path through (time, commit) points, keeping the last point in each pixel."""
    merged: list[tuple[float, float]] = [(axis.x(0), y_of(0))]
    for time_ns, commit in points:
        x, y = axis.x(time_ns), y_of(commit)
        if x - merged[-1][0] < 1:
            merged[-1] = (merged[-1][0], y)
        else:
            merged.append((x, y))
    steps = [f"M{merged[0][0]:.1f},{merged[0][1]:.1f}"]
    steps += [f"H{x:.1f}V{y:.1f}" for x, y in merged[1:]]
    steps.append(f"H{axis.x(axis.duration_ns):.1f}")
    return "".join(steps)


def _operation_rows(
    operations: Sequence[_Operation], processes: Sequence[int], axis: _Axis, layout: _Layout
) -> list[str]:
    """A row per client process, a bar per operation from invoke to completion."""
    row_h, top = layout.op_row_h, layout.ops_top
    row_of = {process: i for i, process in enumerate(processes)}
    label_every = -(-_PROCESS_LABEL_H // row_h)
    parts = [
        f'<text x="{_LEFT}" y="{top - 8}" font-size="12">client operations, one row per process,'
        " invoke to completion (an info op may take effect any time later: faint to the end)"
        "</text>"
    ]
    for process, row in row_of.items():
        if row % label_every == 0:
            parts.append(
                f'<text x="{_LEFT - 6}" y="{top + row * row_h + row_h / 2 + 3:.1f}" font-size="8"'
                f' text-anchor="end" fill="#666">p{process}</text>'
            )
    parts.extend(
        _operation_bar(op, axis, top + row_of[op.process] * row_h, row_h) for op in operations
    )
    return parts


def _describe_value(operation: _Operation) -> str:
    if operation.f == "cas" and isinstance(operation.value, list) and len(operation.value) == 2:
        expected, new = operation.value
        return f"expected {json.dumps(expected, default=repr)}, new {json.dumps(new, default=repr)}"
    return json.dumps(operation.value, default=repr)


def _operation_bar(operation: _Operation, axis: _Axis, y: int, row_h: int) -> str:
    x0, x1 = axis.x(operation.start_ns), axis.x(operation.end_ns)
    tip = (
        f"process {operation.process}: {operation.f} key {operation.key!r} "
        f"value {_describe_value(operation)}: {operation.outcome}, "
        f"{_seconds(operation.start_ns)} to {_seconds(operation.end_ns)}"
    )
    if operation.outcome == "info":
        tip += " (client gave up; outcome unknown)"
    colour = _OUTCOME_COLOURS.get(operation.outcome, "#888")
    unknown_tail = ""
    if operation.outcome == "info":
        unknown_tail = (
            f'<rect x="{x1:.1f}" y="{y + 1}" width="{axis.x(axis.duration_ns) - x1:.1f}"'
            f' height="{row_h - 2}" fill="{colour}" fill-opacity="0.3"/>'
        )
    return (
        f'<g class="op {operation.outcome}"><title>{html.escape(tip)}</title>'
        f'<rect x="{x0:.1f}" y="{y + 1}" width="{max(x1 - x0, 1.5):.1f}"'
        f' height="{row_h - 2}" fill="{colour}"/>{unknown_tail}</g>'
    )


def _violation_line(violations: Sequence[Violation], axis: _Axis, layout: _Layout) -> list[str]:
    """A red vertical line at the first violation, when its time is known."""
    time_ns = violations[0].time_ns if violations else None
    if time_ns is None:
        return []
    first = violations[0]
    x = axis.x(time_ns)
    tip = html.escape(f"{first.property} violated at {_seconds(time_ns)}: {first.detail}")
    return [
        f'<g class="violation"><title>{tip}</title>'
        f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{layout.ops_bottom}"'
        f' stroke="{_VIOLATION_RED}" stroke-width="2.5"/>'
        f'<text x="{x + 4:.1f}" y="12" font-size="12" font-weight="bold"'
        f' fill="{_VIOLATION_RED}">{html.escape(first.property)} violated</text></g>'
    ]
