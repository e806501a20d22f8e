"""Reconcile, the safety net (the timer, or ``gitops reconcile``): start runs whose job ended without an event
reaching us, take up cursors whose message is overdue, start again a server that died, and continue rollouts
recorded before rollouts had cursors. A record that cannot be read, or whose run fails here, is named and skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gitops.backends.base import Feature, JobState, RunsServers, ServesServerless
from gitops.errors import GitopsError
from gitops.ledger.model import PromotionState, RecordSummary, RunRecord, split_key, update
from gitops.ledger.transitions import AWAITING_JOB, ROLLING, Asker, RunStatus
from gitops.lifecycle import promotions, releases
from gitops.lifecycle.driver import drive
from gitops.lifecycle.job_events import start
from gitops.lifecycle.moves import with_cursor
from gitops.lifecycle.parts import Action, Decision, Parts
from gitops.spec.policy import Policy

log = logging.getLogger("gitops.lifecycle")

SKIPPED = Action.SKIPPED  # reconcile's decision for a record it could not read or act on: named, and the rest went on


def reconcile(lc: Parts, only: str | None = None) -> list[Decision]:
    """The safety net (timer or CLI): start runs whose job ended without an event reaching us, and take up
    cursors whose message is overdue. A record that cannot be read, or whose run fails here, is a ``skipped``
    decision naming it and why, and the others carry on."""
    decisions = []
    now = lc.clock()
    summaries = lc.ledger.summaries()
    for where, why in lc.ledger.damaged:
        log.warning("reconcile: %s (skipped)", why)
        run = Path(where).stem
        if not only or run == only:
            decisions.append(Decision("", run, SKIPPED, why))
    for summary in summaries:
        run = split_key(summary.key)[0]
        if only and run != only and summary.key != only:  # a run's name takes in its later environments
            continue
        if not needs_a_look(summary, now):  # nothing to look at on this tick: the record is not read
            continue
        try:
            found = lc.ledger.get(summary.key)
        except GitopsError as exc:  # an unreadable record is named, and the others carry on
            log.warning("reconcile: %s (skipped)", exc.headline)
            decisions.append(Decision("", summary.key, SKIPPED, exc.headline))
            continue
        if found is None:  # deleted since the listing
            continue
        record = found[0]
        try:
            decision = _reconcile_one(lc, record)
        except GitopsError as exc:
            log.warning("reconcile %s: %s (skipped)", record.key, exc.headline)
            decision = Decision("", record.key, SKIPPED, exc.headline)
        except Exception as exc:  # a bug or a record this version misreads: never the end of the other runs
            log.exception("reconcile %s raised", record.key)
            decision = Decision("", record.key, SKIPPED, f"{type(exc).__name__}: {exc}"[:300])
        if decision is not None:
            decisions.append(decision)
        due = _promotion(lc, record)
        if due is not None:
            decisions.append(due)
    return decisions


def needs_a_look(summary: RecordSummary, now: float) -> bool:
    """Whether a tick must read this record: the conditions ``_reconcile_one`` and ``_promotion`` act on, asked of the
    summary the ledger keeps beside it. A record with no summary is always read; so is one whose backend is unknown."""
    from gitops.spec.capabilities import KINDS

    if not summary.known:
        return True
    kind = KINDS.get(summary.backend)
    if summary.serves and (kind is None or kind.supports(Feature.SERVER_RESTART)):  # its server may have died
        return True
    if summary.not_before is not None:  # a rollout: due when its next look is, unless a process holds its lease
        return summary.not_before <= now and (summary.claimed_until or 0) <= now
    status = summary.status
    return status in ROLLING or status in AWAITING_JOB or (status == "live" and summary.staged)


def _promotion(lc: Parts, record: RunRecord) -> Decision | None:
    """A live run whose promotion to the next environment became due on this pass (``promotions.propose``); where
    that environment asks for no approval (``promotion.approval: false``), released at once."""
    if record.status != "live" or not (record.policy or {}).get("environments"):
        return None
    known = {(p.to, p.job_name) for p in record.promotions if p.state is not PromotionState.SHARING}
    try:
        promotion = promotions.propose(lc, record.key)
        if promotion is None or (promotion.to, promotion.job_name) in known:
            return None
        policy = Policy.model_validate(record.policy)
        if not policy.environment(promotion.to).promotion.approval:
            releases.release(lc, record.run, promotion.to, by="the policy (promotion.approval: false)", job=promotion.job_name)
            why = f"released into {promotion.to}: {promotion.model} v{promotion.version} (no approval asked)"
            return Decision(record.job_name, record.key, Action.RELEASED, why)
    except GitopsError as exc:
        log.warning("reconcile %s: its promotion: %s (skipped)", record.key, exc.headline)
        return Decision(record.job_name, record.key, SKIPPED, f"promotion: {exc.headline}")
    why = f"promotion to {promotion.to} due: {promotion.model} v{promotion.version} ({promotion.digest[:19]}) in the registry"
    return Decision(record.job_name, record.key, Action.PROMOTION_DUE, why)


def _reconcile_one(lc: Parts, record: RunRecord) -> Decision | None:
    now = lc.clock()
    if record.serves:
        restarted = _restart_if_down(lc, record)
        if restarted is not None:
            return restarted
    if record.cursor is None and record.status in ROLLING:
        return _adopt_legacy(lc, record, now)
    if record.cursor is not None:
        claimed = record.claim is not None and (record.claimed_until or 0) > now
        if claimed or record.cursor.not_before > now:
            return None
        return _nudge(lc, record, now, f"step {record.cursor.step} was overdue")
    if record.status not in AWAITING_JOB:
        return None
    job = lc.backend_for(record.backend).get_job(record.job_name)
    if job is not None and job.progress.get("next") == "submit":  # its data is prepared: the job that reads it is next
        decision = start(lc, record.key, "the data is prepared (found by reconcile)", f"reconcile:{record.job_name}:prepared")
        return drive(lc, record.key) if decision.action == Action.SCHEDULED and lc.queue is None else decision
    if job is None or not job.state.terminal:
        if job is not None and job.state is JobState.RUNNING and record.status == "submitted":
            update(
                lc.ledger,
                record.key,
                lambda r: r.moved(RunStatus.RUNNING, "", now, by=Asker.RECONCILE) if r.status == "submitted" else None,
            )
        return None
    decision = start(lc, record.key, f"job {job.state.value} (found by reconcile)", f"reconcile:{record.job_name}")
    if decision.action == Action.SCHEDULED and lc.queue is None:  # one reconcile takes the run as far as it goes
        return drive(lc, record.key)
    return decision


def _restart_if_down(lc: Parts, record: RunRecord) -> Decision | None:
    """A run whose serving deployment's server died (a backend that runs its own servers) is started again; one a
    person stopped (``RunRecord.stopped_at``) stays down."""
    backend = lc.backend_of(record)
    if Feature.SERVER_RESTART in backend.unsupported or not record.endpoint or not record.deployment:
        return None
    if record.stopped_at is not None:  # a person stopped it: down on purpose, not dead
        return None
    if record.serving_kind == "serverless":
        found = backend.get_serverless(record.deployment) if isinstance(backend, ServesServerless) else None
        if found is None or found.healthy or not found.serving or not isinstance(backend, RunsServers):
            return None
        backend.start_server(found.name)
        log.warning("run %s: serverless endpoint %s was down; started again", record.key, found.name)
        return Decision("", record.key, Action.RESTARTED, f"serverless endpoint {found.name} was down; started again")
    info = backend.get_endpoint(record.endpoint)
    serving = info.deployment(record.deployment) if info else None
    if serving is None or serving.healthy:
        return None
    backend.begin_endpoint(record.endpoint, {})
    log.warning("run %s: endpoint %s was down; started again", record.key, record.endpoint)
    return Decision("", record.key, Action.RESTARTED, f"endpoint {record.endpoint} was down; started again")


def _nudge(lc: Parts, record: RunRecord, now: float, why: str) -> Decision:
    if lc.queue is None:
        return drive(lc, record.key)
    lc.schedule(
        record.model_copy(update={"cursor": record.cursor.model_copy(update={"not_before": now})}) if record.cursor else record, now
    )
    return Decision("", record.key, Action.SCHEDULED, why)


def _adopt_legacy(lc: Parts, record: RunRecord, now: float) -> Decision | None:
    """A record written before rollouts had cursors ("deploying" with a one-hour claim): once that claim has
    run out, continue it from registration (every step is idempotent: the same job registers the same version,
    a deployment that exists is reused)."""
    if (record.claimed_until or 0) > now:
        return None

    def adopt(r: RunRecord) -> RunRecord | None:
        if r.cursor is not None or r.status not in ROLLING:
            return None
        return with_cursor(lc, r.moved(RunStatus.DEPLOYING, "continued by the step machine", now, by=Asker.RECONCILE), now, step="register")

    adopted = update(lc.ledger, record.key, adopt)
    return _nudge(lc, adopted, now, "a rollout from an older version continues") if adopted is not None else None
