"""What the watch found: one typed record per finding, and its renderings (text, JSON, a GitHub issue body)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from gitops.markdown import code, text

Kind = Literal["model", "sku", "quota", "compute", "drift", "gone", "unreadable"]
WATCH_MARKER = "<!-- finetune-gitops:watch -->"
WATCH_DOCUMENT = "watch"  # the ledger document the watch timer keeps its latest findings in


@dataclass(frozen=True)
class WatchFinding:
    kind: Kind
    severity: Literal["error", "warning", "note"]
    run: str
    subject: str  # what it is about: the spec's field, or the endpoint (and deployment)
    what: str  # what changed, as the online checks or the comparison say it
    fix: str  # the spec edit, or the command, that puts it right
    since: str | None = None  # when it began, when known (an ISO date)
    fixable: bool = False  # `gitops watch --fix` restores it (traffic, deployments nobody asked for)

    @property
    def key(self) -> str:
        """Stable across scans while the same thing is wrong (the issue's rows are matched by it)."""
        return f"{self.run}|{self.kind}|{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchFinding:
        return cls(
            **{k: data[k] for k in ("kind", "severity", "run", "subject", "what", "fix")},
            since=data.get("since"),
            fixable=bool(data.get("fixable")),
        )


ORDER = {"error": 0, "warning": 1, "note": 2}


def ordered(findings: list[WatchFinding]) -> list[WatchFinding]:
    return sorted(findings, key=lambda f: (ORDER[f.severity], f.run, f.kind, f.subject))


def render_text(findings: list[WatchFinding], specs: int, runs: int) -> str:
    """The findings, one with its fix each; with none, what was looked at (``specs`` checked online, ``runs`` whose
    endpoints were compared with the ledger), so "nothing found" is never said of nothing checked."""
    if not findings:
        checked = f"{specs} spec(s)' model, SKUs and quota hold" if specs else "no spec checked online (--offline, or none under --runs)"
        return f"no findings: {checked}; the endpoints of {runs} run(s) in the ledger run as declared\n"
    lines = []
    for f in ordered(findings):
        since = f" (since {f.since})" if f.since else ""
        lines.append(f"{f.severity:7} {f.run}: {f.subject}: {f.what}{since}\n        fix: {f.fix}")
    fixable = sum(1 for f in findings if f.fixable)
    tail = f"\n{len(findings)} finding(s)" + (f"; {fixable} restorable with `gitops watch --fix`" if fixable else "")
    return "\n".join(lines) + tail + "\n"


def render_markdown(findings: list[WatchFinding], at: str) -> str:
    """The one tracked issue's body: a marker line, a summary, a row per finding with the edit that fixes it."""
    icon = {"error": "❌", "warning": "⚠️", "note": "ℹ️"}
    head = [WATCH_MARKER, f"**finetune-gitops watch**, {at}: {len(findings)} finding(s).", ""]
    if not findings:
        return "\n".join([*head, "Nothing to do: every model, SKU and quota holds and every endpoint runs as declared."]) + "\n"
    rows = ["| | run | about | what | since | fix |", "|---|---|---|---|---|---|"]
    rows += [
        f"| {icon[f.severity]} | {code(f.run)} | {code(f.subject)} | {text(f.what)} | {text(f.since or '-')} | {text(f.fix)} |"
        for f in ordered(findings)
    ]
    foot = [
        "",
        "Restorable drift: `gitops watch --fix` shows what it would do, `--fix --yes` does it "
        "(only on endpoints this repository manages, never on a `keep` run or one rolling out or held).",
    ]
    return "\n".join([*head, *rows, *foot]) + "\n"
