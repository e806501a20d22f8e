"""Report rendering: the Mermaid chart follows the documented xychart-beta syntax, stays small, and the
PNG is a real image of the documented size."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gitops.report.build import RunReport, compare
from gitops.report.render import MAX_POINTS, PNG_SIZE, mermaid_chart, render_json, render_markdown, resample, write_png
from tests.conftest import run_report


def _report(curves: dict[str, list[tuple[int, float]]], **kw: Any) -> RunReport:
    return run_report(curves=curves, **kw)


# The documented grammar (mermaid.js.org/syntax/xyChart): header, optional title, x-axis as a category
# list or a numeric range, y-axis as a range, then one or more line/bar series of numbers.
NUM = r"-?\d+(?:\.\d+)?"
GRAMMAR = [
    re.compile(r"^xychart-beta$"),
    re.compile(r'^ {4}title "[^"]+"$'),
    re.compile(rf'^ {{4}}x-axis "[^"]+" \[{NUM}(?:, {NUM})*\]$'),
    re.compile(rf'^ {{4}}y-axis "[^"]+" {NUM} --> {NUM}$'),
]
SERIES = re.compile(rf'^ {{4}}line "([^"]+)" \[({NUM}(?:, {NUM})*)\]$')


def _parse_chart(block: str) -> tuple[list[str], dict[str, list[float]], tuple[float, float]]:
    lines = block.splitlines()
    assert lines[0] == "```mermaid" and lines[-1] == "```"
    body = lines[1:-1]
    for pattern, line in zip(GRAMMAR, body, strict=False):
        assert pattern.match(line), line
    x = re.findall(NUM, body[2].split("[", 1)[1])
    low, high = (float(v) for v in re.findall(NUM, body[3].split('"')[-1]))
    series = {}
    for line in body[4:]:
        match = SERIES.match(line)
        assert match, line
        series[match.group(1)] = [float(v) for v in match.group(2).split(", ")]
    return x, series, (low, high)


def test_charts_follow_the_grammar_and_a_series_is_drawn_only_where_it_was_measured() -> None:
    from gitops.report.render import mermaid_charts

    report = _report({"train_loss": [(1, 6.0), (10, 4.0), (20, 2.0)], "eval_loss": [(10, 3.0), (20, 2.5)]})
    train, evaluation = mermaid_charts(report)
    x, series, (low, high) = _parse_chart(train)
    assert x == ["1", "10", "20"] and series == {"train_loss": [6.0, 4.0, 2.0]}
    assert all(low <= v <= high for vs in series.values() for v in vs)
    x, series, _ = _parse_chart(evaluation)
    assert x == ["10", "20"] and series == {"eval_loss": [3.0, 2.5]}  # not back-filled from step 1
    together = mermaid_charts(_report({"train_loss": [(1, 6.0), (20, 2.0)], "eval_loss": [(1, 5.0), (20, 2.5)]}))
    assert len(together) == 1 and set(_parse_chart(together[0])[1]) == {"train_loss", "eval_loss"}
    assert render_markdown(report).count("```mermaid") == 2


def test_long_runs_are_downsampled() -> None:
    curve = [(s, 10.0 / s) for s in range(1, 5001)]
    block = mermaid_chart(_report({"train_loss": curve}))
    assert block is not None
    x, series, _ = _parse_chart(block)
    assert len(x) <= MAX_POINTS and x[0] == "1" and x[-1] == "5000"
    assert len(block) < 2000


def test_resample_interpolates_and_holds() -> None:
    assert resample([(10, 4.0), (20, 2.0)], [5, 10, 15, 20, 25]) == [4.0, 4.0, 3.0, 2.0, 2.0]


def test_no_curves_no_chart() -> None:
    assert mermaid_chart(_report({})) is None
    assert "```mermaid" not in render_markdown(_report({}))


def test_png_is_a_valid_image_of_the_documented_size(tmp_path) -> None:
    from PIL import Image

    path = write_png(_report({"train_loss": [(1, 3.0), (2, 2.0), (3, 1.5)]}), tmp_path / "loss.png")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == PNG_SIZE


def test_comparison_deltas() -> None:
    this, other = _report({}), _report({}, final_train_loss=1.5, smoke_latency_ms=None)
    deltas = {d.label: d for d in compare(this, other)}
    assert deltas["final train loss"].change == pytest.approx(-0.5)
    assert deltas["smoke latency ms"].change is None
    md = render_markdown(this, list(deltas.values()), "other-run")
    assert "### Compared with `other-run`" in md and "| final train loss | 1.0000 | 1.5000 | -0.5000 |" in md
    assert '"change": -0.5' in render_json(this, list(deltas.values()), "other-run")


def test_report_json_is_written_as_status_json_writes_a_record() -> None:
    """Once: params as strings and the gate's moment as epoch seconds, where status --json has numbers and ISO 8601."""
    import json

    report = _report({}, gate={"ok": True, "reasons": [], "notes": [], "at": 1765000000.0})
    report.params.update({"max_steps": "16", "learning_rate": "0.0003", "apply_lora": "true", "lr_scheduler_type": "linear"})
    data = json.loads(render_json(report))["report"]
    assert data["gate"]["at"] == "2025-12-06T05:46:40+00:00"
    assert {k: data["params"][k] for k in ("max_steps", "learning_rate", "apply_lora", "lr_scheduler_type")} == {
        "max_steps": 16,
        "learning_rate": 0.0003,
        "apply_lora": "true",
        "lr_scheduler_type": "linear",
    }


def test_the_report_shows_the_gate_verdict_and_says_when_a_person_overrode_it() -> None:
    from gitops.report.render import render_text

    passed = {"ok": True, "reasons": [], "notes": ["eval loss 2.4600 -> 2.4100 (-0.0500; at most +0.1)"], "numbers": {}}
    assert "| Gate | passed: eval loss 2.4600 -> 2.4100 (-0.0500; at most +0.1) |" in render_markdown(_report({}, gate=passed))
    failed = {"ok": False, "reasons": ["eval loss 2.4600 -> 4.4900 (+2.0300; at most +0.1)"], "notes": [], "numbers": {}}
    assert "Gate                        FAILED (promoted by a person): eval loss 2.4600 -> 4.4900" in render_text(_report({}, gate=failed))
    assert "| Gate | - |" in render_markdown(_report({}))
