"""The dashboard's pages, read by a real HTML parser: what they show, the escaping of every field a spec, a record or a
model controls, the links (never a `javascript:` URL), the strict CSP, the read-only routes."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gitops.cost.prices import committed_snapshot
from gitops.dashboard.pages import DashboardSource, respond
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import Cursor, HistoryEntry, RunRecord, SmokeResult
from gitops.ledger.step_state import HeldShare, Ramp
from gitops.spec.validate import validate_text
from gitops.watch.findings import WATCH_DOCUMENT
from tests.conftest import REFERENCE_ON_ASSETS
from tests.fakes.workspace_mlflow import WorkspaceMlflow
from tests.security.test_markdown_escaping import HOSTILE as PLAN_COMMENT_CASES
from tests.security.test_markdown_escaping import HOSTILE_SUMMARY_VALUES as SUMMARY_CASES

NOW = 1_800_000_000.0
HOSTILE = [
    *PLAN_COMMENT_CASES,  # the red-team cases of the plan comment and the job summaries apply here too
    *SUMMARY_CASES,
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "{{ 7*7 }} {% raw %}",
    "</title></svg><svg onload=alert(1)>",
    "a & b < c > d ' \"",
]


class Page(HTMLParser):
    """Every tag with its attributes, the text, and the scripts, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def shown(self) -> str:
        return " ".join(" ".join(self.text).split())

    def attrs(self, name: str) -> list[str]:
        return [a[name] or "" for _, a in self.tags if name in a]


