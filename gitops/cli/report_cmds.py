"""``gitops report``: a run's training and evaluation metrics, smoke test and serving facts."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from gitops.cli import output
from gitops.cli.app import app

if TYPE_CHECKING:
    from gitops.ledger.model import RunRecord


class ReportFormat(StrEnum):
    markdown = "markdown"
    text = "text"
    json = "json"


def _cost(record: RunRecord) -> str:
    """The run's cost so far and expected, as `gitops status NAME` and the dashboard price it ("" when it cannot be)."""
    import time

    from gitops.cost.spend import priced
    from gitops.lifecycle.wiring import price_book

    spent = priced(record, price_book(live=False), time.time())[0]
    return spent.line() if spent is not None else ""


@app.command()
def report(
    name: str = typer.Argument(..., help="Run name."),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", help="markdown | text | json"),
    out: Optional[Path] = typer.Option(None, help="Write report.<ext> and loss.png into this directory."),
    against: Optional[str] = typer.Option(None, help="Compare with this run (default: the previous version)."),
    png: Optional[Path] = typer.Option(None, help="Also draw the loss curves (this version and the one compared) here."),
) -> None:
    """Report a run: parameters, duration, losses, perplexity, tokens, smoke test, model and endpoint."""
    from gitops.errors import NotFoundError
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.report.build import RunReport, build_report, compare, previous_version
    from gitops.report.render import render_json, render_markdown, render_text, write_png

    lifecycle = local_lifecycle()
    assert lifecycle.reader_for is not None
    got = lifecycle.ledger.get(name)
    if got is None:
        raise NotFoundError(f"no run named '{name}'", hint="see `gitops status`")
    record = got[0]
    this = build_report(record, lifecycle.reader_for(record.backend).job_metrics(record.job_name))
    this.cost = _cost(record)

    other: RunReport | None = None
    label = None
    if against is not None:
        other_got = lifecycle.ledger.get(against)
        if other_got is None:
            raise NotFoundError(f"no run named '{against}' to compare with")
        other = build_report(other_got[0], lifecycle.reader_for(other_got[0].backend).job_metrics(other_got[0].job_name))
        label = against
    elif record.previous_job:
        other = previous_version(record, lifecycle.reader_for(record.backend))
        label = f"{name} (previous version, {record.previous_job})" if other is not None else None
    deltas = compare(this, other) if other is not None else None

    ext = {ReportFormat.markdown: "md", ReportFormat.text: "txt", ReportFormat.json: "json"}[fmt]
    # The PNG is drawn only when asked for (matplotlib takes seconds): with --out, beside the report that links it.
    png_path = out / "loss.png" if out is not None else png
    if fmt is ReportFormat.markdown:
        text = render_markdown(this, deltas, label, png="loss.png" if out is not None else None)
    else:
        text = (render_text if fmt is ReportFormat.text else render_json)(this, deltas, label)
    if png_path is not None:
        write_png(this, png_path, other)
    if out is not None:
        (out / f"report.{ext}").write_text(text, encoding="utf-8")
        print(f"wrote {out / f'report.{ext}'} and {png_path}")
    else:
        sys.stdout.write(text)
        if png_path is not None:
            print(f"loss curve: {png_path}", file=output.err())
