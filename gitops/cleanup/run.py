"""Cleanup as the timer and ``gitops cleanup`` run it: gather facts, decide (policy.py), act, record.

A dry run makes exactly the same decisions and stops before acting. One endpoint's failure is logged
and the others carry on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitops.backends.base import Backend, DeploymentInfo, EndpointInfo, ServerlessInfo, ServesServerless, Usage
from gitops.cleanup.policy import DeploymentFacts, EndpointFacts, Rules, Verdict, decide
from gitops.errors import CorruptRecordError, GitopsError
from gitops.ledger.model import Ledger, RunRecord, environment_key, first_error, split_key, stored_spec, update, workspace_of
from gitops.ownership import held_by
from gitops.spec import naming
from gitops.spec.model import parse_duration
from gitops.spec.policy import Policy, WorkspaceRef

log = logging.getLogger("gitops.cleanup")


def _own_policy(record: RunRecord) -> Policy:
    return Policy.model_validate(record.policy)


def newest_policy(ledger: Ledger) -> Policy:
    """The repo policy the latest submitted run carried (the submit Function is sent the default branch's
    gitops.yaml each time): what the timers apply, with no copy of the file to keep in step. Without any run that
    carries one, the default policy (there is then nothing of ours to clean up but what the defaults say)."""
    carried = [r for r in ledger.list() if r.policy]
    if not carried:
        return Policy()
    newest = max(carried, key=lambda r: max((h.at for h in r.history if h.status == "submitted"), default=0.0))
    return _own_policy(newest)


def rules_from(policy: Policy) -> Rules:
    return Rules(
        idle_after=parse_duration(policy.defaults.idle_after),
        expire_after=parse_duration(policy.defaults.expire_after),
        stuck_grace=parse_duration(policy.cleanup.stuck_grace),
        prune_orphans=policy.cleanup.prune_orphans,
        max_deletions_per_run=policy.cleanup.max_deletions_per_run,
    )


def _facts(
    info: EndpointInfo,
    record: RunRecord | None,
    usage_known: bool,
    last_request_at: datetime | None,
    specs_on_main: set[str] | None,
    repo: str,
) -> EndpointFacts:
    run = info.tags.get(naming.TAG_RUN)
    lifecycle = stored_spec(record).lifecycle if record and record.spec else None
    defaults = _own_policy(record).defaults if record is not None and record.policy else None
    idle = (lifecycle.idle_after if lifecycle else None) or (defaults.idle_after if defaults else None)
    expire = (lifecycle.expire_after if lifecycle else None) or (defaults.expire_after if defaults else None)
    return EndpointFacts(
        name=info.name,
        tags=dict(info.tags),
        created_at=info.created_at,
        deployments=tuple(DeploymentFacts(d.name, int(info.traffic.get(d.name, 0)), d.created_at) for d in info.deployments),
        usage_known=usage_known,
        repo=repo,
        held=held_by(record, info),
        last_request_at=last_request_at,
        run=run,
        run_status=record.status if record else None,
        rollout_step=record.cursor.step if record and record.cursor else None,
        keep=bool(lifecycle and lifecycle.keep),
        idle_after=parse_duration(idle) if idle else None,  # the spec's, else the policy the run was submitted with
        expire_after=parse_duration(expire) if expire else None,
        spec_on_main=None if specs_on_main is None or run is None else run in specs_on_main,
        kept_deployment=record.previous_deployment if record and record.previous_kept_until else None,
        kept_until=datetime.fromtimestamp(record.previous_kept_until, UTC) if record and record.previous_kept_until else None,
    )


def gather(
    backend: Backend, ledger: Ledger, rules: Rules, specs_on_main: set[str] | None, repo: str, environment: str | None = None
) -> list[EndpointFacts]:
    """The facts of every endpoint of ``backend``'s workspace, beside the records of the runs' state in that workspace
    (``environment``: None for the first environment's; a later one's records are ``<run>.<environment>``): an
    endpoint is judged by the record of its own workspace, never by another environment's."""
    endpoints = backend.list_endpoints()
    records = {r.run: r for r in ledger.list() if r.environment == environment}
    unreadable = {run: why for run, env, why in _damaged(ledger) if env == environment}
    for why in unreadable.values():
        log.warning("cleanup: %s (its endpoint is left alone)", why)
    out = []
    for info, record, facts in _judged(endpoints, backend.usage, "usage", records, unreadable, rules, specs_on_main, repo):
        if record is not None and record.serving_kind == "serverless" and record.serves and info.name == record.endpoint:
            # A managed endpoint left serving its old model after the run changed kind: kept while keep_previous_for says
            kept = record.previous_serving_kind == "managed" and bool(record.previous_kept_until)
            facts = replace(facts, replaced_by=record.deployment, kept_deployment=facts.kept_deployment if kept else None)
        out.append(facts)
    if isinstance(backend, ServesServerless):
        out += _serverless_facts(backend, records, unreadable, rules, specs_on_main, repo)
    return out


