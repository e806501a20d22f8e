"""The driver: takes a run's due steps (``gitops.lifecycle.steps``) under a short compare-and-swap claim until one
must wait or this invocation's budget is spent, records each outcome, and schedules the next look.

A duplicate message finds the claim held; a process killed between two steps leaves a cursor that the next message
(or the reconcile timer) takes up once the claim's lease has run out. ``drive`` drives a run in this process where no
queue takes the rest (the CLI, reconcile without a queue, and tests with a virtual clock).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable

from gitops.errors import ConflictError, GitopsError, NotFoundError, TransientBackendError, TransitionError
from gitops.ledger.model import Cursor, RunRecord, update, with_fields
from gitops.ledger.transitions import Asker
from gitops.lifecycle import steps
from gitops.lifecycle.moves import ENDED, RELEASED, failed, held, next_step, timeout
from gitops.lifecycle.parts import Action, Decision, Parts
from gitops.lifecycle.versions import start_queued
from gitops.util.durations import human

log = logging.getLogger("gitops.lifecycle")

MAX_STEPS_PER_ADVANCE = 24
# Where no queue takes the rest (the CLI), invocations follow one another in one process: as many as a whole rollout
# takes, each spending its own budget, with a bound against a step that never settles (its deadline ends it anyway).
MAX_ADVANCES_HERE = 200


def advance(lc: Parts, run: str) -> Decision:
    """Take the run's due steps until one must wait (or this invocation's budget is spent), then schedule."""
    token = uuid.uuid4().hex
    now = lc.clock()
    why: list[str] = []

    def claim(record: RunRecord) -> RunRecord | None:
        if record.cursor is None:
            why.append(f"no rollout in progress (run is {record.status})")
            return None
        if record.cursor.not_before > now:
            why.append(f"step {record.cursor.step} is not due yet")
            return None
        if record.claim and (record.claimed_until or 0) > now:
            why.append(f"step {record.cursor.step} is being taken by another process")
            return None
        return record.model_copy(update={"claim": token, "claimed_until": now + lc.claim_lease_s})

    try:
        record = update(lc.ledger, run, claim)
    except ConflictError:
        record, why = None, ["another process claimed it first"]
    except NotFoundError:
        record, why = None, [f"no run named '{run}' in the ledger"]
    if record is None:
        return Decision("", run, Action.IDLE, why[0] if why else "nothing to do")
    try:
        return _walk(lc, record, token)
    except Exception:  # a bug, or the ledger unreachable: free the run for the retry (a dead process keeps it until the lease ends)
        _release(lc, record, token)
        raise


def _walk(lc: Parts, record: RunRecord, token: str) -> Decision:
    run = record.key
    started = time.monotonic()
    for _ in range(MAX_STEPS_PER_ADVANCE):
        assert record.cursor is not None
        outcome = _take_step(lc, record, record.cursor)
        next_record = _apply(lc, record, outcome, token)
        if next_record is None:
            return Decision("", run, Action.IDLE, "the claim was lost to another process")
        record = next_record
        if record.cursor is None:
            _finished(lc, record)
            return Decision("", run, record.status, outcome.note)
        if outcome.kind == "wait":
            lc.schedule(record, lc.clock())
            return Decision("", run, Action.WAITING, f"{record.cursor.step}: {outcome.note}")
        if outcome.kind == "again" and lc.queue is not None:  # one slice of a long step per queued invocation
            record = _release(lc, record, token) or record
            lc.schedule(record, lc.clock())
            return Decision("", run, Action.CONTINUES, f"{record.cursor.step if record.cursor else '-'}: {outcome.note}")
        if time.monotonic() - started > lc.step_budget_s:
            break
    record = _release(lc, record, token) or record  # the rest in a new invocation, at once
    lc.schedule(record, lc.clock())
    return Decision("", run, Action.CONTINUES, f"next: {record.cursor.step if record.cursor else '-'}")


def _take_step(lc: Parts, record: RunRecord, cursor: Cursor) -> steps.Outcome:
    now = lc.clock()
    _, step = steps.find(cursor.plan, cursor.step)
    if now >= cursor.deadline_at:
        return steps.fail(
            f"{cursor.step} did not finish within {human(timeout(record, step.phase))}" + (f" ({cursor.last})" if cursor.last else "")
        )
    try:
        reader = (lambda: lc.reader_for(record.backend)) if lc.reader_for is not None else None  # type: ignore[misc]
        trained_in = lc.backend_for(record.backend) if record.environment is not None else None
        return step.run(steps.StepContext(record, cursor, lc.backend_of(record), now, reader, lc.repo, trained_in, lc.pacing))
    except TransientBackendError as exc:  # throttled, a 5xx, a timeout: look again later, until the deadline
        return steps.wait(steps.backoff(cursor.attempt), exc.headline)
    except GitopsError as exc:
        return steps.fail(f"{cursor.step}: {exc.headline}")
    except Exception as exc:  # a bug or an SDK surprise must not strand the run: it rolls back
        log.exception("run %s: step %s raised", record.key, cursor.step)
        return steps.fail(f"{cursor.step}: {type(exc).__name__}: {exc}"[:300])


def _apply(lc: Parts, before: RunRecord, outcome: steps.Outcome, token: str) -> RunRecord | None:
    """Record a step's outcome under our claim; None when another process holds the run now."""
    now = lc.clock()

    def change(record: RunRecord) -> RunRecord | None:
        cursor = record.cursor
        if record.claim != token or cursor is None:
            return None
        # what the step produced, validated as the record's and the cursor's own fields are
        r = with_fields(record, {**outcome.record, "updated_at": now, "claimed_until": now + lc.claim_lease_s})
        if outcome.kind == "wait":
            waited = with_fields(
                cursor, {**outcome.cursor, "attempt": cursor.attempt + 1, "not_before": now + outcome.wait_s, "last": outcome.note}
            )
            return r.model_copy(update={**RELEASED, "cursor": waited})
        if outcome.kind == "end":
            assert outcome.status is not None
            ended = r.moved(outcome.status, outcome.note, now, by=Asker.STEP)
            return ended.model_copy(update=ENDED)
        if outcome.kind == "fail":
            return failed(r, cursor, outcome.note, now)
        if outcome.kind == "again":  # the same step at once: a slice of its work is recorded
            more = with_fields(cursor, {**outcome.cursor, "not_before": now, "last": outcome.note})
            return r.model_copy(update={"cursor": more})
        if outcome.kind == "hold":
            return held(r, with_fields(cursor, outcome.cursor), outcome.note, now)
        return next_step(r, with_fields(cursor, outcome.cursor), outcome.note, now)

    try:
        return update(lc.ledger, before.key, change)
    except TransitionError:  # a move no rule allows is a bug to see (the message's retries, then its poison queue), never a lost claim
        raise
    except ConflictError:
        return None


