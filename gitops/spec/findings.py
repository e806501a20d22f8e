"""Findings: one problem or remark about a spec, located by file, line and field path."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"  # neither wrong nor risky: a fact the reviewer asked for (the quota a run takes, say)


class Code(StrEnum):
    """What kind of problem a finding is, for a program to act on (the watch files quota findings apart from
    retired models; a client filters on them): stable across releases, unlike the wording of ``message``.
    docs/spec.md lists them."""

    # The file and its fields (offline)
    UNREADABLE = "unreadable"  # not UTF-8, too large, not a file
    YAML = "yaml"  # YAML the reader refuses, or a construct a spec does not use (aliases, merge keys)
    FIELD = "field"  # a field missing, unknown, of the wrong type or out of range
    PARAM = "param"  # a parameter of the training component
    NAME = "name"  # the run's name and its file's name differ
    UNSET = "unset"  # a field left out takes a default the reviewer should know of
    CAPABILITY = "capability"  # the backend cannot do what the spec asks
    KIND = "kind"  # a setting the training or serving kind has no use for, or a kind it needs and lacks
    POLICY = "policy"  # gitops.yaml does not allow it
    POLICY_FILE = "policy-file"  # gitops.yaml itself cannot be read
    GATE_WAIVER = "gate-waiver"  # the gate goes without evidence, on purpose or not
    CONFLICT = "conflict"  # two specs claim the same name or endpoint
    ENDPOINT_MOVED = "endpoint-moved"  # a new version would serve from another endpoint than the run's
    NOT_SUBMITTED = "not-submitted"  # a merge of this spec submits nothing (a local spec, checked in the cloud)
    # What the backend says (online)
    MODEL = "model"  # the model cannot be found or read
    MODEL_ARCHIVED = "model-archived"
    MODEL_RETIRED = "model-retired"  # fine-tuning or inference retired
    MODEL_DEPRECATED = "model-deprecated"  # retires soon
    MODEL_UNPINNED = "model-unpinned"  # a label resolved to a version: not reproducible
    SKU_RETIRED = "sku-retired"
    SKU_UNAVAILABLE = "sku-unavailable"  # the region does not offer the size
    SKU_UNSUITED = "sku-unsuited"  # the model does not run on it, or it has no GPU
    COMPUTE = "compute"  # the cluster: missing, failed, another size, fewer nodes
    QUOTA = "quota"  # over the vCPU quota, waiting for it, or (a note) what it takes
    DATA = "data"  # a dataset that does not exist or cannot be read
    COMPONENT = "component"  # the training component's version is not published
    # Cost
    PRICE_UNKNOWN = "price-unknown"  # a budget cap that no price can check
    BUDGET = "budget"  # over a cap of budget:


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
    code: Code = field(kw_only=True)
    since: str | None = field(default=None, kw_only=True)  # when what it reports began (an ISO date), when known
    column: int | None = field(default=None, kw_only=True)  # where on its line the field's key begins (1-based), when known

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def located(self, file: str | None = None, line: int | None = None, *, column: int | None = None) -> Finding:
        return Finding(
            self.severity,
            self.path,
            self.message,
            self.hint,
            file or self.file,
            line if line is not None else self.line,
            self.source,
            code=self.code,
            since=self.since,
            column=column if column is not None else self.column,
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
        data["code"] = self.code.value
        return data


def error(path: str, message: str, hint: str | None = None, source: str = "schema", *, code: Code, since: str | None = None) -> Finding:
    return Finding(Severity.ERROR, path, message, hint, source=source, code=code, since=since)


def warning(path: str, message: str, hint: str | None = None, source: str = "schema", *, code: Code, since: str | None = None) -> Finding:
    return Finding(Severity.WARNING, path, message, hint, source=source, code=code, since=since)


def note(path: str, message: str, source: str = "online", *, code: Code) -> Finding:
    return Finding(Severity.NOTE, path, message, None, source=source, code=code)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.is_error for f in findings)
