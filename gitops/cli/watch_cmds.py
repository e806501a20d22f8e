"""``gitops watch``: the online checks again over every spec in runs/, and drift on every live run's endpoint."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

from gitops.cli import output
from gitops.cli.app import app


@app.command()
def watch(
    runs_dir: Path = typer.Option(Path("runs"), "--runs", help="Where the specs are (the default branch's checkout)."),
    fmt: str = typer.Option("text", "--format", help="text, json, or markdown (an issue body)."),
    fix: bool = typer.Option(
        False, "--fix", help="Show what restoring the declared state would do (traffic, deployments nobody asked for); with --yes, do it."
    ),
    yes: bool = typer.Option(False, "--yes", help="With --fix: apply it."),
    online: bool = typer.Option(
        True, "--online/--offline", help="Run the online checks (Azure credentials) or only look at the endpoints."
    ),
) -> None:
    """Retired or archived models and SKUs, newer model versions, short quota, and endpoints that drifted from the
    ledger. Exit 1 when a finding is an error."""
    from gitops.cli.specs import policy_for
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.spec.validate import load_spec
    from gitops.watch.findings import WATCH_DOCUMENT, render_markdown, render_text
    from gitops.watch.scan import restore, scan

    if fmt not in ("text", "json", "markdown"):
        raise typer.BadParameter("use text, json or markdown", param_hint="--format")
    lifecycle = local_lifecycle()
    now = time.time()
    files = sorted(runs_dir.glob("*.yaml")) if online and runs_dir.is_dir() else []
    specs = []
    for file in files:
        validated = load_spec(file, policy_for(file))
        if validated.ok and validated.spec is not None:
            specs.append((validated.spec.name, validated.valid()))
        else:
            print(f"warning: {file} is not a valid spec; `gitops validate {file}` says why (skipped)", file=output.err())
    result = scan(specs, lifecycle.ledger, lifecycle.backend_for, now, repo=lifecycle.repo, backend_of=lifecycle.backend_of)
    lifecycle.ledger.save_document(WATCH_DOCUMENT, result.document(now))  # what `gitops ui` shows of the watch
    if fix:
        actions = []
        for record in lifecycle.ledger.list():
            actions += restore(record, lifecycle.backend_of(record), now, apply=yes, repo=lifecycle.repo)
        verb = "done" if yes else "would do (add --yes to apply)"
        print(f"--fix {verb}:" if actions else "--fix: nothing to restore", file=output.err())
        for line in actions:
            print(f"  {line}", file=output.err())
    at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    if fmt == "json":
        sys.stdout.write(
            json.dumps({"at": at, "specs": result.specs, "runs": result.runs, "findings": [f.to_dict() for f in result.findings]}, indent=1)
            + "\n"
        )
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(result.findings, at))
    else:
        sys.stdout.write(render_text(result.findings, result.specs, result.runs))
    if any(f.severity == "error" for f in result.findings) and not (fix and yes):
        raise typer.Exit(1)
