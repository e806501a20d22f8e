"""One backend-agnostic flow, driven by commands and events: used by the CLI, the Functions and the tests.

Every step that acts first claims the run in the ledger by compare-and-swap, so a duplicate or
concurrent event finds the claim taken and does nothing: no event ever acts twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitops import naming
from gitops.backends.base import Backend, JobState
from gitops.backends.registry import ensure_supported
from gitops.errors import ConflictError, GitopsError
from gitops.events import EventFormatError, JobEvent, parse_events
from gitops.ledger.model import AWAITING_JOB, HistoryEntry, Ledger, RunRecord, update
from gitops.lifecycle.smoke import run_smoke_test
from gitops.report.metrics import MetricsReader
from gitops.spec.model import RunSpec
from gitops.spec.validate import ValidatedSpec

log = logging.getLogger("gitops.lifecycle")

# How long a deploy may hold its claim before reconcile presumes its process dead and takes over.
# Longer than any real rollout (Azure deployments take minutes), short enough to heal the same day.
DEPLOY_LEASE_S = 3600.0


@dataclass(frozen=True)
class Decision:
    event_id: str
    run: str | None
    action: str  # ignored | recorded | deployed | rolled_back | duplicate
    reason: str


class Lifecycle:
    def __init__(self, ledger: Ledger, backend_for: Callable[[str], Backend], topic: str | None = None,
                 deploy_lease_s: float = DEPLOY_LEASE_S, reader_for: Callable[[str], MetricsReader] | None = None,
                 name_salt: str | None = None) -> None:
        from gitops.settings import Settings

        self.ledger = ledger
        self.backend_for = backend_for
        self.topic = topic  # events from other workspaces are not ours
        self.deploy_lease_s = deploy_lease_s
        self.reader_for = reader_for  # where a backend's training metrics are read, for the run report
        # Derived endpoint names hash the repository in, as the plan does, so the plan shows the name that is used.
        self.name_salt = Settings.load().repo if name_salt is None else name_salt

    # -- submit ---------------------------------------------------------------------------------
    def submit(self, validated: ValidatedSpec, commit: str | None = None, pr: str | None = None) -> RunRecord:
        spec = validated.require()
        assert validated.digest is not None
        ensure_supported(spec, validated.params)
        job = naming.job_name(spec, validated.digest)
        existing = self.ledger.get(spec.name)
        history = list(existing[0].history) if existing else []  # a run's history spans its versions
        if existing is not None:
            record, version = existing
            if record.digest == validated.digest and record.status == "retired":
                # Torn down by cleanup, asked for again: the trained model is still there, so no new job;
                # reconcile finds the job completed and deploys it again.
                revived = record.moved("completed", "brought back by a new submit")
                self.ledger.put(revived, version)
                return revived
            if record.digest == validated.digest and record.status not in ("failed", "canceled"):
                return record  # the same spec at the same digest: the existing job, not a second GPU bill
            if record.status in ("submitted", "running"):
                if not spec.lifecycle.supersede:
                    raise ConflictError(f"run '{spec.name}' has job {record.job_name} still {record.status}",
                                        hint="wait for it, cancel it, or set lifecycle.supersede: true")
                self.backend_for(record.backend).cancel_job(record.job_name)
                history.append(HistoryEntry(at=time.time(), status="superseded", note=f"job {record.job_name} canceled"))
        backend = self.backend_for(spec.backend)
        tags = {naming.TAG_RUN: spec.name, naming.TAG_DIGEST: validated.digest,
                naming.TAG_COMMIT: commit or "", naming.TAG_PR: pr or ""}
        model = backend.resolve_model(spec)
        data = backend.prepare_data(spec, job)
        status = backend.submit(spec, validated.params, job, tags, model, data)
        body = spec.model_dump(mode="json")
        record = RunRecord(run=spec.name, backend=spec.backend, digest=validated.digest, job_name=status.name,
                           spec=body, params=validated.params, commit=commit, pr=pr,
                           model_name=naming.model_name(spec), endpoint=naming.endpoint_name(spec, self.name_salt),
                           deployment=existing[0].deployment if existing else None,  # what still serves
                           history=history, test_path=data.local_test_path or data.test_uri,
                           previous_job=existing[0].job_name if existing else None).moved("submitted", f"job {status.name}")
        self.ledger.put(record, existing[1] if existing else None)
        return record

    # -- events ---------------------------------------------------------------------------------
    def on_job_event(self, body: Any) -> list[Decision]:
        try:
            events = parse_events(body)
        except (EventFormatError, ValueError) as exc:
            log.warning("ignored a malformed event: %s", exc)
            return [Decision("", None, "ignored", f"malformed: {exc}")]
        decisions = []
        for event in events:
            decision = self._one_event(event)
            if event.id:
                self.ledger.remember_event(event.id, {"type": event.type, "run": decision.run, "job": event.run_id,
                                                      "action": decision.action, "reason": decision.reason,
                                                      "at": time.time()})
            decisions.append(decision)
        return decisions

    def _one_event(self, event: JobEvent) -> Decision:
        run = event.tags.get(naming.TAG_RUN)
        if not run:
            return self._ignore(event, None, "no gitops_run tag: not ours")
        if self.topic and event.topic and event.topic.lower() != self.topic.lower():
            return self._ignore(event, run, f"topic {event.topic} is another workspace")
        if event.run_type and event.run_type != "azureml.PipelineRun":
            return self._ignore(event, run, f"run type {event.run_type} is a child step")
        current = self.ledger.get(run)
        if current is None:
            return self._ignore(event, run, "no such run in the ledger")
        record = current[0]
        if record.job_name != event.run_id:
            return self._ignore(event, run, f"job {event.run_id} is not the run's current job {record.job_name}")
        if event.id and event.id in record.processed_events:
            return Decision(event.id, run, "duplicate", "event already processed")
        outcome = event.outcome
        if outcome is None:
            return self._ignore(event, run, f"status {event.run_status} needs no action")
        return self.advance(run, outcome, event.id)

    def _ignore(self, event: JobEvent, run: str | None, reason: str) -> Decision:
        log.info("ignored event %s (%s): %s", event.id, event.short_type, reason)
        return Decision(event.id, run, "ignored", reason)

    # -- the flow after a job ends ---------------------------------------------------------------
    def advance(self, run: str, outcome: str, event_id: str = "") -> Decision:
        """Act on a finished job once: claim the run, then deploy (completed) or record (failed/canceled)."""

        def claim(record: RunRecord) -> RunRecord | None:
            if record.status not in AWAITING_JOB:
                return None  # already claimed or finished by another delivery
            events = [*record.processed_events, event_id] if event_id else record.processed_events
            if outcome == "completed":
                return record.moved("deploying", "job completed").model_copy(
                    update={"processed_events": events, "claimed_until": time.time() + self.deploy_lease_s})
            ended = record.moved("failed", "job failed") if outcome == "failed" else record.moved("canceled", "job canceled")
            return ended.model_copy(update={"processed_events": events, "error": f"job {outcome}"})

        try:
            claimed = update(self.ledger, run, claim)
        except ConflictError:
            claimed = None
        if claimed is None:
            return Decision(event_id, run, "duplicate", "already handled by another delivery")
        if claimed.status != "deploying":
            return Decision(event_id, run, "recorded", f"job {outcome}")
        return self._deploy(claimed, event_id)

    def _deploy(self, record: RunRecord, event_id: str) -> Decision:
        spec = RunSpec.model_validate(record.spec)
        backend = self.backend_for(record.backend)
        new_dep: str | None = None
        endpoint = record.endpoint or naming.endpoint_name(spec, self.name_salt)
        old = record.deployment
        try:
            model = backend.register_model(record.job_name, record.model_name or naming.model_name(spec),
                                           {naming.TAG_RUN: record.run, naming.TAG_DIGEST: record.digest,
                                            naming.TAG_COMMIT: record.commit or ""})
            self._note(record.run, model_version=model.version, note=f"registered {model.name} v{model.version}")
            info = backend.ensure_endpoint(endpoint, {naming.MANAGED_BY_TAG: naming.MANAGED_BY_VALUE, naming.TAG_RUN: record.run})
            new_dep = f"v{model.version}-{record.digest[:8]}"
            old = old or next((d for d, pct in info.traffic.items() if pct > 0), None)
            backend.create_deployment(endpoint, new_dep, model, spec)  # a new deployment starts at 0% traffic
            smoke = run_smoke_test(backend, endpoint, new_dep, spec, record.test_path)
            self._note(record.run, smoke=smoke)
            if not smoke.ok:
                raise GitopsError(f"smoke test failed: {smoke.reason}")
            backend.set_traffic(endpoint, {new_dep: 100})
            promoted = backend.get_endpoint(endpoint)
            for dep in promoted.deployments if promoted else ():
                if dep.name != new_dep:
                    backend.delete_deployment(endpoint, dep.name)
        except Exception as exc:  # any failure mid-way: the endpoint keeps serving what it served before
            reason = exc.headline if isinstance(exc, GitopsError) else f"{type(exc).__name__}: {exc}"
            self._rollback(backend, endpoint, new_dep, old)
            update(self.ledger, record.run, lambda r: r.moved("rolled_back", reason).model_copy(
                update={"error": reason, "endpoint": endpoint, "deployment": old, "claimed_until": None}))
            log.warning("run %s rolled back: %s", record.run, reason)
            return Decision(event_id, record.run, "rolled_back", reason)
        live = update(self.ledger, record.run, lambda r: r.moved("live", f"{new_dep} takes 100% on {endpoint}").model_copy(
            update={"endpoint": endpoint, "deployment": new_dep, "previous_deployment": old, "error": None,
                    "claimed_until": None}))
        if live is not None:
            self._attach_report(live)
        return Decision(event_id, record.run, "deployed", f"{new_dep} live on {endpoint}")

    def _attach_report(self, record: RunRecord) -> None:
        """Keep the run report's summary with the record; a missing report never fails a live run."""
        if self.reader_for is None:
            return
        from gitops.report.build import build_report

        try:
            summary = build_report(record, self.reader_for(record.backend).job_metrics(record.job_name)).summary()
        except Exception as exc:  # metrics unreachable, or the MLflow client not installed here
            log.warning("run %s: no report: %s", record.run, exc.headline if isinstance(exc, GitopsError) else type(exc).__name__)
            return
        update(self.ledger, record.run, lambda r: r.model_copy(update={"report": summary}))

    def _rollback(self, backend: Backend, endpoint: str, new_dep: str | None, old: str | None) -> None:
        try:
            info = backend.get_endpoint(endpoint)
            if info is None:
                return
            if old and any(d.name == old for d in info.deployments):
                backend.set_traffic(endpoint, {old: 100})
            elif new_dep and info.traffic.get(new_dep, 0) > 0:
                backend.set_traffic(endpoint, {})
            if new_dep and any(d.name == new_dep for d in info.deployments):
                backend.delete_deployment(endpoint, new_dep)
        except Exception:
            log.exception("rollback of %s on %s did not finish; reconcile will retry", new_dep, endpoint)

    def _note(self, run: str, note: str = "", **fields: Any) -> None:
        def change(r: RunRecord) -> RunRecord:
            updated = r.model_copy(update=fields)
            return updated.moved(updated.status, note) if note else updated
        update(self.ledger, run, change)

    def _take_over(self, record: RunRecord) -> Decision | None:
        """Finish a deploy whose process died mid-way (its lease ran out). Every step is idempotent:
        the same job registers the same version, the same deployment name is updated, not duplicated."""
        now = time.time()

        def renew(r: RunRecord) -> RunRecord | None:
            if r.status != "deploying" or (r.claimed_until or 0) > now:
                return None  # still held, or finished meanwhile
            return r.moved("deploying", "claim expired: reconcile takes over").model_copy(
                update={"claimed_until": now + self.deploy_lease_s})

        try:
            claimed = update(self.ledger, record.run, renew)
        except ConflictError:
            return None
        return self._deploy(claimed, f"reconcile:{record.job_name}") if claimed is not None else None

    # -- reconcile -------------------------------------------------------------------------------
    def reconcile(self, only: str | None = None) -> list[Decision]:
        """For runs whose event never came, ask the backend and continue the flow. One run's failure is
        logged and the others carry on: this runs on a timer."""
        decisions = []
        for record in self.ledger.list():
            if only and record.run != only:
                continue
            try:
                decision = self._reconcile_one(record)
            except GitopsError as exc:
                log.warning("reconcile %s: %s", record.run, exc.headline)
                continue
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _reconcile_one(self, record: RunRecord) -> Decision | None:
        if record.status == "deploying":
            return self._take_over(record)
        if record.status not in AWAITING_JOB:
            return None
        job = self.backend_for(record.backend).get_job(record.job_name)
        if job is None or not job.state.terminal:
            if job is not None and job.state is JobState.RUNNING and record.status == "submitted":
                update(self.ledger, record.run, lambda r: r.moved("running") if r.status == "submitted" else None)
            return None
        return self.advance(record.run, job.state.value, f"reconcile:{record.job_name}")
