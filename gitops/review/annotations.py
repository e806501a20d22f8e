"""Findings as GitHub workflow commands (``::error file=F,line=L,col=C,title=T::message``): printed by a workflow step,
each becomes an annotation on its file and line in the pull request's diff, beside the sticky plan comment.

Escaped as the runner parses them (and as ``@actions/core`` writes them): in the message ``%``, CR and LF; in a
property also ``:`` and ``,``. A spec's file name, a field path and a message a spec or a model controls can hold any
of them, and unescaped they would end the command early or forge another one.
"""

from __future__ import annotations

from collections.abc import Iterable

from gitops.spec.findings import Finding, Severity

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str:
    """One finding as a workflow command; its hint goes with its message."""
    props = [("title", finding.path or "(document)"), ("file", finding.file), ("line", finding.line), ("col", finding.column)]
    properties = ",".join(f"{k}={escape_property(str(v))}" for k, v in props if v)
    message = finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
    return f"::{LEVELS[finding.severity]} {properties}::{escape_data(message)}"


def workflow_commands(findings: Iterable[Finding]) -> list[str]:
    """Each located finding as a workflow command, in the order given."""
    return [annotation(f) for f in findings if f.file]
