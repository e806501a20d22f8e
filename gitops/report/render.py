"""Report output: Markdown (with a Mermaid ``xychart-beta`` curve GitHub renders), text, JSON, and a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gitops.markdown import code, label, text
from gitops.report.build import Delta, RunReport
from gitops.util.durations import iso_times

REPORT_MARKER = "<!-- finetune-gitops:report -->"
MAX_POINTS = 40  # a Mermaid chart stays readable (and a comment small) however long the run
PNG_SIZE = (960, 540)  # pixels
PNG_DPI = 120


def resample(points: list[tuple[int, float]], grid: list[int]) -> list[float]:
    """``points`` (sorted by step) at the ``grid`` steps: linear in between, the nearest value outside."""
    out = []
    j = 0
    for step in grid:
        while j + 1 < len(points) and points[j + 1][0] <= step:
            j += 1
        s0, v0 = points[j]
        if step <= s0 or j + 1 >= len(points):
            out.append(v0)
        else:
            s1, v1 = points[j + 1]
            out.append(v0 + (v1 - v0) * (step - s0) / (s1 - s0))
    return out


def step_grid(curves: dict[str, list[tuple[int, float]]], max_points: int = MAX_POINTS) -> list[int]:
    steps = sorted({s for points in curves.values() for s, _ in points})
    if len(steps) <= max_points:
        return steps
    stride = (len(steps) - 1) / (max_points - 1)
    return sorted({steps[round(i * stride)] for i in range(max_points)})


def _chart(run: str, curves: dict[str, list[tuple[int, float]]], max_points: int) -> str:
    grid = step_grid(curves, max_points)
    series = {name: resample(points, grid) for name, points in curves.items()}
    values = [v for vs in series.values() for v in vs]
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or 0.1
    title = "Loss per step" if len(curves) > 1 else next(iter(curves)).replace("_", " ") + " per step"
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{label(title)}: {label(run)}"',
        f'    x-axis "step" [{", ".join(str(s) for s in grid)}]',
        f'    y-axis "loss" {max(0.0, low - pad):.3f} --> {high + pad:.3f}',
    ]
    lines += [f'    line "{label(name)}" [{", ".join(f"{v:.4f}" for v in vs)}]' for name, vs in series.items()]
    lines.append("```")
    return "\n".join(lines)


def mermaid_charts(report: RunReport, max_points: int = MAX_POINTS) -> list[str]:
    """The curves as Mermaid charts. A chart line needs a value at every step of its axis and Mermaid has no gaps, so
    series share a chart only when they span the same steps; one that starts later (eval loss, logged every N
    steps) gets a chart of its own, drawn only where it was measured."""
    groups: dict[tuple[int, int], dict[str, list[tuple[int, float]]]] = {}
    for name, points in report.curves.items():
        if points:
            groups.setdefault((points[0][0], points[-1][0]), {})[name] = points
    return [_chart(report.run, curves, max_points) for curves in groups.values()]


def mermaid_chart(report: RunReport, max_points: int = MAX_POINTS) -> str | None:
    """The first chart (the training loss), or None without curves."""
    charts = mermaid_charts(report, max_points)
    return charts[0] if charts else None


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def _rows(report: RunReport) -> list[tuple[str, str]]:
    return [
        ("Job", report.job_name),
        ("Status", report.status),
        ("Model", report.model or "-"),
        ("Endpoint", f"{report.endpoint or '-'} ({report.deployment or '-'})"),
        ("Duration", "-" if report.duration_s is None else f"{report.duration_s:.1f} s"),
        ("Tokens seen", "-" if report.tokens_seen is None else f"{report.tokens_seen:,}"),
        ("Train loss (final / best)", f"{_num(report.final_train_loss)} / {_num(report.best_train_loss)}"),
        ("Eval loss (final / best)", f"{_num(report.final_eval_loss)} / {_num(report.best_eval_loss)}"),
        ("Eval perplexity", _num(report.eval_perplexity, ".2f")),
        (
            "Smoke test",
            "-" if report.smoke_ok is None else f"{'passed' if report.smoke_ok else 'FAILED'} in {_num(report.smoke_latency_ms, '.0f')} ms",
        ),
        ("Gate", _gate(report)),
        *([("Cost", report.cost)] if report.cost else []),
        *[(k.capitalize(), v) for k, v in report.lineage.items()],
    ]


def _gate(report: RunReport) -> str:
    """The promotion gate's verdict in one cell: passed or failed, then what it found."""
    g = report.gate
    if not g:
        return "-"
    found = "; ".join([*g.get("reasons", []), *g.get("notes", [])])
    return ("passed" if g.get("ok") else "FAILED (promoted by a person)" if report.status == "live" else "FAILED") + (
        f": {found}" if found else ""
    )


