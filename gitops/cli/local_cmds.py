"""Local backend commands: ``gitops local bootstrap``, ``gitops data synth``."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops.cli import app

local_app = typer.Typer(help="The embedded local backend.", no_args_is_help=True)
data_app = typer.Typer(help="Training data.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(data_app, name="data")


@local_app.command("bootstrap")
def bootstrap(force: bool = typer.Option(False, help="Rebuild and register a new version.")) -> None:
    """Build the tiny Phi-3 foundation model offline and register it in MLflow as tiny-phi3."""
    from gitops.backends.local.models import bootstrap as run_bootstrap
    from gitops.backends.local.workspace import LocalWorkspace
    from gitops.settings import Settings

    model = run_bootstrap(LocalWorkspace.at(Settings.load().workspace_dir), force=force)
    print(f"{model.name} version {model.version} ({model.uri})")


@data_app.command("synth")
def synth(rows: int = typer.Option(400, help="Training rows."), out: Path = typer.Option(..., help="Output directory."),
          seed: int = typer.Option(0)) -> None:
    """Write an ultrachat-shaped synthetic dataset (train_sft.jsonl, test_sft.jsonl)."""
    from pipelines.synth import write_dataset

    for split, path in write_dataset(out, rows, seed=seed).items():
        print(f"{split}: {path}")


@data_app.command("prepare")
def prepare(dataset: str = typer.Argument(..., help="Hub id, or a local file/directory."),
            out: Path = typer.Option(..., help="Output directory."),
            percent: float = typer.Option(100, help="Prefix slice of every split, split[0%:N%]."),
            skip_invalid: bool = typer.Option(False, help="Drop invalid rows (counted) instead of failing.")) -> None:
    """Prepare every split as <split>.jsonl, as the reference download-dataset.py does, checking rows."""
    from gitops.errors import SpecError
    from pipelines.prepare_data import DataError
    from pipelines.prepare_data import prepare as run_prepare

    try:
        reports = run_prepare(dataset, out, percent, skip_invalid=skip_invalid)
    except DataError as exc:
        raise SpecError(str(exc), hint="fix the rows or pass --skip-invalid") from exc
    for r in reports:
        print(f"{r.split}: {r.rows} rows -> {r.path}" + (f" ({r.skipped} invalid skipped)" if r.skipped else ""))
