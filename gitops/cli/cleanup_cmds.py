"""``gitops cleanup``: tear down idle, expired, orphaned or stuck endpoints that the repo manages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from gitops.cli import output
from gitops.cli.app import app


@app.command()
def cleanup(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print exactly what a real run would do; do nothing."),
    as_json: bool = typer.Option(False, "--json", help="The verdicts as JSON: each endpoint, its action and reasons."),
    repo: Path = typer.Option(Path("."), help="The repository (gitops.yaml, and runs/ on --ref for orphans)."),
    ref: str = typer.Option("main", help="The branch whose runs/ decides what is orphaned."),
    backend: str = typer.Option("local", help="Whose endpoints: local, or azureml (the configured workspace)."),
) -> None:
    """Apply the cleanup policy to every endpoint the repo manages (others are never touched)."""
    from gitops.cleanup.run import cleanup_everywhere
    from gitops.errors import GitopsError
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.review import gitrepo
    from gitops.spec.policy import require_policy

    policy = require_policy(repo)
    try:
        specs_on_main: set[str] | None = {Path(p).stem for p in gitrepo.list_specs(repo, gitrepo.resolve(repo, ref))}
    except GitopsError:
        specs_on_main = None  # not a git checkout (or no such ref): orphans cannot be told, so none is pruned
    lifecycle = local_lifecycle()
    verdicts = cleanup_everywhere(
        backend, lifecycle.backend_for, lifecycle.backend_in, lifecycle.ledger, policy, specs_on_main, dry_run, repo=lifecycle.repo
    )
    unreadable = [v for v in verdicts if v.unreadable]
    skipped_some = bool(unreadable or lifecycle.ledger.damaged)  # the rest was done; the exit code says what was not
    if as_json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "endpoint": v.endpoint,
                        "run": v.run,
                        "action": v.action,
                        "reasons": list(v.reasons),
                        "deployments": list(v.deployments),
                    }
                    for v in verdicts
                ],
                indent=2,
            )
            + "\n"
        )
        raise typer.Exit(1 if skipped_some else 0)
    prefix = "[dry run] would " if dry_run else ""
    for v in verdicts:
        print(prefix + v.line())
    if not verdicts:
        print("no endpoints")
    if skipped_some:
        for _, why in lifecycle.ledger.damaged:
            print(f"warning: {why} (skipped)", file=output.err())
        print(f"{len(unreadable)} endpoint(s) left alone on records that cannot be read", file=output.err())
        raise typer.Exit(1)