def render_markdown(report: RunReport, deltas: list[Delta] | None = None, against: str | None = None, png: str | None = None) -> str:
    """The report for a PR comment or a file; ``png``: the loss curves' image beside it, linked."""
    out = [REPORT_MARKER, f"## Run report: {code(report.run)}", "", "| | |", "|---|---|"]
    out += [f"| {k} | {text(v)} |" for k, v in _rows(report)]
    if report.smoke_reply:  # what the model said: never markup
        out += ["", f"> Smoke reply: {text(report.smoke_reply[:200])}"]
    for chart in mermaid_charts(report):
        out += ["", chart]
    if png:
        out += ["", f"![Loss per step: {text(report.run)} ({text(report.job_name)})](<{_link_target(png)}>)"]
    if deltas:
        out += ["", f"### Compared with {code(against)}", "", "| metric | this run | other | change |", "|---|---|---|---|"]
        out += [f"| {text(d.label)} | {_num(d.this)} | {_num(d.other)} | {_num(d.change, '+.4f')} |" for d in deltas]
    if report.params:
        out += ["", "<details><summary>Parameters</summary>", "", "| parameter | value |", "|---|---|"]
        out += [f"| {code(k)} | {code(v)} |" for k, v in report.params.items()] + ["", "</details>"]
    return "\n".join(out) + "\n"


def _link_target(path: str) -> str:
    """A link destination in ``<...>``: no line break, no angle bracket (the only marks that end it)."""
    return "".join(c for c in path if c not in "<>\n\r").replace(" ", "%20")


def render_text(report: RunReport, deltas: list[Delta] | None = None, against: str | None = None) -> str:
    rows = [
        *_rows(report),
        *([("Smoke reply", repr(report.smoke_reply[:100]))] if report.smoke_reply else []),
        *[(f"param {k}", str(v)) for k, v in report.params.items()],
    ]
    width = max(27, *(len(k) for k, _ in rows))  # long parameter names keep the column straight
    out = [f"Run report: {report.run}"] + [f"  {k:{width}} {v}" for k, v in rows]
    if deltas:
        out.append(f"Compared with {against}:")
        out += [f"  {d.label:{width}} {_num(d.this)} vs {_num(d.other)} ({_num(d.change, '+.4f')})" for d in deltas]
    return "\n".join(out) + "\n"


def render_json(report: RunReport, deltas: list[Delta] | None = None, against: str | None = None) -> str:
    """The report as JSON, written as `gitops status --json` writes a record: moments in ISO 8601 UTC, and the
    parameters MLflow keeps as text read back as the numbers they are (``"16"`` -> 16, ``"true"`` stays text)."""
    summary = report.summary()
    summary["params"] = {k: _typed(v) for k, v in summary.get("params", {}).items()}
    data = {"report": iso_times(summary), "curves": report.curves}
    if deltas:
        data["against"] = {
            "run": against,
            "deltas": [{"metric": d.label, "this": d.this, "other": d.other, "change": d.change} for d in deltas],
        }
    return json.dumps(data, indent=2) + "\n"


def _typed(value: Any) -> Any:
    """A logged parameter as the number it is, when it is one; anything else as it was logged."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                number = kind(value)
            except ValueError:
                continue
            return number if math.isfinite(number) else value
    return value


def write_png(report: RunReport, path: Path, other: RunReport | None = None) -> Path:
    """Loss per step as a PNG (matplotlib, Agg: no display needed); ``other`` (the version compared with) is drawn
    beside it, dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(PNG_SIZE[0] / PNG_DPI, PNG_SIZE[1] / PNG_DPI), dpi=PNG_DPI)
    try:
        for shown, style, suffix in ((report, "-", ""), (other, "--", f" ({other.job_name})" if other else "")):
            for name, points in shown.curves.items() if shown is not None else []:
                if points:
                    ax.plot(
                        [s for s, _ in points], [v for _, v in points], style, marker="o" if len(points) < 20 else None, label=name + suffix
                    )
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(f"Loss per step: {report.run}, job {report.job_name}" + (f", {report.model}" if report.model else ""))
        ax.grid(alpha=0.3)
        if report.curves:
            ax.legend()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=PNG_DPI)
    finally:
        plt.close(fig)
    return path
