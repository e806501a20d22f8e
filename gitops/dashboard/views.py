"""What the dashboard's pages show, as typed values built from ledger records: a row per run for the list, and a run's
whole page (timeline, gate, ramp, smoke, cost, promotions, cleanup, watch). No backend is called for the list: what
it shows is what the ledger declares (the traffic the rollout asked last), so a thousand runs cost a ledger read.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitops.ledger.model import RunRecord
from gitops.util.durations import human

MOVING = frozenset({"submitted", "running", "deploying", "rolling_back"})
# Steps after which the candidate has asked for all the traffic (ROLLOUT in gitops/lifecycle/steps.py).
ALL_TRAFFIC_STEPS = frozenset({"await_traffic", "retire_previous"})
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
_SHA = re.compile(r"[0-9a-f]{7,40}")


def moment(at: float | None) -> str:
    """Epoch seconds as ISO 8601 UTC (what a ``<time datetime>`` carries); "" for none."""
    if at is None or not math.isfinite(at):
        return ""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def shown(at: float | None) -> str:
    """Epoch seconds as a person reads them: ``2026-12-07 20:31 UTC``."""
    if at is None or not math.isfinite(at):
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Share:
    deployment: str
    percent: int | None  # None: not known from the ledger


@dataclass(frozen=True)
class Links:
    """Where the actions are: this repository's pull request, commit and the workflows that promote, roll back and
    release. Built only from a repository name and values that match what GitHub names (no ``javascript:`` URL)."""

    repo: str

    @property
    def ok(self) -> bool:
        return _REPO.fullmatch(self.repo) is not None

    def pull(self, pr: str | None) -> str | None:
        return f"https://github.com/{self.repo}/pull/{pr}" if self.ok and pr and pr.isdigit() else None

    def commit(self, sha: str | None) -> str | None:
        return f"https://github.com/{self.repo}/commit/{sha}" if self.ok and sha and _SHA.fullmatch(sha) else None

    def workflow(self, file: str) -> str | None:
        return f"https://github.com/{self.repo}/actions/workflows/{file}" if self.ok else None


@dataclass(frozen=True)
class RunRow:
    key: str
    run: str
    environment: str  # "" for the run's first environment
    backend: str
    status: str
    step: str  # "" when no rollout moves
    plan: str
    in_step: str  # "3m10s"
    to_deadline: str  # "16m50s", "overdue 2m" or ""
    overdue: bool
    endpoint: str
    traffic: tuple[Share, ...]
    serves_in: tuple[str, ...]  # the environments where this run serves now (its records that serve)
    moving: bool
    updated: str
    updated_iso: str
    model: str
    error: str


def traffic(record: RunRecord, now: float) -> tuple[Share, ...]:
    """The split as the ledger declares it: what serves at 100% when nothing moves; during a rollout, the share the
    ramp asked last (the candidate at 0% before it, 100% once promoted); the replaced deployment kept at 0%."""
    if record.status == "retired" or (not record.deployment and record.cursor is None):
        return ()
    c = record.cursor
    if c is None:
        kept = record.previous_deployment if (record.previous_kept_until or 0) > now else None
        kept_share = (Share(kept, 0),) if kept and kept != record.deployment else ()
        return (Share(str(record.deployment), 100), *kept_share)
    candidate, serving = c.deployment, c.serving
    if not candidate:
        return (Share(serving, 100),) if serving else ()
    if c.plan != "rollout":  # held at 0%, or given back by the rollback: what served keeps (or takes back) it all
        return (Share(candidate, 0), *((Share(serving, 100),) if serving else ()))
    if serving is None or c.serverless or c.previous_serverless:  # nothing to split with
        return (Share(candidate, 100 if c.step in ALL_TRAFFIC_STEPS else 0),) + ((Share(serving, None),) if serving else ())
    if c.step in ALL_TRAFFIC_STEPS:
        share: int | None = 100
    elif c.step == "ramp":
        share = _ramp_share(record)
    else:
        share = 0
    return (Share(candidate, share), Share(serving, None if share is None else 100 - share))


def _ramp_share(record: RunRecord) -> int | None:
    """The share the ramp asked last: the current one once asked (``settle``, ``observe``), else the last held."""
    c = record.cursor
    assert c is not None
    shares = ((record.spec.get("deploy") or {}).get("rollout") or {}).get("shares")
    if c.ramp.visit != "shift" and isinstance(shares, list) and c.ramp.index < len(shares) and isinstance(shares[c.ramp.index], int):
        return int(shares[c.ramp.index])
    return c.ramp.seen[-1].share if c.ramp.seen else 0


def row(record: RunRecord, now: float, serves_in: Iterable[str] = ()) -> RunRow:
    c = record.cursor
    to_deadline, overdue = "", False
    if c is not None:
        left = c.deadline_at - now
        overdue = left < 0
        to_deadline = f"overdue {human(-left)}" if overdue else human(left)
    version = record.serving_version or record.model_version
    return RunRow(
        key=record.key,
        run=record.run,
        environment=record.environment or "",
        backend=record.backend,
        status=str(record.status),
        step=c.step if c is not None else "",
        plan=c.plan if c is not None else "",
        in_step=human(now - c.entered_at) if c is not None else "",
        to_deadline=to_deadline,
        overdue=overdue,
        endpoint=record.serving_endpoint or record.endpoint or "",
        traffic=traffic(record, now),
        serves_in=tuple(serves_in),
        moving=is_moving(record),
        updated=shown(record.updated_at),
        updated_iso=moment(record.updated_at),
        model=f"{record.model_name} v{version}" if record.model_name and version else (record.model_name or ""),
        error=record.error or "",
    )


def is_moving(record: RunRecord) -> bool:
    """Whether the run's page changes by itself soon (a rollout or a job in progress): the page refreshes while so."""
    return record.cursor is not None or str(record.status) in MOVING


