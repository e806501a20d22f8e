"""One run, described: ``gitops status NAME`` (what serves, the candidate and its gate, the step and its deadline,
the last history, where the logs are, the command to type next) and ``gitops logs NAME``.

The list view (``gitops status``) stays a line per run; this is where a run's whole state is read.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from gitops.cli.app import app
from gitops.util.durations import human

HISTORY_SHOWN = 6


def describe(lifecycle: Any, record: Any, now: float | None = None) -> str:
    """The run's state as a person reads it, a labelled line (or block) per fact."""
    from gitops.errors import GitopsError

    now = time.time() if now is None else now
    backend = lifecycle.backend_of(record)
    try:
        info = backend.get_endpoint(record.endpoint) if record.endpoint else None
    except GitopsError as exc:
        info, unreadable = None, exc.headline
    else:
        unreadable = ""
    since = record.entered(record.status)
    where = f" in {record.environment}" if record.environment else ""
    lines = [f"run        {record.run}{where} ({record.backend}), {record.status}" + (f" for {human(now - since)}" if since else "")]
    lines.append(
        "serves     "
        + (_serving_serverless(backend, record) if record.serving_kind == "serverless" else _serving(record, info, unreadable))
    )
    if record.approval is not None:
        a = record.approval
        lines.append(
            f"approved   by {a.by} {human(now - a.at)} ago" + (f": {a.reason}" if a.reason else "") + (f" ({a.via})" if a.via else "")
        )
    candidate = _candidate(record, info)
    if candidate:
        lines.append("candidate  " + candidate)
    lines += _gate(record.gate)
    lines += [
        f"promotion  to {p.to}: {p.state.value} for {human(now - p.due_at)} ({p.model} v{p.version}, {p.digest[:19]}…)"
        + (" into the registry" if p.state.value == "sharing" else "")
        for p in record.promotions
        if p.state.value in ("due", "sharing")
    ]
    lines += _promotion_waits(record, now)
    if record.cursor is not None:
        c = record.cursor
        lines.append(
            f"step       {c.step} ({c.plan}) for {human(now - c.entered_at)}, deadline in {human(c.deadline_at - now)}"
            + (f": {c.last}" if c.last else "")
        )
    if record.error:
        lines.append(f"error      {record.error}")
    lines.append("cost       " + _cost(backend, record, now))
    lines.append("history" + ("" if record.history else "    -"))
    for h in record.history[-HISTORY_SHOWN:]:
        at = datetime.fromtimestamp(h.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"  {at}  {h.status:<12} {h.note}".rstrip())
    lines += _logs(lifecycle.backend_for(record.backend), record, info)  # the job ran where the run trains
    lines.append("next       " + next_command(record))
    return "\n".join(lines) + "\n"


def _cost(backend: Any, record: Any, now: float) -> str:
    """What the run has cost so far and is expected to (the dashboard's figures), and the hours its serving deployment
    has been paid for since it last answered a request (what idling costs until cleanup's idle_after)."""
    from datetime import timedelta

    from gitops.cost.spend import idle_hours, priced
    from gitops.errors import GitopsError
    from gitops.lifecycle.wiring import price_book

    spent, why = priced(record, price_book(live=False), now)
    if spent is None:
        return f"unknown ({why})"
    endpoint = record.serving_endpoint
    if not (record.serves and endpoint and record.serving_kind == "managed"):
        return spent.line()
    try:
        usage = backend.usage([endpoint], timedelta(days=30)).get(endpoint)
    except GitopsError:
        usage = None
    if usage is None or not usage.known or (usage.requests and usage.last_request_at is None):
        return spent.line() + "; idle hours unknown (no request figures)"
    last = usage.last_request_at.timestamp() if usage.last_request_at is not None else None
    idle = idle_hours(record, last, now)
    if idle is None:
        return spent.line()
    paid = f" (${idle * spent.serving_hourly:,.2f})" if spent.billed and spent.serving_hourly is not None else ""
    return spent.line() + f"; idle for {human(idle * 3600)}{paid} since its last request"


def _promotion_waits(record: Any, now: float) -> list[str]:
    """What the serving version's promotion to the next environment waits for, when it is not due or released yet."""
    from gitops.errors import GitopsError
    from gitops.lifecycle.promotions import next_environment, waiting_for

    try:
        found = next_environment(record)
    except GitopsError:
        return []
    if found is None or any(p.to == found[1] and p.job_name == record.job_name for p in record.promotions):
        return []
    waits = waiting_for(record, found[0], found[1], now)
    return [f"promotion  to {found[1]}: waits for " + "; ".join(waits)] if waits else []


def _serving(record: Any, info: Any, unreadable: str) -> str:
    if unreadable:
        return f"? (its endpoint cannot be read: {unreadable})"
    if not record.endpoint or not record.deployment or record.status == "retired" or info is None:
        return "nothing" + (f" (endpoint {record.endpoint} is gone)" if record.endpoint and info is None else "")
    dep = info.deployment(record.deployment)
    share = info.traffic.get(record.deployment, 0)
    health = "up" if dep is not None and dep.healthy else ("STOPPED (gitops start)" if record.stopped_at else "DOWN")
    version = record.serving_version or "?"
    url = info.scoring_uri or "-"
    return f"{record.deployment} · {record.model_name or '-'} v{version} · {share}% · {health} · {url}"


