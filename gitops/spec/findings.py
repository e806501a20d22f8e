"""Findings: one problem or remark about a spec, located by file, line and field path."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"  # neither wrong nor risky: a fact the reviewer asked for (the quota a run takes, say)


@dataclass(frozen=True)
class Finding:
    """A located problem. ``path`` is the dotted field path (``finetune.params.learning_rate``)."""

    severity: Severity
    path: str
    message: str
    hint: str | None = None
    file: str | None = None
    line: int | None = None
    source: str = "schema"  # schema | policy | online

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def located(self, file: str | None = None, line: int | None = None) -> Finding:
        return Finding(
            self.severity, self.path, self.message, self.hint, file or self.file, line if line is not None else self.line, self.source
        )

    def headline(self) -> str:
        """``FILE:LINE: field.path: message``: an error's one line, its hint left to go beside it."""
        label = "" if self.severity is Severity.ERROR else f"{self.severity.value}: "
        return f"{self.file or '<spec>'}:{self.line or 1}: {label}{self.path or '(document)'}: {self.message}"

    def format(self) -> str:
        """``FILE:LINE: field.path: message (hint: ...)`` as the CLI prints it."""
        return f"{self.headline()} (hint: {self.hint})" if self.hint else self.headline()

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


def error(path: str, message: str, hint: str | None = None, source: str = "schema") -> Finding:
    return Finding(Severity.ERROR, path, message, hint, source=source)


def warning(path: str, message: str, hint: str | None = None, source: str = "schema") -> Finding:
    return Finding(Severity.WARNING, path, message, hint, source=source)


def note(path: str, message: str, source: str = "online") -> Finding:
    return Finding(Severity.NOTE, path, message, None, source=source)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.is_error for f in findings)
