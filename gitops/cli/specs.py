"""Spec commands: ``validate``, ``plan``, ``render``, ``schema``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from gitops.cli import output
from gitops.cli.app import app

if TYPE_CHECKING:
    from gitops.ledger.model import RunRecord
    from gitops.spec.policy import Policy


class PlanFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class PriceSourceChoice(StrEnum):
    snapshot = "snapshot"
    live = "live"


PRICES_HELP = (
    "Where hourly prices come from: the committed snapshot (offline), or the Azure Retail Prices API first "
    "(kept a day under the workspace directory) with the snapshot when it cannot be reached."
)


def records_for_durations() -> Callable[[str], RunRecord | None] | None:
    """The ledger this shell points at (GITOPS_LEDGER_* or the local workspace's), whose runs' last training time
    the cost estimate scales; None when there is none (a fresh checkout, a CI runner)."""
    from gitops.ledger.model import lookup
    from gitops.lifecycle.wiring import ledger_from
    from gitops.settings import Settings

    settings = Settings.load()
    local = settings.workspace_dir / "ledger"
    if not (settings.ledger_connection_string or settings.ledger_account_url or local.is_dir()):
        return None
    return lookup(ledger_from(settings, local))


def repo_root(start: Path) -> Path:
    for candidate in [start, *start.parents]:
        if (candidate / ".git").exists() or (candidate / "gitops.yaml").exists():
            return candidate
    return start


def policy_for(spec_file: Path) -> Policy:
    """The policy of the repo holding ``spec_file`` (its own findings are reported by ``validate``)."""
    from gitops.spec.policy import require_policy

    return require_policy(repo_root(spec_file.resolve().parent))


ONLINE_HELP = "Also run the online checks against the workspace and registry (your Azure credentials), as the validate Function does."


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Spec files to check."),
    policy_root: Optional[Path] = typer.Option(None, "--repo", help="Repo root holding gitops.yaml."),
    online: bool = typer.Option(False, "--online", help=ONLINE_HELP),
) -> None:
    """Check specs (schema, component params, repo policy; with --online the model, its retirement, compute and
    SKUs too); exit 1 when any is invalid."""
    from gitops.backends.registry import backend_cache
    from gitops.lifecycle.wiring import price_book
    from gitops.review.check import check_specs
    from gitops.review.gitrepo import repository_salt
    from gitops.settings import Settings
    from gitops.spec.capabilities import ONLINE_CHECKED
    from gitops.spec.policy import load_policy
    from gitops.spec.validate import validate_file

    root = policy_root or repo_root(files[0].resolve().parent)
    policy, policy_findings = load_policy(root)
    bad = False
    for finding in policy_findings:
        print(finding.format())
        bad = bad or finding.is_error
    if policy is None:  # never judge specs by the defaults in place of a broken policy
        print(f"specs not checked: {root / 'gitops.yaml'} is invalid")
        raise typer.Exit(1)
    # the check the validate and submit Functions make (gitops.review.check.check_specs), with this shell's prices and
    # ledger; the backends' online checks only when asked for
    checks = check_specs(
        [validate_file(file, policy) for file in files],
        policy,
        backend_cache(),
        online_backends=ONLINE_CHECKED if online else frozenset(),
        salt=repository_salt(root, Settings.load().repo)[0],
        prices=price_book(live=online),
        previous=records_for_durations(),
    )
    for file, check in zip(files, checks, strict=True):
        findings = check.findings
        for finding in sorted(findings, key=lambda f: f.line or 0):
            print(finding.format())
        if check.ok:
            warned = sum(1 for f in findings if f.severity.value == "warning")
            print(f"{file}: ok" + (f" ({warned} warning(s))" if warned else ""))
        bad = bad or not check.ok
    raise typer.Exit(1 if bad else 0)


@app.command()
def plan(
    base: Optional[str] = typer.Option(
        None, help="Base revision (default: the merge base with the default branch, as a pull request would be planned)."
    ),
    head: str = typer.Option("HEAD", help="Head revision."),
    fmt: PlanFormat = typer.Option(PlanFormat.text, "--format", help="text: a terminal; markdown: the pull request comment; json: tools."),
    repo: Path = typer.Option(Path("."), help="The git repository."),
    out: Optional[Path] = typer.Option(None, help="Write the plan here instead of stdout."),
    prices: PriceSourceChoice = typer.Option(PriceSourceChoice.snapshot, help=PRICES_HELP),
    annotate: bool = typer.Option(
        False,
        "--annotate",
        help="Also print each finding as a GitHub workflow command (::error file=...,line=...,col=...::), which a "
        "workflow step turns into an annotation on that line of the pull request.",
    ),
) -> None:
    """Show what the specs under runs/ would do between two revisions (what each change takes: train, retrain,
    redeploy only, settings only; quota is checked online), with its cost; exit 1 if any spec is invalid or over
    the budget."""
    from gitops.lifecycle.wiring import price_book
    from gitops.review.gitrepo import repository_salt
    from gitops.review.plan import build_plan
    from gitops.review.plan_render import render_json, render_markdown, render_text
    from gitops.settings import Settings

    settings = Settings.load()
    if base is None:
        from gitops.review.gitrepo import default_base

        base, branch = default_base(repo, head)
        print(f"planning against the merge base with {branch} ({base[:10]})", file=output.err())
    salt, source = repository_salt(repo, settings.repo)
    book = price_book(live=prices is PriceSourceChoice.live, cache=settings.workspace_dir / "cache" / "prices.json")
    result = build_plan(repo, base, head, salt=salt, prices=book, previous=records_for_durations())
    result.salt_source = f"{salt} ({source})" if salt else source
    text = {PlanFormat.text: render_text, PlanFormat.markdown: render_markdown, PlanFormat.json: render_json}[fmt](result)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if annotate:
        from gitops.review.annotations import workflow_commands

        sys.stdout.write("".join(line + "\n" for line in workflow_commands(result.findings())))
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def render(
    file: Path = typer.Argument(..., help="The spec to render."),
    backend: str = typer.Option("azureml", help="Only azureml specs render (a spec of another backend is refused)."),
) -> None:
    """Print the Azure ML job YAML that would be submitted (`az ml job create -f`): the pipeline job, or with
    finetune.kind job or serverless the fine-tuning job (after the job that prepares a dataset, as a second YAML
    document). A dataset is prepared in Azure from this checkout's pipelines/ folder."""
    import yaml

    from gitops.backends.azureml import job_documents
    from gitops.errors import UnsupportedError
    from gitops.spec.capabilities import kind_of
    from gitops.spec.validate import load_spec

    if not kind_of(backend).component_defaults:  # what renders is a job of the registry component
        raise UnsupportedError(f"cannot render for backend '{backend}'", hint="use --backend azureml")
    result = load_spec(file, policy_for(file))
    spec = result.require()
    if not kind_of(spec.backend).component_defaults:  # once: exit 0 and an Azure job with `labels/None`
        raise UnsupportedError(
            f"{file} is a {spec.backend} spec: only azureml specs render to a pipeline job", hint=f"`gitops run {file}` runs it"
        )
    documents = job_documents(spec, result.params, result.training_digest)
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, width=120))


