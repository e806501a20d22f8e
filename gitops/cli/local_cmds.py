"""Local backend and data commands: ``gitops local bootstrap``, ``gitops data synth|prepare|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gitops.cli.app import app
from gitops.cli.help_format import Typer

local_app = Typer(help="The embedded local backend.", no_args_is_help=True)
data_app = Typer(help="Training data.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(data_app, name="data")


@local_app.command("bootstrap")
def bootstrap(force: bool = typer.Option(False, help="Rebuild and register a new version.")) -> None:
    """Build the tiny Phi-3 foundation model offline and register it in MLflow as tiny-phi3."""
    from gitops.backends.local import bootstrap_model
    from gitops.settings import Settings

    model = bootstrap_model(Settings.load().workspace_dir, force=force)
    print(f"{model.name} version {model.version} ({model.uri})")


@data_app.command("synth")
def synth(
    rows: int = typer.Option(400, help="Training rows."),
    out: Path = typer.Option(..., help="Output directory."),
    seed: int = typer.Option(0, help="Seed of the generator: the same seed writes the same rows."),
) -> None:
    """Write an ultrachat-shaped synthetic dataset (train_sft.jsonl, test_sft.jsonl)."""
    from pipelines.synth import write_dataset

    for split, path in write_dataset(out, rows, seed=seed).items():
        print(f"{split}: {path}")


@data_app.command("prepare")
def prepare(
    dataset: str = typer.Argument(..., help="Hub id, or a local file/directory."),
    out: Path = typer.Option(..., help="Output directory."),
    percent: float = typer.Option(100, help="Prefix slice of every split, split[0%:N%]."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Drop invalid rows (counted) instead of failing."),
) -> None:
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


@data_app.command("show")
def show(
    source: str = typer.Argument(..., help="A .jsonl file, a directory of split files, or a dataset hub id."),
    split: str = typer.Option("train_sft", help="The split to read from a directory or a hub dataset."),
    rows: int = typer.Option(3, min=0, max=50, help="Conversations to print."),
    tokenizer: Optional[Path] = typer.Option(
        None,
        help="A tokenizer directory to count tokens with (default: the "
        "local tiny model's when it is built; else lengths are in characters).",
    ),
    max_chars: int = typer.Option(200, min=20, help="Cut each message after this many characters."),
) -> None:
    """Look at the data before training: a few conversations and the split's statistics (rows, turns, roles, length
    percentiles, and the rows the trainer would refuse)."""
    from gitops.errors import SpecError
    from gitops.settings import Settings
    from pipelines.data_stats import describe, read_frame
    from pipelines.prepare_data import DataError

    try:
        frame = read_frame(source, split)
    except (DataError, ValueError, OSError) as exc:
        raise SpecError(
            f"{source}: cannot be read as chat data: {str(exc).splitlines()[0][:200]}",
            hint="give a .jsonl file with a 'messages' list per line, or a dataset with that column",
        ) from None
    default_tok = Settings.load().workspace_dir / "models" / "tiny-phi3" / "hf"
    tok_dir = tokenizer or (default_tok if (default_tok / "tokenizer_config.json").is_file() else None)
    tok = None
    if tok_dir is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tok_dir))
    summary = describe(frame.to_dict(orient="records"), tok, samples=rows)
    for n, messages in enumerate(summary.samples, 1):
        print(f"--- conversation {n}")
        for message in messages:
            text = " ".join(str(message["content"]).split())
            print(f"{message['role']:>9}: {text[:max_chars]}{'...' if len(text) > max_chars else ''}")
    t, lens = summary.turns, summary.lengths
    print(f"\n{source} ({split if not Path(source).is_file() else Path(source).name}): {summary.rows} rows")
    print(f"  turns per conversation: min {t['min']:g}, median {t['median']:g}, max {t['max']:g}")
    print("  messages by role: " + (", ".join(f"{role} {n}" for role, n in summary.roles.items()) or "none"))
    where = f" ({tok_dir})" if tok_dir else ""
    print(f"  length in {summary.length_unit}{where}: p50 {lens['p50']:g}, p90 {lens['p90']:g}, p99 {lens['p99']:g}, max {lens['max']:g}")
    if summary.invalid:
        print(f"  {len(summary.invalid)} rows the trainer refuses (gitops data prepare --skip-invalid drops them):")
        for line, why in summary.invalid[:5]:
            print(f"    row {line}: {why}")
    else:
        print("  every row is a valid chat example")