def readable(text: str) -> str:
    """Text as a reader compares it: control characters and runs of whitespace as one space."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", text).split())


def spec_dict(name: str = "phi4-ultrachat") -> tuple[dict[str, Any], dict[str, Any]]:
    v = validate_text(REFERENCE_ON_ASSETS.replace("name: phi4-ultrachat", f"name: {name}"), f"runs/{name}.yaml")
    assert v.ok and v.spec is not None
    return v.spec.model_dump(mode="json"), dict(v.params)


def a_record(run: str = "phi4-ultrachat", **fields: Any) -> RunRecord:
    spec, params = spec_dict(run)
    base: dict[str, Any] = dict(
        run=run,
        backend="azureml",
        job_name="job-2",
        digest="d2",
        spec=spec,
        params=params,
        status="live",
        endpoint="ultrachat-completion",
        deployment="v2-abc",
        model_name="Phi-4-ultrachat-200k",
        serving_model_version="2",
        history=[
            HistoryEntry(at=NOW - 7200, status="submitted", note="job job-2"),
            HistoryEntry(at=NOW - 3600, status="deploying", note="rollout starts"),
            HistoryEntry(at=NOW - 600, status="live", note="v2-abc takes 100%"),
        ],
        updated_at=NOW - 600,
    )
    return RunRecord.model_validate({**base, **fields})


def source(tmp_path: Path, *records: RunRecord, reader: Any = None, repo: str = "acme/models") -> DashboardSource:
    ledger = LocalLedger(tmp_path / "ledger")
    for r in records:
        ledger.put(r, None)
    return DashboardSource(ledger, reader, lambda: NOW, committed_snapshot(), repo)


def html(page: Any) -> Page:
    assert page.content_type.startswith("text/html")
    return Page(page.body.decode())


def test_the_list_shows_each_run_with_its_step_deadline_endpoint_traffic_and_environment(tmp_path: Path) -> None:
    moving = a_record(
        "chat-moving",
        status="deploying",
        cursor=Cursor(
            step="ramp",
            entered_at=NOW - 190,
            not_before=NOW + 10,
            deadline_at=NOW + 1010,
            started_at=NOW - 900,
            endpoint="ultrachat-completion",
            deployment="v3-def",
            previous="v2-abc",
            ramp=Ramp(index=0, visit="observe"),
        ),
        spec={**spec_dict("chat-moving")[0], "deploy": {**spec_dict()[0]["deploy"], "rollout": {"shares": [10, 50], "hold": "10m"}}},
    )
    page = html(respond(source(tmp_path, a_record(), moving), "/"))
    rows = page.shown
    assert "chat-moving" in rows and "phi4-ultrachat" in rows
    assert "ramp" in rows and "3m10s" in rows and "16m50s" in rows  # in the step, and to its deadline
    assert "v3-def 10%" in " ".join(rows.split()) and "v2-abc 90%" in " ".join(rows.split())
    assert "v2-abc 100%" in " ".join(rows.split())
    assert rows.index("chat-moving") < rows.index("phi4-ultrachat")  # what moves comes first
    main = next(a for t, a in page.tags if t == "main")
    assert main["data-refresh-s"] == "5"  # something moves: the page refreshes itself


def test_a_quiet_list_does_not_refresh_and_an_empty_ledger_says_how_to_start(tmp_path: Path) -> None:
    quiet = html(respond(source(tmp_path / "a", a_record()), "/"))
    assert next(a for t, a in quiet.tags if t == "main")["data-refresh-s"] == "0"
    empty = html(respond(source(tmp_path / "b"), "/"))
    assert "No runs yet" in empty.shown and "The watch has not run yet" in empty.shown


def test_a_run_page_shows_timeline_gate_ramp_smoke_cost_and_loss_curves(tmp_path: Path) -> None:
    mlflow = WorkspaceMlflow.fresh(tmp_path)
    mlflow.log_job("job-1")
    mlflow.log_job("job-2")
    record = a_record(
        previous_job="job-1",
        pr="7",
        commit="c0ffee" * 6 + "abcd",
        gate={"ok": True, "reasons": [], "notes": ["eval loss 2.1 <= 2.2"], "numbers": {"training": {"candidate": {"eval_loss": 2.1}}}},
        rollout_steps=[HeldShare(share=10, requests=120, errors=1, p95_latency_ms=812.4, held_s=600, ok=True, at=NOW - 1200)],
        smoke=SmokeResult(ok=True, status_code=200, latency_ms=41.0, reply_excerpt="Red, yellow and blue.", at=NOW - 700),
    )
    page = html(respond(source(tmp_path, record, reader=mlflow.reader), "/runs/phi4-ultrachat"))
    shown = " ".join(page.shown.split())
    assert "training.candidate.eval_loss 2.1" in shown and "passed" in shown
    assert "10% 120 1 812 ms 10m yes" in shown
    assert "Red, yellow and blue." in shown and "41 ms" in shown
    assert "1.0 h of job time: $3.67" in shown  # submitted 1 h before deploying, at $3.673/h
    assert "So far $7.35" in shown  # and an hour of the candidate deployment since
    assert [h for t, a in page.tags if t == "a" and (h := a.get("href") or "").startswith("https://")] == [
        "https://github.com/acme/models/pull/7",
        "https://github.com/acme/models/commit/" + "c0ffee" * 6 + "abcd",
        "https://github.com/acme/models/actions/workflows/decide.yml",
    ]
    lines = [a for t, a in page.tags if t == "polyline"]
    assert [a["class"] for a in lines] == [
        "series series-train",
        "series series-eval",
        "series series-train dashed",
        "series series-eval dashed",
    ]
    assert "train loss (previous version)" in shown
    timeline = shown[shown.index("Timeline") :]
    assert timeline.index("live") < timeline.index("deploying") < timeline.index("submitted")  # newest first


@pytest.mark.parametrize("value", HOSTILE)
def test_every_field_a_record_or_a_model_controls_is_text_never_markup(tmp_path: Path, value: str) -> None:
    record = a_record(
        pr=value,
        commit=value,
        error=value,
        model_name=value,
        job_name=value,
        endpoint=value,
        deployment=value,
        scoring_uri=value,
        gate={"ok": False, "reasons": [value], "notes": [value], "numbers": {value: value}},
        smoke=SmokeResult(ok=False, reply_excerpt=value, reason=value, at=NOW),
        history=[HistoryEntry(at=NOW - 60, status="live", note=value)],
        last_cleanup={"at": NOW, "action": value, "endpoint": value, "reasons": [value]},
    )
    src = source(tmp_path, record)
    src.ledger.save_document(
        WATCH_DOCUMENT,
        {
            "at": value,
            "findings": [{"kind": "drift", "severity": "error", "run": "phi4-ultrachat", "subject": value, "what": value, "fix": value}],
        },
    )
    for path in ("/", "/runs/phi4-ultrachat"):
        page = html(respond(src, path))
        assert [a.get("src") for t, a in page.tags if t == "script"] == ["/static/dashboard.js"]
        assert not any(k.startswith("on") for _, a in page.tags for k in a), path
        assert not [h for h in page.attrs("href") if not h.startswith(("/", "#main", "https://github.com/acme/models/"))], path
        assert readable(value) in readable(page.shown), path  # shown as the text it is
        assert not [t for t, _ in page.tags if t in ("img", "iframe", "object", "embed", "form", "input")], path


def test_links_are_made_only_of_what_github_names(tmp_path: Path) -> None:
    page = html(respond(source(tmp_path, a_record(pr="7 onclick", commit="not-a-sha")), "/runs/phi4-ultrachat"))
    hrefs = page.attrs("href")
    assert not [h for h in hrefs if "/pull/" in h or "/commit/" in h]
    other = html(respond(source(tmp_path / "b", a_record(pr="7"), repo="javascript:alert(1)//x"), "/runs/phi4-ultrachat"))
    assert not [h for h in other.attrs("href") if h.startswith("https://")]


def test_every_answer_carries_the_csp_and_nothing_is_served_but_the_pages_and_their_files(tmp_path: Path) -> None:
    src = source(tmp_path, a_record())
    for path in ("/", "/runs/phi4-ultrachat", "/static/dashboard.js", "/static/dashboard.css", "/nope", "/runs/../ledger"):
        page = respond(src, path)
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert respond(src, "/runs/../ledger").status == 404
    assert respond(src, "/static/../pages.py").status == 404
    assert respond(src, "/runs/no-such-run").status == 404
    assert respond(src, "/static/dashboard.js").content_type.startswith("text/javascript")


def test_an_unreadable_record_is_named_on_the_list_and_its_page_says_why(tmp_path: Path) -> None:
    src = source(tmp_path, a_record())
    (tmp_path / "ledger" / "broken.json").write_text("{not json", encoding="utf-8")
    listing = html(respond(src, "/"))
    assert "Records that cannot be read" in listing.shown and "broken" in listing.shown
    assert "phi4-ultrachat" in listing.shown  # one bad record never takes the others down
    page = respond(src, "/runs/broken")
    assert page.status == 500 and "cannot be read" in html(page).shown


def test_rendering_reads_the_clock_once_and_no_backend(tmp_path: Path) -> None:
    calls: list[float] = []

    def clock() -> float:
        calls.append(time.time())
        return NOW

    src = source(tmp_path, a_record())
    src.clock = clock
    respond(src, "/")
    assert len(calls) == 1


def test_a_run_in_two_environments_shows_where_it_serves(tmp_path: Path) -> None:
    from gitops.ledger.model import Promotion

    policy = {"environments": [{"name": "dev", "workspace": {}}, {"name": "prod", "workspace": {}}]}
    dev = a_record(
        policy=policy,
        promotions=[
            Promotion(to="prod", job_name="job-2", model="Phi-4-ultrachat-200k", version="2", digest="sha256:" + "a" * 64, due_at=NOW - 500)
        ],
    )
    prod = a_record(environment="prod", policy=policy, endpoint="ultrachat-prod")
    src = source(tmp_path, dev, prod)
    listing = html(respond(src, "/"))
    assert listing.shown.count("dev, prod") == 2  # each of the run's records says where the run serves
    page = html(respond(src, "/runs/phi4-ultrachat.prod"))
    assert "phi4-ultrachat in prod" in page.shown and "dev, prod" in page.shown
    first = html(respond(src, "/runs/phi4-ultrachat"))
    assert "prod due Phi-4-ultrachat-200k v2" in first.shown
    assert "https://github.com/acme/models/actions/workflows/promote.yml" in first.attrs("href")