def _judged(
    endpoints: list[EndpointInfo],
    usage_of: Callable[[list[str], timedelta], dict[str, Usage]],
    what: str,
    records: dict[str, RunRecord],
    unreadable: dict[str, str],
    rules: Rules,
    specs_on_main: set[str] | None,
    repo: str,
) -> list[tuple[EndpointInfo, RunRecord | None, EndpointFacts]]:
    """Each endpoint with its run's record and its facts: usage asked only of endpoints that could be ours (the rule
    itself needs the record), unknown when it cannot be read; a record today's schema refuses leaves it alone."""
    managed = [e.name for e in endpoints if e.tags.get(naming.MANAGED_BY_TAG) == naming.MANAGED_BY_VALUE]
    try:
        usage = usage_of(managed, rules.idle_after)
    except GitopsError as exc:  # no figures: every endpoint counts as active
        log.warning("%s figures unavailable: %s", what, exc.headline)
        usage = {}
    out = []
    for info in endpoints:
        u = usage.get(info.name)
        record = records.get(info.tags.get(naming.TAG_RUN, ""))
        try:
            facts = _facts(info, record, bool(u and u.known), u.last_request_at if u else None, specs_on_main, repo)
        except (CorruptRecordError, ValueError, TypeError) as exc:  # stored by an older version; today's schema refuses it
            why = exc.headline if isinstance(exc, GitopsError) else f"run {record.run if record else '?'}: {first_error(exc)}"
            log.warning("cleanup: %s (endpoint %s is left alone)", why, info.name)
            facts = replace(_facts(info, None, False, None, specs_on_main, repo), record_unreadable=why)
        if facts.run in unreadable:
            facts = replace(facts, record_unreadable=unreadable[facts.run])
        out.append((info, record, facts))
    return out


def _serverless_facts(
    backend: ServesServerless,
    records: dict[str, RunRecord],
    unreadable: dict[str, str],
    rules: Rules,
    specs_on_main: set[str] | None,
    repo: str,
) -> list[EndpointFacts]:
    """The facts of every serverless endpoint: as an endpoint with one deployment (its model), taking the traffic when
    its run's record serves from it; one its run no longer serves from is ``replaced_by`` the one that does."""

    def serving_here(found: ServerlessInfo) -> bool:
        record = records.get(found.tags.get(naming.TAG_RUN, ""))
        return record is not None and record.serving_kind == "serverless" and record.serving_endpoint == found.name

    endpoints = [_as_endpoint(found, serving_here(found)) for found in backend.list_serverless()]
    out = []
    for info, record, facts in _judged(
        endpoints, backend.serverless_usage, "serverless usage", records, unreadable, rules, specs_on_main, repo
    ):
        here = info.traffic.get(SERVERLESS_MODEL, 0) > 0
        kept_here = record is not None and record.previous_serving_kind == "serverless" and record.previous_deployment == info.name
        out.append(
            replace(
                facts,
                serverless=True,
                replaced_by=record.serving_endpoint if record is not None and record.serves and not here else None,
                kept_deployment=info.name if kept_here and record and record.previous_kept_until else None,
            )
        )
    return out


def _as_endpoint(found: ServerlessInfo, serving: bool) -> EndpointInfo:
    """A serverless endpoint as cleanup judges endpoints: one deployment (its model), with the traffic if it serves."""
    model = DeploymentInfo(SERVERLESS_MODEL, found.model_id, created_at=found.created_at)
    return EndpointInfo(
        found.name, found.scoring_uri, dict(found.tags), {SERVERLESS_MODEL: 100 if serving else 0}, (model,), created_at=found.created_at
    )


SERVERLESS_MODEL = "model"  # how cleanup names a serverless endpoint's one deployment


def _damaged(ledger: Ledger) -> list[tuple[str, str | None, str]]:
    """(run, environment, why) of each record the last ``list`` could not read."""
    return [(*split_key(Path(where).stem), why) for where, why in ledger.damaged]