@app.command()
def schema(out: Optional[Path] = typer.Option(None, help="Write here instead of stdout.")) -> None:
    """Print the JSON Schema of run specs (committed as schemas/run-spec.schema.json)."""
    from gitops.spec.schema import run_spec_schema_text

    text = run_spec_schema_text()
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@app.command("prices")
def prices_cmd(
    action: str = typer.Argument(..., help="refresh: read the prices again from the Azure Retail Prices API."),
    region: list[str] = typer.Option([], "--region", help="Another region to add (the snapshot's are read again)."),
    sku: list[str] = typer.Option([], "--sku", help="Another VM size to add."),
    out: Optional[Path] = typer.Option(None, help="Write the snapshot here (e.g. gitops/cost/prices.yaml)."),
) -> None:
    """Write a new dated price snapshot from the live API: every region and size of the current one, and the ones named."""
    from datetime import UTC, datetime

    from gitops.backends.azureml import prices_api
    from gitops.cost.prices import committed_snapshot, refreshed
    from gitops.errors import RequestError

    if action != "refresh":
        raise RequestError(f"unknown action '{action}'", hint="gitops prices refresh [--region R] [--sku S] [--out FILE]")
    snapshot = refreshed(committed_snapshot(), prices_api(), datetime.now(UTC).date(), region, sku)
    text = snapshot.to_yaml()
    if out:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}: {sum(len(t) for t in snapshot.regions.values())} price(s) as of {snapshot.as_of}")
    else:
        sys.stdout.write(text)
