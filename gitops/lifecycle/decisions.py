"""People's decisions on a run: promote a held candidate, roll back (a held candidate, a rollout in progress, or
a live run to the version before it), and give up on a step whose message kept failing.

Each decision is one compare-and-swap on the run's record; asked again after it was taken, it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from gitops.backends.base import Provisioning
from gitops.errors import ConflictError, NotFoundError
from gitops.ledger.model import Cursor, RunRecord, update
from gitops.ledger.transitions import AWAITING_JOB, Asker, RunStatus
from gitops.lifecycle import steps
from gitops.lifecycle.moves import ENDED, entering, rolling_back, timeout, with_cursor
from gitops.lifecycle.parts import Parts
from gitops.lifecycle.serving import serverless_backend

# The digests of a run a person rolled back to an older job: no spec has them, so any version merged next acts.
ROLLED_BACK = "rollback"  # eight characters: a deployment takes the digest's first eight (v1-rollback, not v1-rolled-b)


def promote(lc: Parts, run: str, who: str, reason: str = "") -> RunRecord:
    """Override a held gate: the candidate takes the traffic (through the rollout's own last steps). Asked again
    after it was taken, the record is returned as it stands."""
    now = lc.clock()

    def decide(record: RunRecord) -> RunRecord | None:
        c = record.cursor
        if c is not None and c.decided_by and c.plan == "rollout":
            return None  # already promoted
        if c is None or c.plan != "hold":
            raise ConflictError(
                f"run '{run}' is {record.status}, not held: only a candidate held by the gate is promoted",
                hint="gitops status shows the gate's verdict; a passing candidate is promoted by itself",
            )
        _, step = steps.find("rollout", "ramp")  # gradual traffic still applies: a person overrides the gate, not the bounds
        moved = entering(c, "rollout", step.name, now, now + timeout(record, step.phase), decided_by=who)
        note = f"promoted by {who}" + (f": {reason}" if reason else "") + " (the gate had failed)"
        return record.moved(RunStatus.DEPLOYING, note, now, by=Asker.PERSON).model_copy(update={"cursor": moved})

    return _decided(lc, run, decide, now)


def rollback(lc: Parts, run: str, who: str, reason: str = "") -> RunRecord:
    """A person's rollback: a held candidate is removed (the run is rejected); a rollout in progress stops and
    its candidate is removed; a live run goes back to the deployment before it when that one still exists."""
    now = lc.clock()
    why = f"rolled back by {who}" + (f": {reason}" if reason else "")

    def decide(record: RunRecord) -> RunRecord | None:
        c = record.cursor
        if c is not None and c.plan == "rollback":
            return None  # a rollback already runs
        if c is not None and record.status in AWAITING_JOB:  # the rollout's first step: no candidate exists yet
            raise ConflictError(
                f"run '{run}' is {record.status}: its job is being checked and nothing is deployed yet to roll back",
                hint="gitops status shows when the rollout starts; roll back then, or merge a new version",
            )
        if c is not None and c.plan in ("hold", "rollout"):
            return rolling_back(
                record, c, why, now, by=Asker.PERSON, decided_by=who, ending=RunStatus.REJECTED if c.plan == "hold" else None
            )
        if record.status == "live" and record.endpoint:
            if _previous_still_serves(lc, record):
                # The replaced deployment is still there (deploy.keep_previous_for): traffic goes back to it.
                serving = Cursor(
                    step=steps.ROLLBACK[0].name,
                    entered_at=now,
                    not_before=now,
                    started_at=now,
                    deadline_at=now,
                    endpoint=record.endpoint,
                    deployment=record.deployment,
                    previous=record.previous_deployment,
                    serverless=record.serving_kind == "serverless",
                    previous_serverless=record.previous_serving_kind == "serverless",
                )
                return rolling_back(record, serving, why, now, by=Asker.PERSON, decided_by=who)
            if record.previous_serving_job:
                # Gone: the model the version before trained is deployed again, through the rollout's own steps
                # (its registered version is found by its job; a person decided, so the gate does not apply).
                # The digests go too: the same spec merged again is the version rolled back from, and its job
                # exists under its deterministic name, so it is deployed again without a second training.
                older = record.model_copy(
                    update={
                        "job_name": record.previous_serving_job,
                        "previous_job": record.job_name,
                        "smoke": None,
                        "digest": ROLLED_BACK,
                        "training_digest": ROLLED_BACK,
                        "deployment_digest": ROLLED_BACK,
                    }
                )
                redeploy = with_cursor(
                    lc,
                    older.moved(
                        RunStatus.COMPLETED, why + f": job {record.previous_serving_job}'s model is deployed again", now, by=Asker.PERSON
                    ),
                    now,
                )
                assert redeploy.cursor is not None
                return redeploy.model_copy(update={"cursor": redeploy.cursor.model_copy(update={"decided_by": who})})
        raise ConflictError(
            f"run '{run}' is {record.status}: there is nothing to roll back", hint="a held, rolling-out or live run is rolled back"
        )

    return _decided(lc, run, decide, now)


def _previous_still_serves(lc: Parts, record: RunRecord) -> bool:
    """Whether what served before the live version is still there and ready (``deploy.keep_previous_for``): a
    deployment of the endpoint, or a serverless endpoint of its own; not one being deleted."""
    previous = record.previous_deployment
    if not previous or not record.endpoint:
        return False
    backend = lc.backend_of(record)
    if record.previous_serving_kind == "serverless":
        found = serverless_backend(backend).get_serverless(previous)
        return found is not None and found.serving
    info = backend.get_endpoint(record.endpoint)
    kept = info.deployment(previous) if info is not None else None
    return kept is not None and kept.state is Provisioning.SUCCEEDED


def _decided(lc: Parts, run: str, decide: Callable[[RunRecord], RunRecord | None], now: float) -> RunRecord:
    """Record a person's decision (``decide`` returns None when it was already taken) and schedule what follows."""
    decided = update(lc.ledger, run, decide)
    got = lc.ledger.get(run)
    record = decided or (got[0] if got else None)
    if record is None:
        raise NotFoundError(f"no run named '{run}' in the ledger")
    if decided is not None:
        lc.schedule(decided, now)
    return record


def give_up(lc: Parts, run: str, reason: str) -> None:
    """A step message that kept failing (the host moves it to the poison queue): record why on the run and
    stop there. Nothing is deleted: the endpoint stays as the last step left it, for a person to look at."""
    now = lc.clock()

    def stop(record: RunRecord) -> RunRecord | None:
        if record.cursor is None:
            return None
        c = record.cursor
        note = (
            f"step {c.step} of the {c.plan} kept failing and was given up: {reason}; endpoint {c.endpoint} left as it is (nothing deleted)"
        )
        return record.moved(RunStatus.FAILED, note, now, by=Asker.HOST).model_copy(update={**ENDED, "error": note})

    update(lc.ledger, run, stop)
