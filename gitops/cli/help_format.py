"""How ``--help`` writes a command's parameters: click's long-standing conventions, not typer's.

Typer 0.2x prints a required argument as ``{name}`` in the usage line and every parameter with its Python type
(``name <str>``, ``files... <list[Path]>``, ``--ref <str>``). Users of command lines read ``NAME``, ``[NAME]``,
``SPEC...`` and ``--ref TEXT``: what click itself writes. Typer keeps the help text, the defaults and the
``[required]`` it computes; only the first column and the usage line are written here.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# Parameters are read by their attributes, never their classes: typer 0.2x carries its own copy of click, so
# its parameters are no instances of ``click.Argument`` there, while older typer builds on click itself.

# typer 0.2x writes an option's value as its Python type (``<str>``, ``<list[str]>``, ``<int range>``); these are
# the names click writes (older typer prints them as they are, and then nothing here matches).
_CLICK_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "path": "PATH",
    "int range": "INTEGER RANGE",
    "float range": "FLOAT RANGE",
}
_PYTHON_TYPE = re.compile(r"<([^<>]+)>")


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", None) == "argument"


def _argument_name(param: Any) -> str:
    return str(param.metavar or (param.name or "").upper())


def _usage_piece(param: Any) -> str:
    """``NAME``, ``[NAME]`` when optional, ``SPEC...`` when it takes several: click's usage form of an argument."""
    piece = _argument_name(param) if param.required else f"[{_argument_name(param)}]"
    return f"{piece}..." if param.nargs != 1 else piece


def _argument_label(param: Any) -> str:
    return f"{_argument_name(param)}..." if param.nargs != 1 else _argument_name(param)


def _click_value_name(match: re.Match[str]) -> str:
    name = match.group(1)
    repeated = re.fullmatch(r"list\[(.+)\]", name)
    if repeated:  # a repeatable option takes one value each time it is given
        name = repeated.group(1)
    if "|" in name:
        return f"[{name}]"
    return _CLICK_NAMES.get(name, name.upper())


def _option_label(written: str) -> str:
    """``--repo PATH``, ``--ref TEXT``, ``--prices [snapshot|live]``: click's form of an option and its value."""
    return _PYTHON_TYPE.sub(_click_value_name, written)


def _write(command: Any, ctx: Any, formatter: Any) -> None:
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if _is_argument(param):
            arguments.append((_argument_label(param), record[1]))
        else:
            options.append((_option_label(record[0]), record[1]))
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    if options:
        with formatter.section("Options"):
            formatter.write_dl(options)


class Command(TyperCommand):
    """A leaf command whose help uses click's forms of arguments and option values."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_usage_piece(p) for p in self.get_params(ctx) if _is_argument(p)]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _write(self, ctx, formatter)


class Group(TyperGroup):
    """A command group whose own options are written like ``Command``'s, then its commands."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _write(self, ctx, formatter)
        self.format_commands(ctx, formatter)


class Typer(typer.Typer):
    """``typer.Typer`` whose commands and groups default to the classes above."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
