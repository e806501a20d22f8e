"""What every part of the lifecycle reads: the ledger, the backends, the queue, the clock, this repository's
identity and policy; and the ``Decision`` each entry point answers with.

The concerns (``versions``, ``decisions``, ``job_events``, ``driver``, ``reconcile``) are functions over one
``Parts``; ``gitops.lifecycle.flow.Lifecycle`` is that object with the entry points as methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gitops.backends.base import Backend
from gitops.ledger.model import Ledger, RunRecord, workspace_of
from gitops.ledger.transitions import RunStatus
from gitops.lifecycle.pacing import Pacing
from gitops.lifecycle.queue import StepMessage, StepQueue
from gitops.report.metrics import MetricsReader
from gitops.spec.policy import Policy, WorkspaceRef

# How long one advance holds a run: longer than any one step (the smoke test's request is the longest, a
# few minutes at most), short enough that a process killed mid-step delays the run by minutes, not hours.
CLAIM_LEASE_S = 300.0
# How long one advance keeps taking steps before it hands the rest to a new message: a queue-triggered
# invocation stays short, whatever the plan's timeout.
STEP_BUDGET_S = 20.0


class Action(StrEnum):
    """What an entry point did with a run (a Decision's ``action`` when the run did not end a rollout)."""

    IGNORED = "ignored"  # the event is not about a run of ours, or needs nothing
    RECORDED = "recorded"  # noted for later (the queued version's job)
    SCHEDULED = "scheduled"  # a cursor put on the run, a step message sent
    DUPLICATE = "duplicate"  # already handled
    WAITING = "waiting"  # a step waits (for Azure, a hold, a person)
    CONTINUES = "continues"  # the invocation's budget is spent: the rest follows in a new one
    IDLE = "idle"  # nothing was due, or another process holds the run
    RESTARTED = "restarted"  # a dead endpoint server started again
    SKIPPED = "skipped"  # reconcile could not read or act on the record: named, and the others went on
    PROMOTION_DUE = "promotion_due"  # the model is in the registry: its promotion to the next environment is due
    RELEASED = "released"  # a promotion let into its environment: its rollout there begins


@dataclass(frozen=True)
class Decision:
    """What one entry point did: an ``Action``, or the status a run's rollout ended in (live, rolled_back, ...)."""

    event_id: str
    run: str | None
    action: Action | RunStatus
    reason: str


class Parts:
    """The lifecycle's dependencies and settings (attributes a caller or a test may read, and a test may tune)."""

    ledger: Ledger
    backend_for: Callable[[str], Backend]  # a backend kind in the workspace set up here (the first environment's)
    backend_in: Callable[[str, WorkspaceRef], Backend]  # a backend kind in another environment's workspace
    topics: set[str]  # the workspaces whose events are ours (none given: any)
    reader_for: Callable[[str], MetricsReader] | None  # where a backend's training metrics are read, for the run report
    name_salt: str  # derived endpoint names hash the repository in, as the plan does
    repo: str  # this repository's identity, on everything it creates (gitops.ownership)
    queue: StepQueue | None  # None: the caller drives runs itself (``settle``)
    clock: Callable[[], float]
    claim_lease_s: float
    step_budget_s: float
    policy: Policy  # the rollout deadlines' defaults
    pacing: Pacing  # when a step looks again at a provisioning (gitops.lifecycle.pacing)

    def schedule(self, record: RunRecord, now: float) -> None:
        """Send the run's cursor a message for when it is due (no queue: the caller drives it)."""
        if self.queue is not None and record.cursor is not None:
            self.queue.send(StepMessage(record.key, record.cursor.step, record.cursor.not_before), now)

    def backend_of(self, record: RunRecord) -> Backend:
        """The backend that acts on ``record``: the one set up here for the run's first environment, that
        environment's workspace for a later one's state (named by the policy the run's version was checked against)."""
        if record.environment is None:
            return self.backend_for(record.backend)
        return self.backend_in(record.backend, workspace_of(record))
