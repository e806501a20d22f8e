"""A run's statuses, the moves between them, and who may ask for each: the one table every status change is checked
against (``RunRecord.moved`` is the only writer of a status; a test walks the code for any other).

Read the table as the lifecycle: a job awaited (submitted, running, completed), a rollout moving (deploying,
rolling_back, held), and where one ends (live, rolled_back, rejected, failed, canceled, retired), from where a new
version begins (submitted: a new job; completed: the model already trained deployed again). An illegal move is a
``TransitionError`` naming the run, both statuses and who asked.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class RunStatus(StrEnum):
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    DEPLOYING = "deploying"
    ROLLING_BACK = "rolling_back"
    HELD = "held"
    LIVE = "live"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELED = "canceled"
    SUPERSEDED = "superseded"
    RETIRED = "retired"


class Asker(StrEnum):
    """Who asks a run to move: each entry point of the lifecycle, by what it is for."""

    VERSION = "a new version"  # submit, a version queued behind a rollout taking its turn
    STEP = "the step machine"  # a step's outcome (the job checked, the gate, a failure, the plan's end)
    PERSON = "a person"  # promote, rollback, retry
    HOST = "the queue's host"  # a step message that kept failing, given up
    RECONCILE = "reconcile"  # the safety net: a job found running, a rollout of an older version continued
    RETIREMENT = "a retirement"  # the endpoint is gone: cleanup, the watch, `gitops delete`
    RELEASE = "a release"  # a version approved into a later environment (`gitops release`, the promote workflow)


AWAITING_JOB: tuple[RunStatus, ...] = (RunStatus.SUBMITTED, RunStatus.RUNNING, RunStatus.COMPLETED)
ROLLING: tuple[RunStatus, ...] = (RunStatus.DEPLOYING, RunStatus.ROLLING_BACK, RunStatus.HELD)
IN_FLIGHT: tuple[RunStatus, ...] = (*AWAITING_JOB, *ROLLING)
ENDED: tuple[RunStatus, ...] = (
    RunStatus.LIVE,
    RunStatus.ROLLED_BACK,
    RunStatus.REJECTED,
    RunStatus.FAILED,
    RunStatus.CANCELED,
    RunStatus.SUPERSEDED,
    RunStatus.RETIRED,
)


class Move(NamedTuple):
    """A move a run makes: from any of ``sources`` to ``target``, at the asking of any of ``askers``, and why."""

    sources: tuple[RunStatus, ...]
    target: RunStatus
    askers: frozenset[Asker]
    why: str


MOVES: tuple[Move, ...] = (
    # a job awaited
    Move(
        (RunStatus.SUBMITTED,),
        RunStatus.SUBMITTED,
        frozenset({Asker.VERSION, Asker.STEP}),
        "a new job's first record; its job checked and still queued",
    ),
    Move((RunStatus.SUBMITTED,), RunStatus.RUNNING, frozenset({Asker.STEP, Asker.RECONCILE}), "the job found running"),
    Move((RunStatus.RUNNING,), RunStatus.RUNNING, frozenset({Asker.STEP}), "a hint checked again: the job still runs"),
    Move(AWAITING_JOB, RunStatus.DEPLOYING, frozenset({Asker.STEP}), "the job completed: the rollout starts"),
    Move(
        AWAITING_JOB,
        RunStatus.FAILED,
        frozenset({Asker.STEP, Asker.HOST}),
        "the job failed, or checking it did (nothing deployed, nothing to roll back)",
    ),
    Move(AWAITING_JOB, RunStatus.CANCELED, frozenset({Asker.STEP}), "the job was canceled"),
    # a rollout moving
    Move((RunStatus.DEPLOYING,), RunStatus.HELD, frozenset({Asker.STEP}), "the candidate failed the gate"),
    Move((RunStatus.DEPLOYING,), RunStatus.LIVE, frozenset({Asker.STEP}), "the candidate takes the traffic"),
    Move(
        (RunStatus.DEPLOYING,),
        RunStatus.ROLLING_BACK,
        frozenset({Asker.STEP, Asker.PERSON}),
        "a step failed, or a person stopped the rollout",
    ),
    Move((RunStatus.HELD,), RunStatus.DEPLOYING, frozenset({Asker.PERSON}), "promoted over the gate"),
    Move(
        (RunStatus.HELD,),
        RunStatus.ROLLING_BACK,
        frozenset({Asker.STEP, Asker.PERSON, Asker.VERSION}),
        "the hold ran out, a person rejected it, or a newer version superseded it",
    ),
    Move((RunStatus.ROLLING_BACK,), RunStatus.ROLLED_BACK, frozenset({Asker.STEP}), "the serving deployment has its traffic back"),
    Move((RunStatus.ROLLING_BACK,), RunStatus.REJECTED, frozenset({Asker.STEP}), "a held candidate removed"),
    Move(
        (RunStatus.ROLLING_BACK,),
        RunStatus.FAILED,
        frozenset({Asker.STEP}),
        "a rollback step failed: the run stops and says where things are",
    ),
    Move(ROLLING, RunStatus.FAILED, frozenset({Asker.HOST}), "a step message kept failing and was given up"),
    Move(ROLLING, RunStatus.DEPLOYING, frozenset({Asker.RECONCILE}), "a rollout recorded before rollouts had cursors, continued"),
    # where a rollout ended
    Move((RunStatus.LIVE,), RunStatus.ROLLING_BACK, frozenset({Asker.PERSON}), "back to the deployment kept beside it"),
    Move((RunStatus.LIVE,), RunStatus.COMPLETED, frozenset({Asker.PERSON}), "back to the model the version before trained"),
    Move(ENDED, RunStatus.SUBMITTED, frozenset({Asker.VERSION, Asker.PERSON}), "a new job, or a failed one tried again"),
    Move(ENDED, RunStatus.COMPLETED, frozenset({Asker.VERSION}), "the model already trained deployed again"),
    Move(
        (RunStatus.SUBMITTED, *ENDED),
        RunStatus.COMPLETED,
        frozenset({Asker.RELEASE}),
        "a later environment's version: a model trained and proven before, released there (never trained again)",
    ),
    # the endpoint is gone, whatever the run was doing
    Move(tuple(RunStatus), RunStatus.RETIRED, frozenset({Asker.RETIREMENT}), "its endpoint is gone (cleanup, the watch, gitops delete)"),
)


def _table() -> dict[RunStatus, dict[RunStatus, frozenset[Asker]]]:
    table: dict[RunStatus, dict[RunStatus, frozenset[Asker]]] = {status: {} for status in RunStatus}
    for move in MOVES:
        for source in move.sources:
            table[source][move.target] = table[source].get(move.target, frozenset()) | move.askers
    return table


TRANSITIONS: dict[RunStatus, dict[RunStatus, frozenset[Asker]]] = _table()


def refusal(run: str, source: str, target: str, by: Asker) -> tuple[str, str] | None:
    """(why, hint) when ``by`` may not move the run from ``source`` to ``target``; None when it may."""
    allowed = TRANSITIONS.get(RunStatus(source), {})
    if by in allowed.get(RunStatus(target), frozenset()):
        return None
    if RunStatus(target) in allowed:
        who = ", ".join(sorted(allowed[RunStatus(target)]))
        return f"run {run}: {source} -> {target} is not {by}'s to ask", f"only {who} moves a run that way"
    targets = ", ".join(sorted(allowed)) or "nothing"
    return f"run {run}: {source} -> {target} is not a move a run makes", f"from {source} a run moves to {targets}"