def where_served(records: Iterable[RunRecord]) -> dict[str, tuple[str, ...]]:
    """Per run, the environments its records serve in ("default" for a run without environments)."""
    found: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.serves or (r.cursor is not None and r.deployment and r.status != "retired"):
            found[r.run].append(r.environment or _first_environment(r))
    return {run: tuple(sorted(envs)) for run, envs in found.items()}


def _first_environment(record: RunRecord) -> str:
    """Where a run's first record serves: the first of the spec's environments, else of the policy it was submitted
    with ("default" for a run without environments)."""
    own = record.spec.get("environments")
    if isinstance(own, list) and own and isinstance(own[0], str):
        return own[0]
    envs = (record.policy or {}).get("environments")
    if isinstance(envs, list) and envs and isinstance(envs[0], Mapping) and envs[0].get("name"):
        return str(envs[0]["name"])
    return "default"


def rows(records: list[RunRecord], now: float) -> list[RunRow]:
    served = where_served(records)
    ordered = sorted(records, key=lambda r: (not is_moving(r), r.run, r.environment or ""))
    return [row(r, now, served.get(r.run, ())) for r in ordered]


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    at_iso: str
    status: str
    note: str


@dataclass(frozen=True)
class Figure:
    name: str
    value: str


def figures(numbers: Any, prefix: str = "") -> list[Figure]:
    """A verdict's nested numbers as flat rows (``candidate.eval_loss 1.234``), finite or said not to be."""
    out: list[Figure] = []
    if isinstance(numbers, Mapping):
        for k, v in numbers.items():
            out += figures(v, f"{prefix}{k}.")
        return out
    name = prefix.rstrip(".")
    if isinstance(numbers, bool) or numbers is None:
        value = "-" if numbers is None else str(numbers).lower()
    elif isinstance(numbers, int | float):
        value = f"{numbers:.4g}" if math.isfinite(numbers) else f"{numbers} (not a finite number)"
    elif isinstance(numbers, list):
        value = ", ".join(str(x) for x in numbers[:20])
    else:
        value = str(numbers)
    return [Figure(name, value[:200])]


@dataclass(frozen=True)
class HeldRow:
    share: int
    requests: int
    errors: int
    p95_ms: str
    held: str
    ok: bool
    at: str


@dataclass(frozen=True)
class Gate:
    ok: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    numbers: tuple[Figure, ...]


