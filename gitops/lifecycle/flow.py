"""One backend-agnostic lifecycle, driven by commands, events, queue messages and timers: its entry points.

Nothing here waits on Azure. ``submit`` starts a job and records it. ``on_job_event`` checks that an event is
about a run of ours, puts a cursor on the run ("check the job") and schedules it: it answers in milliseconds.
``advance`` takes the run's next steps (``gitops.lifecycle.steps``) under a short compare-and-swap claim
until one must wait; it records when to look again and sends itself a queue message for then. ``reconcile``
(the timer) is the safety net: it continues runs whose event never came and schedules any overdue cursor.

Every write is a compare-and-swap on the run's record: a duplicate or concurrent event finds the cursor
already set, a second ``advance`` finds the claim held, and a process killed between two steps leaves a
cursor that the next message (or timer) takes up once the claim's short lease has run out.

Where each concern lives (``Lifecycle`` only dispatches):

- ``versions``: submit, a version queued behind a rollout, supersede, retry
- ``decisions``: a person's promote and rollback; a step given up
- ``job_events``: an event checked and turned into a cursor
- ``driver``: claim, take steps, record outcomes, schedule; ``settle`` in one process
- ``reconcile``: the safety net, a dead server started again, legacy records adopted, promotions made due
- ``promotions``, ``releases``: a version proven in one environment made due for the next, and let in there
- ``moves``: how a cursor moves between plans and the status each move means
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from gitops.backends.base import Backend
from gitops.errors import NotFoundError
from gitops.ledger.model import Ledger, RunRecord
from gitops.lifecycle import decisions, driver, job_events, reconcile, releases, versions
from gitops.lifecycle.pacing import PACING, Pacing
from gitops.lifecycle.parts import CLAIM_LEASE_S, STEP_BUDGET_S, Decision, Parts
from gitops.lifecycle.queue import StepQueue
from gitops.report.metrics import MetricsReader
from gitops.review.check import CheckedSpec
from gitops.spec.policy import Policy, WorkspaceRef
from gitops.spec.validate import SpecValidation, ValidSpec

__all__ = ["Decision", "Lifecycle"]


class Lifecycle(Parts):
    def __init__(
        self,
        ledger: Ledger,
        backend_for: Callable[[str], Backend],
        topic: str | Iterable[str] | None = None,
        reader_for: Callable[[str], MetricsReader] | None = None,
        name_salt: str | None = None,
        queue: StepQueue | None = None,
        clock: Callable[[], float] = time.time,
        claim_lease_s: float = CLAIM_LEASE_S,
        step_budget_s: float = STEP_BUDGET_S,
        policy: Policy | None = None,
        repo: str | None = None,
        backend_in: Callable[[str, WorkspaceRef], Backend] | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        from gitops.backends.registry import workspace_cache
        from gitops.settings import Settings

        self.ledger = ledger
        self.backend_for = backend_for
        # Another environment's workspace: the kind's own backend made for it, on first use (the local one in its
        # directory, the Azure one on its workspace), unless the caller gives its own (a test's clock, the Function's guard).
        self.backend_in = backend_in or workspace_cache()
        # The workspaces whose events are ours (none given: any); an event without a topic is never ours then.
        self.topics = {topic.lower()} if isinstance(topic, str) else {t.lower() for t in topic or ()}
        self.reader_for = reader_for
        # Derived endpoint names hash the repository in, as the plan does, so the plan shows the name that is used.
        self.name_salt = Settings.load().repo if name_salt is None else name_salt
        self.repo = self.name_salt if repo is None else repo
        self.queue = queue
        self.clock = clock
        self.claim_lease_s = claim_lease_s
        self.step_budget_s = step_budget_s
        self.policy = policy or Policy()
        self.pacing = pacing or PACING

    # -- versions of a run
    def check(self, spec: SpecValidation | ValidSpec, policy: Policy | None = None) -> CheckedSpec:
        return versions.check(self, spec, policy)

    def submit(
        self, spec: CheckedSpec | SpecValidation | ValidSpec, commit: str | None = None, pr: str | None = None, policy: Policy | None = None
    ) -> RunRecord:
        """A version of a spec, acted on as far as it changed. A ``CheckedSpec`` (the Function's, the CLI's) is not
        checked again; a spec not yet checked is, here, by the one check against ``policy`` (else the lifecycle's)."""
        checked = spec if isinstance(spec, CheckedSpec) else versions.check(self, spec, policy)
        return versions.submit(self, checked, commit, pr)

    def retry(self, run: str, who: str = "", max_attempts: int = versions.MAX_ATTEMPTS) -> RunRecord:
        return versions.retry(self, run, who, max_attempts)

    # -- decisions by people
    def promote(self, run: str, who: str, reason: str = "") -> RunRecord:
        return decisions.promote(self, run, who, reason)

    def rollback(self, run: str, who: str, reason: str = "") -> RunRecord:
        return decisions.rollback(self, run, who, reason)

    def give_up(self, run: str, reason: str) -> None:
        decisions.give_up(self, run, reason)

    # -- environments: promotions due, let in by an approval
    def due(self) -> list[releases.Due]:
        return releases.due(self)

    def release(self, run: str, to: str, *, by: str, reason: str = "", via: str = "", job: str | None = None) -> RunRecord:
        return releases.release(self, run, to, by=by, reason=reason, via=via, job=job)

    # -- events, steps and the safety net
    def on_job_event(self, body: Any) -> list[Decision]:
        return job_events.on_job_event(self, body)

    def advance(self, run: str) -> Decision:
        return driver.advance(self, run)

    def settle(
        self,
        run: str,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 3 * 3600,
        on_record: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """Drive one run here until no step is pending (``driver.drive``, waiting with ``sleep``); its record then."""
        driver.drive(self, run, sleep, timeout_s, on_record)
        got = self.ledger.get(run)
        if got is None:
            raise NotFoundError(f"no run named '{run}' in the ledger")
        return got[0]

    def reconcile(self, only: str | None = None) -> list[Decision]:
        return reconcile.reconcile(self, only)
