"""Job events (Event Grid, CloudEvents, a worker's own file): check that an event is about a run of ours, and put a
"check the job" cursor on it, once. No backend call and no waiting: the event is answered in milliseconds.
"""

from __future__ import annotations

import logging
from typing import Any

from gitops.errors import ConflictError
from gitops.events import EventFormatError, JobEvent, NotARunEvent, parse_each
from gitops.ledger.model import RunRecord, update
from gitops.ledger.transitions import AWAITING_JOB
from gitops.lifecycle.moves import with_cursor
from gitops.lifecycle.parts import Action, Decision, Parts
from gitops.ownership import same_repository
from gitops.spec import naming
from gitops.spec.capabilities import JOB_RUN_TYPES

log = logging.getLogger("gitops.lifecycle")


def on_job_event(lc: Parts, body: Any) -> list[Decision]:
    """Record what an event says and schedule a look at the job: no backend call, no waiting."""
    try:
        events = parse_each(body)
    except EventFormatError as exc:
        log.warning("ignored a malformed body: %s", exc)
        return [Decision("", None, Action.IGNORED, f"malformed: {exc}")]
    decisions = []
    for event in events:
        if isinstance(event, EventFormatError):  # this one is unreadable or not about a run; the others go on
            reason = str(event) if isinstance(event, NotARunEvent) else f"malformed: {event}"
            log.info("ignored an event: %s", reason)
            decisions.append(Decision("", None, Action.IGNORED, reason))
            continue
        decision = _one_event(lc, event)
        if event.id:
            lc.ledger.remember_event(
                event.id,
                {
                    "type": event.type,
                    "run": decision.run,
                    "job": event.run_id,
                    "action": decision.action,
                    "reason": decision.reason,
                    "at": lc.clock(),
                },
            )
        decisions.append(decision)
    return decisions


def _one_event(lc: Parts, event: JobEvent) -> Decision:
    run = event.tags.get(naming.TAG_RUN)
    if not run:
        return _ignore(event, None, "not a run of this repository (no gitops_run tag)")
    owner = event.tags.get(naming.TAG_REPO)
    if owner is not None and not same_repository(owner, lc.repo):
        return _ignore(event, run, f"a run of repository {owner}, not this one")
    if lc.topics and (event.topic or "").lower() not in lc.topics:
        return _ignore(event, run, f"topic {event.topic or '(none)'} is not a workspace of ours")
    current = lc.ledger.get(run)
    if current is None:
        return _ignore(event, run, f"not a run of this repository (no run named '{run}' in the ledger)")
    record = current[0]
    # The job itself, or the job that prepares its data. A pipeline's events say azureml.PipelineRun and its steps'
    # something else; a fine-tuning job's events carry a run type no source documents, so for a run trained by one,
    # the job is known by its name (and the job that prepares its data by the tag that names the job it prepares for).
    preparing = event.tags.get(naming.TAG_PREPARES) == record.job_name
    standalone = (record.spec.get("finetune") or {}).get("kind") in ("job", "serverless")
    own = event.run_id == record.job_name or preparing
    if event.run_type and event.run_type not in JOB_RUN_TYPES and not (standalone and own):  # a step inside a job
        return _ignore(event, run, f"run type {event.run_type} is a child step")
    if record.queued is not None and record.queued.job_name == event.run_id:
        return Decision(event.id, run, Action.RECORDED, "the queued version's job: checked when the rollout in progress ends")
    if not own:
        return _ignore(event, run, f"job {event.run_id} is not the run's current job {record.job_name}")
    if event.id and event.id in record.processed_events:
        return Decision(event.id, run, Action.DUPLICATE, "event already processed")
    if event.outcome is None:
        return _ignore(event, run, f"status {event.run_status} needs no action")
    return start(lc, run, f"job event: {event.outcome}", event.id)


def _ignore(event: JobEvent, run: str | None, reason: str) -> Decision:
    log.info("ignored event %s (%s): %s", event.id, event.short_type, reason)
    return Decision(event.id, run, Action.IGNORED, reason)


def start(lc: Parts, run: str, why: str, event_id: str = "") -> Decision:
    """Put a 'check the job' cursor on a run that waits for its job, once, and schedule it."""
    now = lc.clock()

    def begin(record: RunRecord) -> RunRecord | None:
        if record.cursor is not None or record.status not in AWAITING_JOB:
            return None  # a rollout already runs, or the run is past its job
        events = [*record.processed_events, event_id] if event_id else record.processed_events
        return with_cursor(lc, record, now).model_copy(update={"processed_events": events})

    try:
        started = update(lc.ledger, run, begin)
    except ConflictError:
        started = None
    if started is None:
        return Decision(event_id, run, Action.DUPLICATE, "already handled by another delivery")
    lc.schedule(started, now)
    return Decision(event_id, run, Action.SCHEDULED, f"{why}: the job is checked next")