def later_environments(records: list[RunRecord]) -> list[tuple[str, str, WorkspaceRef]]:
    """(backend, environment, workspace) of every later environment some run has state in, as each run's stored
    policy names it: where cleanup and the watch look besides the workspace set up here. Nothing else is looked at."""
    seen: dict[tuple[str, str], tuple[str, str, WorkspaceRef]] = {}
    for r in records:
        if r.environment is None or (r.backend, r.environment) in seen:
            continue
        try:
            seen[(r.backend, r.environment)] = (r.backend, r.environment, workspace_of(r))
        except GitopsError as exc:
            log.warning("%s (its environment is not looked at)", exc.headline)
    return list(seen.values())


def run_cleanup(
    backend: Backend,
    ledger: Ledger,
    policy: Policy | None = None,
    specs_on_main: set[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    *,
    repo: str,
    environment: str | None = None,
) -> list[Verdict]:
    """Decide and act on this repository's (``repo``) endpoints in ``backend``'s workspace: the first environment's
    (``environment`` None), or a later one's. ``policy``: the repo's (the CLI reads gitops.yaml); None: the one the
    latest run carried."""
    now = now or datetime.now(UTC)
    rules = rules_from(policy if policy is not None else newest_policy(ledger))
    verdicts = decide(gather(backend, ledger, rules, specs_on_main, repo, environment), rules, now)
    if dry_run:
        return verdicts
    done = []
    for verdict in verdicts:
        try:
            if verdict.action == "delete" and verdict.serverless and isinstance(backend, ServesServerless):
                backend.delete_serverless(verdict.endpoint)  # a marketplace subscription is never deleted here
            elif verdict.action == "delete":
                backend.delete_endpoint(verdict.endpoint)
            elif verdict.action == "delete_deployments":
                for deployment in verdict.deployments:
                    backend.delete_deployment(verdict.endpoint, deployment)
        except GitopsError as exc:
            log.warning("cleanup of %s failed: %s", verdict.endpoint, exc.headline)
            verdict = Verdict(verdict.endpoint, "skip", (*verdict.reasons, f"failed: {exc.headline}; next run retries"), verdict.run)
        try:
            _record(ledger, verdict, environment)
        except GitopsError as exc:  # the decision stands; only its note on the run is lost
            log.warning("cleanup of %s: decision not recorded: %s", verdict.endpoint, exc.headline)
        done.append(verdict)
    return done


def cleanup_everywhere(
    backend_name: str,
    backend_for: Callable[[str], Backend],
    backend_in: Callable[[str, WorkspaceRef], Backend],
    ledger: Ledger,
    policy: Policy | None = None,
    specs_on_main: set[str] | None = None,
    dry_run: bool = False,
    *,
    repo: str,
) -> list[Verdict]:
    """``run_cleanup`` in the workspace set up here, then in each later environment's workspace where some run of
    ``backend_name`` has state (as its stored policy names it): each judged by the records of its own workspace."""
    verdicts = run_cleanup(backend_for(backend_name), ledger, policy, specs_on_main, dry_run, repo=repo)
    for kind, environment, workspace in later_environments(ledger.list()):
        if kind == backend_name:
            verdicts += run_cleanup(backend_in(kind, workspace), ledger, policy, specs_on_main, dry_run, repo=repo, environment=environment)
    return verdicts


def _record(ledger: Ledger, verdict: Verdict, environment: str | None = None) -> None:
    """The decision goes into the record of the run's state in that workspace; a deleted endpoint retires it there."""
    if verdict.run is None:
        return
    key = environment_key(verdict.run, environment)
    if ledger.get(key) is None:
        return
    entry = {"at": time.time(), "action": verdict.action, "endpoint": verdict.endpoint, "reasons": list(verdict.reasons)}

    def change(r: RunRecord) -> RunRecord | None:
        # another endpoint tagged with this run's name (another repository's) is no business of this record's
        if verdict.endpoint not in {
            r.endpoint,
            r.serving_endpoint,
            r.previous_deployment if r.previous_serving_kind == "serverless" else None,
        }:
            return None
        updated = r.model_copy(update={"last_cleanup": entry})
        if verdict.action == "delete" and verdict.endpoint == (r.serving_endpoint or r.endpoint):  # what served is gone
            return updated.retired("; ".join(verdict.reasons))
        return updated

    try:
        update(ledger, key, change)
    except GitopsError as exc:
        log.warning("could not record the cleanup of %s: %s", verdict.endpoint, exc.headline)