def gate(verdict: Mapping[str, Any] | None) -> Gate | None:
    if not verdict:
        return None
    return Gate(
        ok=verdict.get("ok") is True,  # anything else is not a pass
        reasons=tuple(str(r) for r in verdict.get("reasons") or ()),
        notes=tuple(str(n) for n in verdict.get("notes") or ()),
        numbers=tuple(figures(verdict.get("numbers") or {})),
    )


def held_rows(record: RunRecord) -> list[HeldRow]:
    """The ramp's shares held: the rollout in progress, else the last rollout's."""
    seen = record.cursor.ramp.seen if record.cursor is not None and record.cursor.ramp.seen else record.rollout_steps
    return [
        HeldRow(
            h.share,
            h.requests,
            h.errors,
            f"{h.p95_latency_ms:.0f} ms" if h.p95_latency_ms is not None else "-",
            human(h.held_s),
            h.ok,
            shown(h.at),
        )
        for h in seen
    ]


def timeline(record: RunRecord) -> list[TimelineEntry]:
    return [TimelineEntry(shown(h.at), moment(h.at), h.status, h.note) for h in reversed(record.history)]


@dataclass(frozen=True)
class CleanupRow:
    key: str
    at: str
    action: str
    endpoint: str
    reasons: str


def cleanup_rows(records: Iterable[RunRecord]) -> list[CleanupRow]:
    """Cleanup's last decision about each run's endpoint, newest first."""
    found = [(r.key, r.last_cleanup) for r in records if r.last_cleanup]
    found.sort(key=lambda kv: -float(kv[1].get("at") or 0))
    return [
        CleanupRow(
            key,
            shown(float(d.get("at") or 0)),
            str(d.get("action") or "?"),
            str(d.get("endpoint") or ""),
            "; ".join(str(x) for x in d.get("reasons") or ()),
        )
        for key, d in found
    ]


@dataclass(frozen=True)
class WatchRow:
    severity: str
    run: str
    subject: str
    what: str
    fix: str
    since: str


@dataclass(frozen=True)
class WatchView:
    at: str  # when the watch last ran ("" never)
    rows: tuple[WatchRow, ...] = ()
    unreadable: str = ""  # why the document cannot be read

    def of(self, run: str) -> tuple[WatchRow, ...]:
        return tuple(r for r in self.rows if r.run == run)


def watch_view(document: Mapping[str, Any] | None) -> WatchView:
    from gitops.watch.findings import WatchFinding, ordered

    if document is None:
        return WatchView("")
    try:
        findings = ordered([WatchFinding.from_dict(f) for f in document.get("findings") or ()])
    except (KeyError, TypeError, AttributeError):
        return WatchView(str(document.get("at") or ""), unreadable="the watch's findings cannot be read")
    rows = tuple(WatchRow(f.severity, f.run, f.subject, f.what, f.fix, f.since or "") for f in findings)
    return WatchView(str(document.get("at") or ""), rows)


@dataclass(frozen=True)
class PromotionRow:
    to: str
    state: str
    model: str
    due: str
    approved: str


@dataclass
class RunPage:
    row: RunRow
    record: RunRecord
    timeline: list[TimelineEntry]
    gate: Gate | None
    held: list[HeldRow]
    promotions: list[PromotionRow]
    pull_url: str | None
    commit_url: str | None
    decide_url: str | None  # the workflow that promotes a held version or rolls back (decide.yml)
    release_url: str | None  # the workflow that releases into the next environment (promote.yml)
    watch: tuple[WatchRow, ...] = ()
    cleanup: CleanupRow | None = None
    chart: Any = None  # charts.Chart, or None
    metrics_note: str = ""  # why there are no curves
    spend: Any = None  # gitops.cost.spend.Spend, or None
    spend_note: str = ""  # why there is no cost
    smoke_at: str = ""


def promotion_rows(record: RunRecord) -> list[PromotionRow]:
    rows_ = [*record.promotions, *record.received]
    return [
        PromotionRow(
            p.to,
            p.state.value,
            f"{p.model} v{p.version}",
            shown(p.due_at),
            f"{p.approval.by} ({shown(p.approval.at)})" if p.approval else "-",
        )
        for p in rows_
    ]
