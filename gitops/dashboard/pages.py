"""The dashboard's pages, the same wherever they are served (``gitops ui`` on loopback, the Function App behind Entra
sign-in): a path under the dashboard's base answered with a page. Read-only: there is no route that changes anything,
and the actions a page offers are links to GitHub (the pull request, the workflows that promote, roll back, release).

Escaping is Jinja2's autoescape, on every field, in every template (HTML and the inline SVG alike). Every answer
carries a Content-Security-Policy that lets the page load only what this app serves (no CDN, no inline script).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops.dashboard import views

if TYPE_CHECKING:
    from jinja2 import Environment

    from gitops.cost.prices import PriceSource
    from gitops.ledger.model import Ledger, RunRecord
    from gitops.report.metrics import MetricsReader

HERE = Path(__file__).parent
STATIC = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the local URL carries a token until the first answer sets the cookie
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass
class DashboardSource:
    """What the pages read: the ledger, where a backend's training metrics are, the clock, the prices the plan uses,
    and this repository's name (the links to GitHub)."""

    ledger: Ledger
    reader_for: Callable[[str], MetricsReader] | None
    clock: Callable[[], float]
    prices: PriceSource
    repo: str
    refresh_s: float = 5.0  # how often a page refreshes itself while something moves


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


@lru_cache(maxsize=1)
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: .html and the SVG inside it
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def html_page(status: int, template: str, **values: Any) -> Page:
    body = environment().get_template(template).render(**values)
    return Page(status, "text/html; charset=utf-8", body.encode("utf-8"))


def respond(source: DashboardSource, path: str, base: str = "/") -> Page:
    """The page at ``path`` (relative to the dashboard's ``base``, which every link starts with)."""
    from gitops.ledger.model import is_record_key

    path = path.strip("/")
    if path == "":
        return run_list(source, base)
    if path.startswith("runs/") and is_record_key(path.removeprefix("runs/")):
        return run_page(source, path.removeprefix("runs/"), base)
    if path.startswith("static/") and path.removeprefix("static/") in STATIC:
        name = path.removeprefix("static/")
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        return Page(200, STATIC[name], (HERE / "static" / name).read_bytes(), headers)
    return not_found(base, "no such page")


def not_found(base: str, what: str) -> Page:
    return html_page(404, "error.html", base=base, title="Not found", message=what, hint="", refresh_s=0)


def _refresh(source: DashboardSource, moving: bool) -> float:
    return source.refresh_s if moving else 0


def run_list(source: DashboardSource, base: str) -> Page:
    records = source.ledger.list()
    now = source.clock()
    rows = views.rows(records, now)
    watch = views.watch_view(_watch_document(source.ledger))
    return html_page(
        200,
        "runs.html",
        base=base,
        title="Runs",
        rows=rows,
        watch=watch,
        cleanup=views.cleanup_rows(records),
        unreadable=[why for _, why in getattr(source.ledger, "damaged", [])],
        refresh_s=_refresh(source, any(r.moving for r in rows)),
        now=views.shown(now),
        now_iso=views.moment(now),
    )


def _watch_document(ledger: Ledger) -> dict[str, Any] | None:
    from gitops.watch.findings import WATCH_DOCUMENT

    return ledger.load_document(WATCH_DOCUMENT)


def run_page(source: DashboardSource, key: str, base: str) -> Page:
    from gitops.errors import GitopsError

    try:
        found = source.ledger.get(key)
    except GitopsError as exc:
        return html_page(500, "error.html", base=base, title="Unreadable record", message=exc.headline, hint=exc.hint or "", refresh_s=0)
    if found is None:
        return not_found(base, f"no run named {key}")
    record = found[0]
    now = source.clock()
    page = build_run_page(source, record, now, views.where_served(_siblings(source.ledger, record)).get(record.run, ()))
    return html_page(
        200,
        "run.html",
        base=base,
        title=record.key,
        page=page,
        refresh_s=_refresh(source, page.row.moving),
        now=views.shown(now),
        now_iso=views.moment(now),
    )


def _siblings(ledger: Ledger, record: RunRecord) -> list[RunRecord]:
    """The run's records in every environment it reached (its first record's promotions name them), read by name:
    a run page reads a handful of records, never the whole ledger."""
    from gitops.ledger.model import environment_key, lookup

    read = lookup(ledger)
    first = record if record.environment is None else read(record.run)
    found = {record.key: record, **({first.key: first} if first is not None else {})}
    for p in first.promotions if first is not None else ():
        other = read(environment_key(record.run, p.to))
        if other is not None:
            found[other.key] = other
    return list(found.values())


def build_run_page(source: DashboardSource, record: RunRecord, now: float, serves_in: tuple[str, ...] = ()) -> views.RunPage:
    from gitops.cost.spend import priced

    links = views.Links(source.repo)
    cleanup = views.cleanup_rows([record])
    page = views.RunPage(
        row=views.row(record, now, serves_in),
        record=record,
        timeline=views.timeline(record),
        gate=views.gate(record.gate),
        held=views.held_rows(record),
        promotions=views.promotion_rows(record),
        pull_url=links.pull(record.pr),
        commit_url=links.commit(record.commit),
        decide_url=links.workflow("decide.yml"),
        release_url=links.workflow("promote.yml") if record.promotions else None,
        watch=views.watch_view(_watch_document(source.ledger)).of(record.run),
        cleanup=cleanup[0] if cleanup else None,
        smoke_at=views.shown(record.smoke.at) if record.smoke else "",
    )
    page.chart, page.metrics_note = _chart(source, record)
    page.spend, page.spend_note = priced(record, source.prices, now)
    return page


def _chart(source: DashboardSource, record: RunRecord) -> tuple[Any, str]:
    """The loss curves of this version and the previous one, or why there are none."""
    from gitops.dashboard.charts import loss_chart
    from gitops.errors import GitopsError, NotFoundError

    if source.reader_for is None:
        return None, "no metrics store is configured here"
    if not record.job_name:
        return None, "no training job"
    try:
        reader = source.reader_for(record.backend)
        this = reader.job_metrics(record.job_name).curves
    except NotFoundError:
        return None, f"no metrics yet for job {record.job_name} (it may not have started training)"
    except GitopsError as exc:
        return None, f"the metrics cannot be read: {exc.headline}"
    previous = None
    if record.previous_job:
        try:
            previous = reader.job_metrics(record.previous_job).curves
        except GitopsError:
            previous = None
    chart = loss_chart(this, previous)
    return chart, "" if chart is not None else f"job {record.job_name} logged no finite loss"
