"""How a run's cursor moves between the plans (``gitops.lifecycle.steps.PLANS``): onto the rollout, to the hold, to
the rollback, and off at the end; each move records the status it means (``RunRecord.moved``).

Every concern that moves a run (a new version, a person's decision, a job event, the driver, reconcile) moves it
with these functions, so a plan's first step, its deadline and the status it means are decided in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from gitops.ledger.model import Cursor, HistoryEntry, RunRecord, stored_spec
from gitops.ledger.transitions import AWAITING_JOB, Asker, RunStatus
from gitops.lifecycle import steps
from gitops.lifecycle.parts import Parts
from gitops.spec import naming
from gitops.spec.policy import Phase

# Record fields that let the run go: the claim released; with the cursor too, the rollout over.
RELEASED: dict[str, Any] = {"claim": None, "claimed_until": None}
ENDED: dict[str, Any] = {**RELEASED, "cursor": None}

log = logging.getLogger("gitops.lifecycle")


def timeout(record: RunRecord, phase: Phase) -> float:
    """Seconds the run gives a phase of its plans (what its version set; records from before the gate: defaults)."""
    return record.timeouts.of(phase)


def entering(cursor: Cursor, plan: str, step: str, now: float, deadline: float, **more: Any) -> Cursor:
    """The cursor moved to the start of ``step`` of ``plan``: a fresh attempt count, due now, with its deadline."""
    return cursor.model_copy(
        update={"plan": plan, "step": step, "entered_at": now, "attempt": 0, "not_before": now, "deadline_at": deadline, "last": "", **more}
    )


def with_cursor(lc: Parts, record: RunRecord, now: float, step: str = "check_job") -> RunRecord:
    """The run put on the rollout at ``step`` (checking its job, or registering its model). A later environment's
    record has no job of its own to check: its rollout begins by receiving the released model."""
    if record.environment is not None and step == "check_job":
        step = "register"
    endpoint = record.endpoint
    if endpoint is None and record.spec:  # records written at submit always name it; older ones may not
        endpoint = naming.endpoint_name(stored_spec(record), lc.name_salt)
    _, first = steps.find("rollout", step)
    cursor = Cursor(
        step=step,
        entered_at=now,
        not_before=now,
        deadline_at=now + timeout(record, first.phase),
        started_at=now,
        endpoint=endpoint,
        serverless=(record.spec.get("deploy") or {}).get("kind") == "serverless",  # what this version is served on
    )
    # A rollout starts the endpoint's server: a stop a person made before it is over.
    return record.model_copy(update={"cursor": cursor, "endpoint": endpoint, "updated_at": now, "rollout_steps": [], "stopped_at": None})


def next_step(record: RunRecord, cursor: Cursor, note: str, now: float) -> RunRecord:
    """A step is done: the run enters its plan's next step, or completes the plan."""
    index, step = steps.find(cursor.plan, cursor.step)
    plan = steps.PLANS[cursor.plan]
    entry = [HistoryEntry(at=now, status=record.status, note=note)] if note else []  # a step with nothing to say says nothing
    noted = record.model_copy(update={"history": [*record.history, *entry]})
    if index + 1 == len(plan):
        return complete(noted, cursor, now)
    following = plan[index + 1]
    deadline = cursor.deadline_at if following.phase == step.phase else now + timeout(record, following.phase)
    moved = entering(cursor, cursor.plan, following.name, now, deadline)
    status = steps.RUNNING_STATUS[cursor.plan]
    if noted.status != status:
        noted = noted.moved(status, f"{cursor.plan} starts", now, by=Asker.STEP)
    return noted.model_copy(update={"cursor": moved})


def held(record: RunRecord, cursor: Cursor, reason: str, now: float) -> RunRecord:
    """The candidate failed the gate: it stays at 0%, the serving deployment keeps its traffic, and the run waits
    for a person's decision until its hold runs out (then the candidate is removed and the run is rejected)."""
    hold = entering(cursor, "hold", steps.HOLD[0].name, now, now + timeout(record, Phase.HOLD), reason=reason)
    log.warning("run %s is held: %s", record.key, reason)
    return record.moved(RunStatus.HELD, reason, now, by=Asker.STEP).model_copy(update={"cursor": hold, "error": None})