def _serving_serverless(backend: Any, record: Any) -> str:
    """A serverless endpoint that serves: its name, model, health and the URL a client posts /v1/chat/completions to."""
    from gitops.backends.base import ServesServerless
    from gitops.errors import GitopsError

    if not record.serves:
        return "nothing"
    try:
        found = backend.get_serverless(record.deployment) if isinstance(backend, ServesServerless) else None
    except GitopsError as exc:
        return f"? (its serverless endpoint cannot be read: {exc.headline})"
    if found is None:
        return f"nothing (serverless endpoint {record.deployment} is gone)"
    health = (
        "up" if found.serving and found.healthy else ("STOPPED (gitops start)" if record.stopped_at else found.endpoint_state.value.upper())
    )
    url = record.scoring_uri or found.scoring_uri or "-"
    model = f"{record.model_name or '-'} v{record.serving_version or '?'}"
    return f"{record.deployment} (serverless) · {model} · {health} · {url}/v1/chat/completions"


def _candidate(record: Any, info: Any) -> str:
    c = record.cursor
    if c is not None and c.deployment and c.serverless and c.deployment != record.deployment:
        try_it = f"gitops invoke {record.run} --deployment {c.deployment}"
        return f"{c.deployment} (serverless endpoint of its own) · {record.model_name or '-'} v{c.model_version or '?'} ({try_it})"
    if c is not None and c.deployment and c.deployment != record.deployment:
        share = info.traffic.get(c.deployment, 0) if info is not None else 0
        try_it = f"gitops invoke {record.run} --deployment {c.deployment}"
        return f"{c.deployment} · {record.model_name or '-'} v{c.model_version or '?'} · {share}% ({try_it})"
    if record.tried_version:
        return f"{record.model_name or '-'} v{record.tried_version}: {record.status} (not deployed now)"
    return ""


def _gate(gate: dict[str, Any] | None) -> list[str]:
    if not gate:
        return []
    lines = ["gate       " + ("passed" if gate.get("ok") else "FAILED")]
    lines += [f"  ✗ {reason}" for reason in gate.get("reasons") or []]
    lines += [f"  ✓ {note}" for note in gate.get("notes") or []]
    return lines


def _logs(backend: Any, record: Any, info: Any) -> list[str]:
    from gitops.errors import GitopsError

    try:
        job = backend.get_job(record.job_name)
    except GitopsError:
        job = None
    lines = [f"job        {record.job_name}" + (f" ({job.state.value})" if job else "")]
    if job is not None and job.progress.get("step") == "prepare_data":  # a fine-tuning job waits for its data
        then = "done: the fine-tuning job is submitted next" if job.progress.get("next") == "submit" else "preparing"
        lines.append(f"  data     {record.job_name}-data, the job that prepares its dataset: {then}")
    if job is not None and job.log_path:
        lines.append(f"  log      {job.log_path}  (gitops logs {record.run})")
    if job is not None and job.portal_url:
        lines.append(f"  studio   {job.portal_url}")
    if info is not None and info.log_path:  # a backend that runs its own endpoint servers
        lines.append(f"  server   {info.log_path}")
    return lines


def next_command(record: Any) -> str:
    """What to type next, by where the run stands."""
    run = record.run
    env = f" --env {record.environment}" if record.environment else ""
    if record.status == "held":
        return f"gitops promote {run}{env} --reason ...  or  gitops rollback {run}{env} --reason ..."
    due = next((p for p in record.promotions if p.state.value == "due"), None)
    if due is not None and record.cursor is None:
        return f"approve the promote workflow's job for {due.to} (or, where allowed: gitops release {run} --to {due.to} --reason ...)"
    if record.cursor is not None:
        return f"wait, or gitops reconcile (the step is due in {human(record.cursor.not_before - time.time())})"
    if record.status in ("submitted", "running"):
        return f"gitops logs {run} (the training), then gitops reconcile once the job ends"
    if record.stopped_at and record.serves:
        return f"gitops start {run}{env}"
    if record.serves:
        return f"gitops invoke {run}{env} --message '...'  (gitops report {run} for the run's report)"
    if record.status == "failed":
        return f"gitops logs {run}; fix the spec and merge it again (the retry workflow runs the same version again)"
    return f"merge runs/{run}.yaml again to bring it back"


@app.command()
def logs(
    name: str = typer.Argument(..., help="A run name."),
    lines: int = typer.Option(40, "--lines", "-n", min=1, max=10000, help="How many of the log's last lines."),
) -> None:
    """The run's job log (local: its last lines), or where to read it (Azure: the command and the studio link)."""
    from gitops.errors import NotFoundError
    from gitops.lifecycle.wiring import local_lifecycle

    lifecycle = local_lifecycle()
    got = lifecycle.ledger.get(name)
    if got is None:
        raise NotFoundError(f"no run named '{name}'", hint="`gitops status` lists the runs")
    record = got[0]
    job = lifecycle.backend_for(record.backend).get_job(record.job_name)
    if job is None:
        raise NotFoundError(f"job {record.job_name} of run '{name}' is not found", hint=f"see `gitops status {name}`")
    if job.log_path and Path(job.log_path).is_file():
        with Path(job.log_path).open(encoding="utf-8", errors="replace") as fh:
            tail = deque(fh, maxlen=lines)
        print(f"==> {job.log_path} ({job.state.value}; last {len(tail)} lines) <==")
        print("".join(tail), end="" if tail and tail[-1].endswith("\n") else "\n")
        return
    print(f"job {job.name} ({job.state.value}) runs in Azure ML; its logs:")
    print(f"  az ml job stream --name {job.name}   (with --workspace-name and --resource-group, or `az configure --defaults`)")
    if job.portal_url:
        print(f"  {job.portal_url}")
