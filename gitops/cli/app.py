"""The Typer application and its global options; each command module registers itself on ``app`` (the package's
``main`` imports them all, so that no command module imports the package that imports it)."""

from __future__ import annotations

import typer

from gitops.cli.help_format import Typer

app = Typer(
    name="gitops",
    help="finetune-gitops: fine-tune chat LLMs on Azure ML (or locally) from reviewed pull requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help (gitops.cli.help_format): typer's rich panels print a `<bool>` type beside every flag.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"finetune-gitops {version('finetune-gitops')}")
        except PackageNotFoundError:
            print("finetune-gitops (not installed as a package)")
        raise typer.Exit(0)


@app.callback()
def _options(
    ctx: typer.Context,
    show_version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True, callback=_version),
    verbose: bool = typer.Option(
        False, "-v", "--verbose", help="Show what libraries print (MLflow, Hugging Face); else it goes to <workspace>/logs/cli.log."
    ),
) -> None:
    """finetune-gitops: fine-tune chat LLMs on Azure ML (or locally) from reviewed pull requests."""
    from gitops.cli import output

    if not verbose:
        output.quiet()
        ctx.call_on_close(output.restore)