def failed(record: RunRecord, cursor: Cursor, reason: str, now: float) -> RunRecord:
    """A rollout step failed: roll back. A rollback step failed: stop, and say what was left where. A hold that
    ran out: the candidate is removed and the run is rejected."""
    if record.status in AWAITING_JOB:  # checking the job failed: nothing was deployed, so nothing rolls back
        log.warning("run %s failed: %s", record.key, reason)
        return record.moved(RunStatus.FAILED, reason, now, by=Asker.STEP).model_copy(update={**ENDED, "error": reason})
    if cursor.plan == "hold":
        hours = timeout(record, Phase.HOLD) / 3600
        reason = f"held for {hours:g} h without a decision: the candidate is removed ({cursor.reason or 'gate failed'})"
        cursor = cursor.model_copy(update={"ending": RunStatus.REJECTED})
    if cursor.plan == "rollback":
        note = f"rollback did not finish: {reason}; check endpoint {cursor.endpoint} (gitops status, reconcile)"
        return record.moved(RunStatus.FAILED, note, now, by=Asker.STEP).model_copy(update={**ENDED, "error": f"{cursor.reason}; {note}"})
    log.warning("run %s rolls back: %s", record.key, reason)
    return rolling_back(record, cursor, reason, now, by=Asker.STEP).model_copy(update={"error": reason})


def rolling_back(record: RunRecord, cursor: Cursor, reason: str, now: float, *, by: Asker, **more: Any) -> RunRecord:
    """The run on the rollback plan's first step: the previous deployment gets its traffic back, the candidate goes
    (``by``: the step machine after a failure, a person, or a newer version superseding a held candidate)."""
    first = steps.ROLLBACK[0]
    back = entering(cursor, "rollback", first.name, now, now + timeout(record, first.phase), reason=reason, **more)
    return record.moved(RunStatus.ROLLING_BACK, reason, now, by=by).model_copy(update={"cursor": back})


def complete(record: RunRecord, cursor: Cursor, now: float) -> RunRecord:
    """The plan's last step is done: a rollout makes the candidate serve; a rollback ends as its cursor says."""
    if cursor.plan == "rollout":
        takes = f"takes 100% on {cursor.endpoint}"
        note = f"{cursor.deployment} " + ("serves (a serverless endpoint)" if cursor.serverless else takes)
        return record.moved(steps.FINAL_STATUS["rollout"], note, now, by=Asker.STEP).model_copy(
            update={
                **ENDED,
                "endpoint": cursor.endpoint,
                "deployment": cursor.deployment,
                "previous_deployment": cursor.previous,
                "serving_kind": "serverless" if cursor.serverless else "managed",
                "previous_serving_kind": "serverless" if cursor.previous_serverless else "managed",
                "scoring_uri": cursor.scoring_uri or record.scoring_uri,
                "previous_scoring_uri": record.scoring_uri if cursor.previous else None,
                "error": None,
                "serving_job": record.job_name,
                "serving_model_version": cursor.model_version or record.model_version,
                "previous_serving_job": record.serving_job if record.serving_job != record.job_name else record.previous_serving_job,
            }
        )
    back: dict[str, Any] = {"serving_kind": "serverless" if cursor.previous_serverless else "managed"} if cursor.previous else {}
    if cursor.previous and record.deployment == cursor.deployment:  # a live version rolled back: its predecessor answers
        back["scoring_uri"] = record.previous_scoring_uri
    return record.moved(cursor.ending or steps.FINAL_STATUS["rollback"], cursor.reason or "", now, by=Asker.STEP).model_copy(
        update={**ENDED, "endpoint": cursor.endpoint, "deployment": cursor.previous, "error": cursor.reason, **back}
    )
