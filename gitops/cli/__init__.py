"""The ``gitops`` command line (typer). Commands live in small modules; heavy imports stay inside them.

One handler maps the project's errors to exit codes and one-line messages: no traceback reaches a user
for an error we raised on purpose.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from gitops.errors import GitopsError

app = typer.Typer(
    name="gitops",
    help="finetune-gitops: fine-tune chat LLMs on Azure ML (or locally) from reviewed pull requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich panels print a `<bool>` type beside every flag, --help included.
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
def _options(ctx: typer.Context,
             show_version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                               callback=_version),
             verbose: bool = typer.Option(False, "-v", "--verbose",
                                          help="Show what libraries print (MLflow, Hugging Face); else it goes to "
                                               "<workspace>/logs/cli.log.")) -> None:
    """finetune-gitops: fine-tune chat LLMs on Azure ML (or locally) from reviewed pull requests."""
    from gitops.cli import output

    if not verbose:
        output.quiet()
        ctx.call_on_close(output.restore)


def _register() -> None:
    from gitops.cli import (
        cleanup_cmds,  # noqa: F401
        endpoint_cmds,  # noqa: F401
        local_cmds,  # noqa: F401
        report_cmds,  # noqa: F401
        run_cmds,  # noqa: F401
        specs,  # noqa: F401  (commands register themselves on ``app``)
        watch_cmds,  # noqa: F401
    )


def main(argv: list[str] | None = None) -> Any:
    from gitops.cli import output

    _register()
    try:
        rc = app(args=argv, standalone_mode=False)
        # click returns typer.Exit's code instead of raising when standalone_mode is off
        if isinstance(rc, int) and rc:
            sys.exit(rc)
        return rc
    except GitopsError as exc:
        print(f"error: {exc.headline}", file=output.err())
        if exc.hint:
            print(f"hint: {exc.hint}", file=output.err())
        findings = getattr(exc, "findings", [])
        for finding in findings:
            print(f"  {finding.format()}", file=output.err())
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=output.err())
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown command, bad option (typer ships its own click)
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"error: {exc}", file=output.err())
        sys.exit(int(getattr(exc, "exit_code", 2)))
