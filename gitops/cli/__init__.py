"""The ``gitops`` command line (typer). Commands live in small modules; heavy imports stay inside them.

One handler maps the project's errors to exit codes and one-line messages: no traceback reaches a user
for an error we raised on purpose.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from gitops.cli.app import app
from gitops.errors import GitopsError

__all__ = ["app", "main"]


def _register() -> None:
    from gitops.cli import (
        cleanup_cmds,  # noqa: F401
        describe_cmds,  # noqa: F401
        endpoint_cmds,  # noqa: F401
        local_cmds,  # noqa: F401
        report_cmds,  # noqa: F401
        run_cmds,  # noqa: F401
        specs,  # noqa: F401  (commands register themselves on ``app``)
        ui_cmds,  # noqa: F401
        watch_cmds,  # noqa: F401
    )


def main(argv: list[str] | None = None) -> Any:
    from gitops.cli import output

    _register()
    try:
        rc = app(args=argv, prog_name="gitops", standalone_mode=False)
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
