"""``--help`` of every command in click's forms: ``NAME``, ``[NAME]``, ``FILES...``, ``--ref TEXT``; never typer's
``{name}`` or a Python type (``name <str>``, ``files... <list[Path]>``), and every option described."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from gitops.cli import _register, app, main
from tests.conftest import assert_golden

# what typer 0.2x writes where click wrote NAME or TEXT
_TYPER_FORMS = re.compile(r"\{\w+\}|<(str|int|float|bool|path|Path|list\[[^>]*\]|int range|float range)>")


def _commands() -> Iterator[tuple[str, ...]]:
    _register()
    root: Any = typer.main.get_command(app)

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, (*path, name))

    yield from walk(root, ())


def _help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    main([*path, "--help"])
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def test_no_help_shows_typers_braces_or_python_types(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(_commands())
    assert len(paths) > 20, paths
    for path in paths:
        text = _help(path, capsys)
        # option help may mention <workspace> or report.<ext>: only the usage line and the first column are ours
        columns = [line.split("  ")[1] if line.startswith("  ") else line for line in text.splitlines()]
        written = [c for c in columns if c.startswith(("Usage:", "-")) or re.match(r"[A-Z]+(\.\.\.)?$", c)]
        assert not any(_TYPER_FORMS.search(c) for c in written), (path, text)


def test_every_option_and_argument_is_described() -> None:
    _register()
    root: Any = typer.main.get_command(app)

    def params(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield from ((path, param) for param in command.params)
        for name, sub in getattr(command, "commands", {}).items():
            yield from params(sub, (*path, name))

    undescribed = [(path, param.name) for path, param in params(root, ()) if not (param.help or "").strip()]
    assert undescribed == []


def test_the_usage_line_writes_arguments_as_click_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert _help(("status",), capsys).startswith("Usage: gitops status [OPTIONS] [NAME]\n")
    assert _help(("logs",), capsys).startswith("Usage: gitops logs [OPTIONS] NAME\n")
    assert _help(("validate",), capsys).startswith("Usage: gitops validate [OPTIONS] FILES...\n")


def test_plan_help_is_what_users_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert_golden("help-plan.txt", _help(("plan",), capsys))
