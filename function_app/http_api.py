"""HTTP functions: ``POST /api/validate``, ``POST /api/submit``, ``GET /api/runs[/{name}]``, ``GET /api/watch``,
``POST /api/runs/{name}/retry|promote|rollback``, ``GET /api/promotions``, ``POST /api/runs/{name}/release/{env}``.

Each is authorize -> parse -> dispatch to ``gitops`` -> answer. Every one needs a GitHub OIDC token of the
configured repository on top of the function key (``submit``: a push to main; retry and the decisions: main),
checked before the services are built, so an unverified caller costs no storage, SDK or backend call.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from function_app.http_common import handled, json_response, limit_body, read_json
from function_app.services import gatekeeper, services
from gitops.errors import ForbiddenError, NotFoundError, RequestError

bp = func.Blueprint()


def authorized(req: func.HttpRequest, *, main_only: bool = False, main_push_only: bool = False, environment: str | None = None) -> Any:
    """Who is asking, checked first: the body's size, then the OIDC token (main only, a push to main only, a job of
    one GitHub Environment only), before the services are built, so that nothing touches storage, an SDK or a backend
    for an unverified caller."""
    settings, verifier = gatekeeper()
    limit_body(req, settings.max_body_bytes)
    return verifier.verify(req.headers.get("Authorization"), main_only=main_only, main_push_only=main_push_only, environment=environment)


def _spec_texts(items: Any) -> list[Any]:
    from gitops.review.check import SpecText

    if not isinstance(items, list) or not items:
        raise RequestError("'specs' must be a non-empty list of {path, text}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not isinstance(item.get("text"), str):
            raise RequestError(f"specs[{i}] must be an object with string 'path' and 'text'")
        out.append(SpecText(item["path"], item["text"]))
    return out


def validate(req: func.HttpRequest) -> func.HttpResponse:
    from gitops.ledger.model import lookup
    from gitops.review.annotations import workflow_commands
    from gitops.review.check import check_specs, policy_from_text, render_checks

    authorized(req)  # who is asking, before the body is even parsed
    s = services()
    body = read_json(req, s.settings.max_body_bytes)
    checks = check_specs(
        _spec_texts(body.get("specs")),
        policy_from_text(body.get("policy")),
        s.backend_for,
        salt=s.settings.repo,
        prices=s.prices,
        previous=lookup(s.lifecycle.ledger),
        hosted=True,
    )
    ok = all(c.ok for c in checks)
    # The online findings as workflow commands (the offline ones the workflow's own `gitops plan --annotate` prints).
    lines = workflow_commands(f for c in checks for f in c.online)
    answer = {"ok": ok, "results": [c.to_dict() for c in checks], "markdown": render_checks(checks), "annotations": lines}
    return json_response(answer, 200 if ok else 422)


def submit(req: func.HttpRequest) -> func.HttpResponse:
    from gitops.ledger.model import lookup
    from gitops.review.check import check_specs, policy_from_text
    from gitops.spec.capabilities import not_hosted

    caller = authorized(req, main_push_only=True)
    s = services()
    body = read_json(req, s.settings.max_body_bytes)
    commit = str(body.get("commit") or caller.sha or "")
    if caller.sha and commit != caller.sha:
        raise ForbiddenError("the commit does not match the workflow run's commit", hint="send the pushed commit's SHA")
    policy = policy_from_text(body.get("policy"), required=True)  # never the defaults in place of the repo's rules
    (check,) = check_specs(
        _spec_texts([body.get("spec")]),
        policy,
        s.backend_for,
        salt=s.settings.repo,
        prices=s.prices,
        previous=lookup(s.lifecycle.ledger),
        hosted=True,
    )
    checked = check.passed()  # SpecError with FILE:LINE: field: message, else the value submit takes (no second check)
    spec = checked.valid.spec
    why = not_hosted(spec.backend)
    if why is not None:  # a local example kept in runs/: merged, it is left for `gitops run`; nothing acts here
        return json_response({"run": spec.name, "skipped": f"backend '{spec.backend}' is not submitted: {why}", "created": False}, 200)
    pr = str(body["pr"]) if body.get("pr") not in (None, "") else None
    before = s.lifecycle.ledger.get(spec.name)
    record = s.lifecycle.submit(checked, commit=commit or None, pr=pr)
    job = s.backend_for(record.backend).get_job(record.job_name)
    created = before is None or before[0].job_name != record.job_name
    return json_response(
        {
            "run": record.run,
            "job_name": record.job_name,
            "status": record.status,
            "digest": record.digest,
            "portal_url": job.portal_url if job else None,
            "endpoint": record.endpoint,
            "created": created,
        },
        202 if created else 200,
    )


def get_run(req: func.HttpRequest) -> func.HttpResponse:
    """A run's record (its spec, policy, history, gate verdict, data URIs), or its report: for this repository's
    workflows only (its OIDC token), never for the function key alone."""
    authorized(req)
    name = req.route_params.get("name", "")
    found = services().lifecycle.ledger.get(name)
    if found is None:
        raise NotFoundError(f"no run named '{name}'", hint="the name is the spec's name: field")
    record = found[0]
    if req.params.get("format") == "markdown":
        if not record.report:
            raise NotFoundError(f"run '{name}' has no report yet", hint="a report is attached when the run goes live")
        from gitops.report.build import RunReport
        from gitops.report.render import render_markdown

        return func.HttpResponse(render_markdown(RunReport(**record.report)), mimetype="text/markdown")
    return json_response(record.model_dump(mode="json"))


def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    """What the scheduled report workflow needs to know which pull requests to comment on: each run's status, its
    pull request and the job its report is of (no specs, no secrets), in the environment where it trains (a later
    environment's state is read by its name, ``<run>.<environment>``). Unreadable records are named, not fatal.
    This repository's OIDC token, as every read of the ledger."""
    authorized(req)
    ledger = services().lifecycle.ledger
    runs = [
        {
            "run": r.run,
            "status": r.status,
            "pr": r.pr,
            "job_name": r.job_name,
            "report_job": (r.report or {}).get("job_name"),
            "updated_at": r.updated_at,
        }
        for r in ledger.list()
        if r.environment is None  # a run's pull request is about where it trains; a later environment's state is its own
    ]
    return json_response({"runs": runs, "unreadable": [why for _, why in ledger.damaged]})


def get_watch(req: func.HttpRequest) -> func.HttpResponse:
    """The watch timer's latest findings, for the workflow that keeps the one watch issue (GitHub OIDC: what the
    endpoints run is not for whoever holds the function key)."""
    from gitops.watch.findings import WATCH_DOCUMENT, WatchFinding, render_markdown

    authorized(req)
    s = services()
    document = s.lifecycle.ledger.load_document(WATCH_DOCUMENT)
    if document is None:
        raise NotFoundError("the watch has not run yet", hint="the watch timer records its findings (GITOPS_WATCH_SCHEDULE)")
    findings = [WatchFinding.from_dict(f) for f in document.get("findings", [])]
    return json_response({**document, "markdown": render_markdown(findings, str(document.get("at", "")))})


def _who(caller: Any) -> str:
    """Who decided, as a run's history says it: the GitHub actor and the workflow event that called."""
    return f"{caller.actor or 'someone'} via GitHub ({caller.event_name})"


def retry(req: func.HttpRequest) -> func.HttpResponse:
    caller = authorized(req, main_only=True)
    s = services()
    name = req.route_params.get("name", "")
    record = s.lifecycle.retry(name, who=_who(caller))
    return json_response({"run": record.run, "job_name": record.job_name, "attempt": record.attempt, "status": record.status}, 202)


def decide(req: func.HttpRequest, action: str) -> func.HttpResponse:
    """A person's decision on a run (``promote`` a held candidate, ``rollback``), from a workflow run on main: who
    and why go into the run's history. A run's state in a later environment is named ``<run>.<environment>``; taking
    a candidate over that environment's gate needs a job bound to its GitHub Environment (its reviewers), as a release
    does; a rollback there is a workflow run on main, as everywhere."""
    from gitops.ledger.model import split_key

    environment = split_key(req.route_params.get("name", ""))[1] if action == "promote" else None
    caller = authorized(req, main_only=environment is None, environment=environment)
    s = services()
    body = read_json(req, s.settings.max_body_bytes)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise RequestError("'reason' must say why, in 1 to 500 characters", hint="the workflow asks for it")
    name = req.route_params.get("name", "")
    who = _who(caller)
    lifecycle = s.lifecycle
    record = lifecycle.promote(name, who, reason.strip()) if action == "promote" else lifecycle.rollback(name, who, reason.strip())
    step = record.cursor.step if record.cursor else None
    return json_response({"run": record.run, "status": record.status, "step": step, "decided_by": who}, 202)


def list_promotions(req: func.HttpRequest) -> func.HttpResponse:
    """The promotions due now, for promote.yml to start a job bound to each target's GitHub Environment (its required
    reviewers approve it there). This repository's OIDC token, as every read of the ledger."""
    authorized(req)
    return json_response({"promotions": [d.to_dict() for d in services().lifecycle.due()]})


def release(req: func.HttpRequest) -> func.HttpResponse:
    """Let a due promotion into environment ``env``: only from a job bound to GitHub Environment ``env`` (GitHub puts
    the environment in such a job's token, and runs the job only once its reviewers approved it). The request names
    the version it was approved for (``job``): a version superseded meanwhile is refused, one released already is
    answered as it stands."""
    environment = req.route_params.get("env", "")
    caller = authorized(req, environment=environment)
    s = services()
    body = read_json(req, s.settings.max_body_bytes)
    job, reason = body.get("job"), body.get("reason", "")
    if not isinstance(job, str) or not job.strip() or len(job) > 200:
        raise RequestError("'job' must name the version approved (the job of the promotion listed as due)", hint="promote.yml sends it")
    if not isinstance(reason, str) or len(reason) > 500:
        raise RequestError("'reason' must be text of at most 500 characters")
    name = req.route_params.get("name", "")
    who = f"a reviewer of GitHub Environment {environment}" + (f" (run started by {caller.actor})" if caller.actor else "")
    via = f"GitHub workflow run {caller.run_id}" if caller.run_id else "GitHub"
    record = s.lifecycle.release(name, environment, by=who, reason=reason.strip(), via=via, job=job.strip())
    step = record.cursor.step if record.cursor else None
    body_out = {"run": record.run, "environment": record.environment, "status": record.status, "step": step, "endpoint": record.endpoint}
    return json_response({**body_out, "released_by": who}, 202)


@bp.function_name("validate")
@bp.route(route="validate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def validate_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("validate", validate)(req)


@bp.function_name("submit")
@bp.route(route="submit", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def submit_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("submit", submit)(req)


@bp.function_name("retry")
@bp.route(route="runs/{name}/retry", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def retry_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("retry", retry)(req)


@bp.function_name("promote")
@bp.route(route="runs/{name}/promote", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def promote_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("promote", lambda r: decide(r, "promote"))(req)


@bp.function_name("rollback")
@bp.route(route="runs/{name}/rollback", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def rollback_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("rollback", lambda r: decide(r, "rollback"))(req)


@bp.function_name("list_runs")
@bp.route(route="runs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_runs_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("list_runs", list_runs)(req)


@bp.function_name("get_watch")
@bp.route(route="watch", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_watch_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("get_watch", get_watch)(req)


@bp.function_name("get_run")
@bp.route(route="runs/{name}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_run_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("get_run", get_run)(req)


@bp.function_name("list_promotions")
@bp.route(route="promotions", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_promotions_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("list_promotions", list_promotions)(req)


@bp.function_name("release")
@bp.route(route="runs/{name}/release/{env}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def release_function(req: func.HttpRequest) -> func.HttpResponse:
    return handled("release", release)(req)