def _release(lc: Parts, record: RunRecord, token: str) -> RunRecord | None:
    def release(r: RunRecord) -> RunRecord | None:
        return r.model_copy(update=RELEASED) if r.claim == token else None

    try:
        return update(lc.ledger, record.key, release)
    except ConflictError:
        return None


def _finished(lc: Parts, record: RunRecord) -> None:
    """After a rollout ends: the report of a live run, and the queued version's turn."""
    if record.status == "live":
        _attach_report(lc, record)
    if record.queued is not None:
        start_queued(lc, record.key)


def _attach_report(lc: Parts, record: RunRecord) -> None:
    """Keep the run report's summary with the record; a missing report never fails a live run."""
    if lc.reader_for is None:
        return
    from gitops.report.build import build_report

    try:
        summary = build_report(record, lc.reader_for(record.backend).job_metrics(record.job_name)).summary()
    except Exception as exc:  # noqa: BLE001  (metrics unreachable, or MLflow missing here: never fails a live run)
        log.warning("run %s: no report: %s", record.key, exc.headline if isinstance(exc, GitopsError) else type(exc).__name__)
        return

    def attach(r: RunRecord) -> RunRecord:
        # The version before keeps its summary beside: its smoke test and gate are not in any metrics store.
        kept = r.report if r.report and r.report.get("job_name") != summary.get("job_name") else r.previous_report
        return r.model_copy(update={"report": summary, "previous_report": kept})

    update(lc.ledger, record.key, attach)


def drive(
    lc: Parts,
    run: str,
    sleep: Callable[[float], None] | None = None,
    timeout_s: float = 3 * 3600,
    on_record: Callable[[RunRecord], None] | None = None,
) -> Decision:
    """The one loop that drives a run in this process, one invocation (``advance``) after another, for whoever has
    no queue to hand the rest to. Without ``sleep`` (reconcile where no queue is configured): until a step must wait.
    With ``sleep`` (the CLI; tests on a virtual clock's sleep): waiting for each step to come due, until the run
    ends or is held for a person. ``on_record`` sees the record before each step (the CLI shows where it stands).
    Returns the last invocation's decision."""
    deadline = lc.clock() + timeout_s
    decision = Decision("", run, Action.IDLE, "nothing to do")
    for _ in range(MAX_ADVANCES_HERE) if sleep is None else itertools.count():  # waiting: bounded by the deadline
        got = lc.ledger.get(run)
        if got is None:
            if sleep is None:
                return Decision("", run, Action.IDLE, f"no run named '{run}' in the ledger")
            raise GitopsError(f"no run named '{run}' in the ledger")
        record = got[0]
        if on_record is not None:
            on_record(record)
        if record.cursor is None:  # ended
            return decision
        if sleep is not None and record.cursor.plan == "hold":  # waiting for a person: not here (its expiry, when due, is)
            return decision
        now = lc.clock()
        waiting = record.cursor.not_before > now
        claimed = bool(record.claim and (record.claimed_until or 0) > now)
        if sleep is None and (waiting or claimed):
            return decision
        if now > deadline:
            raise GitopsError(f"run '{run}' still at step {record.cursor.step} after {timeout_s:.0f}s", hint="see `gitops status`")
        if sleep is not None and waiting:
            sleep(min(record.cursor.not_before - now, 5.0))
            continue
        if sleep is not None and claimed:
            sleep(1.0)
            continue
        decision = advance(lc, run)
    return decision
