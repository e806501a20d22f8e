"""One backend-agnostic lifecycle, driven by commands, events, queue messages and timers.

Nothing here waits on Azure. ``submit`` starts a job and records it. ``on_job_event`` checks that an event is
about a run of ours, puts a cursor on the run ("check the job") and schedules it: it answers in milliseconds.
``advance`` takes the run's next steps (``gitops.lifecycle.steps``) under a short compare-and-swap claim
until one must wait; it records when to look again and sends itself a queue message for then. ``reconcile``
(the timer) is the safety net: it continues runs whose event never came and schedules any overdue cursor.

Every write is a compare-and-swap on the run's record: a duplicate or concurrent event finds the cursor
already set, a second ``advance`` finds the claim held, and a process killed between two steps leaves a
cursor that the next message (or timer) takes up once the claim's short lease has run out.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.backends.base import Backend, Feature, JobState, Provisioning
from gitops.errors import ConfigurationError, ConflictError, GitopsError, NotFoundError, SpecError, TransientBackendError
from gitops.events import EventFormatError, JobEvent, NotARunEvent, parse_each
from gitops.ledger.model import AWAITING_JOB, ROLLING, Cursor, HistoryEntry, Ledger, QueuedVersion, RunRecord, endpoint_move, update
from gitops.lifecycle import steps
from gitops.lifecycle.queue import StepMessage, StepQueue
from gitops.ownership import IDENTITY_HINT, missing_identity, same_repository
from gitops.report.metrics import MetricsReader
from gitops.spec import naming
from gitops.spec.capabilities import ensure_supported
from gitops.spec.findings import error
from gitops.spec.model import RunSpec, parse_duration
from gitops.spec.policy import Policy
from gitops.spec.validate import ValidatedSpec, ValidSpec
from gitops.util.durations import human

log = logging.getLogger("gitops.lifecycle")

# How long one advance holds a run: longer than any one step (the smoke test's request is the longest, a
# few minutes at most), short enough that a process killed mid-step delays the run by minutes, not hours.
CLAIM_LEASE_S = 300.0
# How long one advance keeps taking steps before it hands the rest to a new message: a queue-triggered
# invocation stays short, whatever the plan's timeout.
STEP_BUDGET_S = 20.0
MAX_STEPS_PER_ADVANCE = 24
# Where no queue takes the rest (the CLI), invocations follow one another in one process: as many as a whole rollout
# takes, each spending its own budget, with a bound against a step that never settles (its deadline ends it anyway).
MAX_ADVANCES_HERE = 200
MAX_ATTEMPTS = 3  # job attempts of one spec version (the first and two retries)
# Record fields that let the run go: the claim released; with the cursor too, the rollout over.
RELEASED: dict[str, Any] = {"claim": None, "claimed_until": None}
# The digests of a run a person rolled back to an older job: no spec has them, so any version merged next acts.
ROLLED_BACK = "rollback"  # eight characters: a deployment takes the digest's first eight (v1-rollback, not v1-rolled-b)
ENDED: dict[str, Any] = {**RELEASED, "cursor": None}
SKIPPED = "skipped"  # reconcile's decision for a record it could not read or act on: named, and the rest went on


def _located(exc: SpecError, validated: ValidSpec) -> SpecError:
    """A spec error found after validation (at submit), placed on the spec's file and lines."""
    findings = validated.locate(exc.findings)
    first = next((f for f in findings if f.is_error), None)
    return SpecError(first.headline() if first else f"{validated.file}: {exc.headline}", findings, first.hint if first else exc.hint)


# What a version of a spec sets on its run, whether it starts now, waits in the queue or keeps the job it follows.
VERSION_FIELDS = ("digest", "training_digest", "deployment_digest", "spec", "params", "timeouts", "gate_rules", "policy")


def _version_fields(validated: ValidSpec, spec: RunSpec, policy: Policy) -> dict[str, Any]:
    return {
        "digest": validated.digest,
        "training_digest": validated.digests.training,
        "deployment_digest": validated.digests.deployment,
        "spec": spec.model_dump(mode="json"),
        "params": validated.params,
        "timeouts": _timeouts(policy, spec),
        "gate_rules": policy.gate.resolve(spec),
        "policy": policy.model_dump(mode="json"),
    }


def _timeouts(policy: Policy, spec: RunSpec) -> dict[str, float]:
    """Seconds per phase of the rollout (the spec's own, else the policy's), how long a held candidate waits, and the
    gradual traffic's whole time: each share's hold and a traffic change."""
    phases = policy.rollout.resolve(spec)
    ramp = spec.deploy.rollout
    return {
        **phases,
        "hold": parse_duration(spec.deploy.gate.hold_for or policy.gate.hold_for).total_seconds(),
        "ramp": len(ramp.shares) * (parse_duration(ramp.hold).total_seconds() + phases["traffic"])
        if ramp and ramp.shares
        else phases["traffic"],
    }


def _entering(cursor: Cursor, plan: str, step: str, now: float, deadline: float, **more: Any) -> Cursor:
    """The cursor moved to the start of ``step`` of ``plan``: a fresh attempt count, due now, with its deadline."""
    return cursor.model_copy(
        update={"plan": plan, "step": step, "entered_at": now, "attempt": 0, "not_before": now, "deadline_at": deadline, "last": "", **more}
    )


def _serving_job(record: RunRecord) -> str | None:
    """The job whose model serves: what a new version's gate compares with (records before the gate: a live one's)."""
    return record.serving_job or (record.job_name if record.status == "live" else None)


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    from gitops.spec.diff import field_changes

    return [c.path for c in field_changes(old, new)]


@dataclass(frozen=True)
class Decision:
    event_id: str
    run: str | None
    action: str  # ignored | recorded | scheduled | duplicate | waiting | continues | idle | live | rolled_back | failed ...
    reason: str


class Lifecycle:
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
    ) -> None:
        from gitops.settings import Settings

        self.ledger = ledger
        self.backend_for = backend_for
        # The workspaces whose events are ours (none given: any); an event without a topic is never ours then.
        self.topics = {topic.lower()} if isinstance(topic, str) else {t.lower() for t in topic or ()}
        self.reader_for = reader_for  # where a backend's training metrics are read, for the run report
        # Derived endpoint names hash the repository in, as the plan does, so the plan shows the name that is used.
        self.name_salt = Settings.load().repo if name_salt is None else name_salt
        # This repository's identity, on everything it creates: what makes a resource ours (gitops.ownership).
        self.repo = self.name_salt if repo is None else repo
        self.queue = queue  # None: the caller drives runs itself (``settle``)
        self.clock = clock
        self.claim_lease_s = claim_lease_s
        self.step_budget_s = step_budget_s
        self.policy = policy or Policy()  # the rollout deadlines' defaults

    # -- submit ---------------------------------------------------------------------------------
    def submit(
        self, checked: ValidatedSpec | ValidSpec, commit: str | None = None, pr: str | None = None, policy: Policy | None = None
    ) -> RunRecord:
        """Act on a version of a spec as far as it changed, as Terraform tells "replace" from "update in place": a
        change to the training sections starts a job; one to the deployment sections deploys the model already
        trained again; one to the settings only is recorded; the same version again changes nothing. ``policy``:
        the repo's, whose rollout deadlines the run keeps (the spec's own ``deploy.timeouts`` win). A spec with
        errors is refused here (``SpecError``); past this line it is complete."""
        validated = checked.valid() if isinstance(checked, ValidatedSpec) else checked
        spec = validated.spec
        policy = policy or self.policy
        try:
            ensure_supported(spec, validated.params)
        except SpecError as exc:
            raise _located(exc, validated) from None
        existing = self.ledger.get(spec.name)
        if existing is None:
            return self._new_job(validated, spec, commit, pr, policy, None)
        record, version = existing
        refusal = endpoint_move(record, naming.endpoint_name(spec, self.name_salt))
        if refusal is not None:
            raise _located(SpecError(refusal[0], [error("deploy.endpoint", refusal[0], refusal[1])], hint=refusal[1]), validated)
        if record.queued is not None:  # the newest version is the one waiting for the rollout in progress
            return self._queue_version(record, version, validated, spec, commit, pr, policy)
        change = record.digests().change_to(validated.digests)
        job_failed = record.status in ("failed", "canceled") and not self._job_completed(record)
        if change == "retrain" or (job_failed and change != "unchanged"):
            if record.cursor is not None or record.status in ROLLING:
                return self._queue_version(record, version, validated, spec, commit, pr, policy)
            return self._new_job(validated, spec, commit, pr, policy, existing)
        if change == "unchanged" and record.status not in ("retired", "failed", "canceled"):
            return record  # the same version again: the existing job, not a second GPU bill
        if job_failed:
            return self.retry(spec.name)  # the same version whose job failed: a new attempt, not the old failed job
        now = self.clock()
        updated = self._as_version(record, validated, spec, commit, pr, policy)
        if change == "settings" and record.status != "retired":
            what = ", ".join(sorted(_changed_fields(record.spec, updated.spec))) or "settings"
            applied = updated.model_copy(
                update={
                    "history": [
                        *record.history,
                        HistoryEntry(at=now, status=record.status, note=f"settings applied, nothing redeployed: {what}"),
                    ]
                }
            )
            self.ledger.put(applied, version)
            return applied
        if record.status in ROLLING:
            return self._queue_version(record, version, validated, spec, commit, pr, policy)
        if record.status in AWAITING_JOB:
            # The rollout has not begun: when it does, its steps read the new deployment settings.
            noted = updated.model_copy(
                update={
                    "history": [
                        *record.history,
                        HistoryEntry(at=now, status=record.status, note="deployment settings changed: the rollout after the job uses them"),
                    ]
                }
            )
            self.ledger.put(noted, version)
            return noted
        # Live, rolled back, retired, or failed after its job completed: the trained model is deployed again.
        why = (
            "brought back by a new submit"
            if record.status == "retired"
            else f"redeploy only: the model of job {record.job_name} is deployed again"
        )
        self._refuse_shared_endpoint(spec.name, updated.endpoint or "")
        again = self._with_cursor(updated.moved("completed", why, now).model_copy(update={"smoke": None, "error": None}), now)
        self.ledger.put(again, version)
        self._schedule(again, now)
        return again

    def _new_job(
        self,
        validated: ValidSpec,
        spec: RunSpec,
        commit: str | None,
        pr: str | None,
        policy: Policy,
        existing: tuple[RunRecord, str] | None,
    ) -> RunRecord:
        """The first version of a run, or one that changed what is trained: a new job."""
        now = self.clock()
        history = list(existing[0].history) if existing else []  # a run's history spans its versions
        if existing is not None and existing[0].status in ("submitted", "running"):
            record = existing[0]
            if not spec.lifecycle.supersede:
                raise ConflictError(
                    f"run '{spec.name}' has job {record.job_name} still {record.status}",
                    hint="wait for it, cancel it, or set lifecycle.supersede: true",
                )
            self.backend_for(record.backend).cancel_job(record.job_name)
            history.append(HistoryEntry(at=now, status="superseded", note=f"job {record.job_name} canceled"))
        endpoint = naming.endpoint_name(spec, self.name_salt)
        self._refuse_shared_endpoint(spec.name, endpoint)
        status, data = self._start_job(spec, validated, naming.job_name(spec, validated.training_digest), commit, pr)
        record = RunRecord(
            run=spec.name,
            backend=spec.backend,
            job_name=status.name,
            **_version_fields(validated, spec, policy),
            commit=commit,
            pr=pr,
            model_name=naming.model_name(spec),
            endpoint=endpoint,
            deployment=existing[0].deployment if existing else None,  # what still serves
            history=history,
            test_path=data.local_test_path or data.test_uri,
            previous_job=existing[0].job_name if existing else None,
            serving_job=_serving_job(existing[0]) if existing else None,
            serving_model_version=existing[0].serving_version if existing else None,
            # the report of what serves (and of the version before it) stays until this version goes live: what the
            # comparison of a held or rolled-back candidate reads the previous smoke test and gate from
            report=existing[0].report if existing else None,
            previous_report=existing[0].previous_report if existing else None,
        ).moved("submitted", f"job {status.name}", now)
        self.ledger.put(record, existing[1] if existing else None)
        return record

    def _as_version(
        self, record: RunRecord, validated: ValidSpec, spec: RunSpec, commit: str | None, pr: str | None, policy: Policy
    ) -> RunRecord:
        """The record carrying a new version of the spec that keeps its job (a redeploy, or settings only)."""
        return record.model_copy(
            update={
                **_version_fields(validated, spec, policy),
                "commit": commit or record.commit,
                "pr": pr or record.pr,
                "model_name": naming.model_name(spec),
                "endpoint": naming.endpoint_name(spec, self.name_salt),
                "updated_at": self.clock(),
            }
        )

    def _job_completed(self, record: RunRecord) -> bool:
        """Whether the run's job completed (a run that failed in its rollout has a trained model to deploy)."""
        try:
            job = self.backend_for(record.backend).get_job(record.job_name)
        except GitopsError:
            return False
        return job is not None and job.state is JobState.COMPLETED

    # -- decisions by people -------------------------------------------------------------------------
    def promote(self, run: str, who: str, reason: str = "") -> RunRecord:
        """Override a held gate: the candidate takes the traffic (through the rollout's own last steps). Asked again
        after it was taken, the record is returned as it stands."""
        now = self.clock()

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
            moved = _entering(c, "rollout", step.name, now, now + self._timeout(record, step.phase), decided_by=who)
            note = f"promoted by {who}" + (f": {reason}" if reason else "") + " (the gate had failed)"
            return record.moved("deploying", note, now).model_copy(update={"cursor": moved})

        return self._decided(run, decide, now)

    def rollback(self, run: str, who: str, reason: str = "") -> RunRecord:
        """A person's rollback: a held candidate is removed (the run is rejected); a rollout in progress stops and
        its candidate is removed; a live run goes back to the deployment before it when that one still exists."""
        now = self.clock()
        why = f"rolled back by {who}" + (f": {reason}" if reason else "")

        def decide(record: RunRecord) -> RunRecord | None:
            c = record.cursor
            if c is not None and c.plan == "rollback":
                return None  # a rollback already runs
            if c is not None and c.plan in ("hold", "rollout"):
                return self._rolling_back(record, c, why, now, decided_by=who, ending="rejected" if c.plan == "hold" else None)
            if record.status == "live" and record.endpoint:
                info = self.backend_for(record.backend).get_endpoint(record.endpoint)
                kept = info.deployment(record.previous_deployment) if info is not None and record.previous_deployment else None
                if kept is not None and kept.state is Provisioning.SUCCEEDED:  # not one being deleted
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
                    )
                    return self._rolling_back(record, serving, why, now, decided_by=who)
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
                    redeploy = self._with_cursor(
                        older.moved("completed", why + f": job {record.previous_serving_job}'s model is deployed again", now), now
                    )
                    assert redeploy.cursor is not None
                    return redeploy.model_copy(update={"cursor": redeploy.cursor.model_copy(update={"decided_by": who})})
            raise ConflictError(
                f"run '{run}' is {record.status}: there is nothing to roll back", hint="a held, rolling-out or live run is rolled back"
            )

        return self._decided(run, decide, now)

    def _decided(self, run: str, decide: Callable[[RunRecord], RunRecord | None], now: float) -> RunRecord:
        """Record a person's decision (``decide`` returns None when it was already taken) and schedule what follows."""
        decided = update(self.ledger, run, decide)
        got = self.ledger.get(run)
        record = decided or (got[0] if got else None)
        if record is None:
            raise NotFoundError(f"no run named '{run}' in the ledger")
        if decided is not None:
            self._schedule(decided, now)
        return record

    def retry(self, run: str, who: str = "", max_attempts: int = MAX_ATTEMPTS) -> RunRecord:
        """A new attempt of a version whose job failed or was canceled: a new job (``-a2``, ``-a3``...), at most
        ``max_attempts`` in all. Idempotent: asked again while the new attempt stands, the record is returned."""
        got = self.ledger.get(run)
        if got is None:
            raise NotFoundError(f"no run named '{run}' in the ledger")
        record, version = got
        if record.status not in ("failed", "canceled") or record.cursor is not None:
            if record.history and record.history[-1].note.startswith(f"retry: attempt {record.attempt}"):
                return record  # the same retry, asked again
            raise ConflictError(
                f"run '{run}' is {record.status}: only a failed or canceled job is retried",
                hint="a live or running run needs no retry; a new spec version is submitted by merging it",
            )
        if record.attempt >= max_attempts:
            raise ConflictError(
                f"run '{run}' has had {record.attempt} attempts (at most {max_attempts})",
                hint="fix the cause (see the job's logs) and merge a changed spec",
            )
        spec = RunSpec.model_validate(record.spec)
        attempt = record.attempt + 1
        job = naming.job_name(spec, record.digests().training, attempt)
        validated = ValidSpec(f"runs/{spec.name}.yaml", spec, dict(record.params), record.digests())
        status, data = self._start_job(spec, validated, job, record.commit, record.pr)
        now = self.clock()
        retried = record.moved("submitted", f"retry: attempt {attempt}, job {status.name}" + (f" (by {who})" if who else ""), now)
        retried = retried.model_copy(
            update={
                "job_name": status.name,
                "attempt": attempt,
                "error": None,
                "test_path": data.local_test_path or data.test_uri or record.test_path,
            }
        )
        self.ledger.put(retried, version)
        return retried

    def _refuse_shared_endpoint(self, run: str, endpoint: str) -> None:
        """Two runs never share an endpoint: the second would move the first one's traffic to its own model."""
        for other in self.ledger.list():
            if other.run != run and other.endpoint == endpoint and other.status != "retired":
                raise ConflictError(
                    f"endpoint {endpoint} already serves run '{other.run}'",
                    hint=f"give this spec its own deploy.endpoint (or retire run '{other.run}' first)",
                )

    def _start_job(self, spec: RunSpec, validated: ValidSpec, job: str, commit: str | None, pr: str | None) -> Any:
        backend = self.backend_for(spec.backend)
        tags = {
            naming.TAG_RUN: spec.name,
            naming.TAG_REPO: self.repo,
            naming.TAG_DIGEST: validated.training_digest,
            naming.TAG_COMMIT: commit or "",
            naming.TAG_PR: pr or "",
        }
        nameless = missing_identity(spec.backend, self.repo)
        if nameless:
            raise ConfigurationError(nameless, hint=IDENTITY_HINT)
        try:
            model = backend.resolve_model(spec)
            data = backend.prepare_data(spec, job)
            status = backend.submit(spec, validated.params, job, tags, model, data)
        except SpecError as exc:  # the backend's own checks (model, compute, quota): on the spec's lines
            raise _located(exc, validated) from None
        owner = status.tags.get(naming.TAG_REPO)
        if owner is not None and not same_repository(owner, self.repo):
            # The same run name and training sections in another repository give the same deterministic job name.
            raise ConflictError(
                f"job {job} was submitted by repository {owner}, not this one ({self.repo})",
                hint="give the run another name (runs/<name>.yaml and name:), or change its training sections",
            )
        return status, data

    def _queue_version(
        self, record: RunRecord, version: str, validated: ValidSpec, spec: RunSpec, commit: str | None, pr: str | None, policy: Policy
    ) -> RunRecord:
        """A new version while a rollout runs: its rollout comes after this one ends (never two rollouts on one
        endpoint, and a deployment already provisioning is not thrown away). Its job starts now when it changes
        what is trained; else it keeps the job of the version it follows."""
        latest = record.queued or record
        change = latest.digests().change_to(validated.digests)
        if change == "unchanged":
            return record
        if change == "retrain":
            status, data = self._start_job(spec, validated, naming.job_name(spec, validated.training_digest), commit, pr)
            job, test_path = status.name, data.local_test_path or data.test_uri
            note = f"job {job} submitted; its rollout waits for the one in progress"
        else:
            job, test_path = latest.job_name, latest.test_path
            note = f"{change} only (job {job} kept); it applies when the rollout in progress ends"
        now = self.clock()
        queued = QueuedVersion(
            **_version_fields(validated, spec, policy), job_name=job, commit=commit, pr=pr, test_path=test_path, submitted_at=now
        )
        updated = record.model_copy(
            update={"queued": queued, "history": [*record.history, HistoryEntry(at=now, status=record.status, note=note)]}
        )
        c = updated.cursor
        if c is not None and c.plan == "hold":  # a newer version is the decision: the held candidate is removed
            why = f"superseded by a new version while held ({c.reason or 'gate failed'})"
            updated = self._rolling_back(updated, c, why, now, ending="rejected")
        self.ledger.put(updated, version)
        if c is not None and c.plan == "hold":
            self._schedule(updated, now)
        return updated

    # -- events ---------------------------------------------------------------------------------
    def on_job_event(self, body: Any) -> list[Decision]:
        """Record what an event says and schedule a look at the job: no backend call, no waiting."""
        try:
            events = parse_each(body)
        except EventFormatError as exc:
            log.warning("ignored a malformed body: %s", exc)
            return [Decision("", None, "ignored", f"malformed: {exc}")]
        decisions = []
        for event in events:
            if isinstance(event, EventFormatError):  # this one is unreadable or not about a run; the others go on
                reason = str(event) if isinstance(event, NotARunEvent) else f"malformed: {event}"
                log.info("ignored an event: %s", reason)
                decisions.append(Decision("", None, "ignored", reason))
                continue
            decision = self._one_event(event)
            if event.id:
                self.ledger.remember_event(
                    event.id,
                    {
                        "type": event.type,
                        "run": decision.run,
                        "job": event.run_id,
                        "action": decision.action,
                        "reason": decision.reason,
                        "at": self.clock(),
                    },
                )
            decisions.append(decision)
        return decisions

    def _one_event(self, event: JobEvent) -> Decision:
        run = event.tags.get(naming.TAG_RUN)
        if not run:
            return self._ignore(event, None, "not a run of this repository (no gitops_run tag)")
        owner = event.tags.get(naming.TAG_REPO)
        if owner is not None and not same_repository(owner, self.repo):
            return self._ignore(event, run, f"a run of repository {owner}, not this one")
        if self.topics and (event.topic or "").lower() not in self.topics:
            return self._ignore(event, run, f"topic {event.topic or '(none)'} is not a workspace of ours")
        if event.run_type and event.run_type != "azureml.PipelineRun":
            return self._ignore(event, run, f"run type {event.run_type} is a child step")
        current = self.ledger.get(run)
        if current is None:
            return self._ignore(event, run, f"not a run of this repository (no run named '{run}' in the ledger)")
        record = current[0]
        if record.queued is not None and record.queued.job_name == event.run_id:
            return Decision(event.id, run, "recorded", "the queued version's job: checked when the rollout in progress ends")
        if record.job_name != event.run_id:
            return self._ignore(event, run, f"job {event.run_id} is not the run's current job {record.job_name}")
        if event.id and event.id in record.processed_events:
            return Decision(event.id, run, "duplicate", "event already processed")
        if event.outcome is None:
            return self._ignore(event, run, f"status {event.run_status} needs no action")
        return self._start(run, f"job event: {event.outcome}", event.id)

    def _ignore(self, event: JobEvent, run: str | None, reason: str) -> Decision:
        log.info("ignored event %s (%s): %s", event.id, event.short_type, reason)
        return Decision(event.id, run, "ignored", reason)

    def _start(self, run: str, why: str, event_id: str = "") -> Decision:
        """Put a 'check the job' cursor on a run that waits for its job, once, and schedule it."""
        now = self.clock()

        def begin(record: RunRecord) -> RunRecord | None:
            if record.cursor is not None or record.status not in AWAITING_JOB:
                return None  # a rollout already runs, or the run is past its job
            events = [*record.processed_events, event_id] if event_id else record.processed_events
            return self._with_cursor(record, now).model_copy(update={"processed_events": events})

        try:
            started = update(self.ledger, run, begin)
        except ConflictError:
            started = None
        if started is None:
            return Decision(event_id, run, "duplicate", "already handled by another delivery")
        self._schedule(started, now)
        return Decision(event_id, run, "scheduled", f"{why}: the job is checked next")

    def _with_cursor(self, record: RunRecord, now: float, step: str = "check_job") -> RunRecord:
        endpoint = record.endpoint
        if endpoint is None and record.spec:  # records written at submit always name it; older ones may not
            endpoint = naming.endpoint_name(RunSpec.model_validate(record.spec), self.name_salt)
        _, first = steps.find("rollout", step)
        cursor = Cursor(
            step=step,
            entered_at=now,
            not_before=now,
            deadline_at=now + self._timeout(record, first.phase),
            started_at=now,
            endpoint=endpoint,
        )
        # A rollout starts the endpoint's server: a stop a person made before it is over.
        return record.model_copy(
            update={"cursor": cursor, "endpoint": endpoint, "updated_at": now, "rollout_steps": [], "stopped_at": None}
        )

    def _timeout(self, record: RunRecord, phase: str) -> float:
        default = steps.DEFAULT_HOLD_S if phase == "hold" else steps.DEFAULT_TIMEOUT_S  # records from before the gate
        return float(record.timeouts.get(phase) or default)

    def _schedule(self, record: RunRecord, now: float) -> None:
        if self.queue is not None and record.cursor is not None:
            self.queue.send(StepMessage(record.run, record.cursor.step, record.cursor.not_before), now)

    # -- the step machine --------------------------------------------------------------------------
    def advance(self, run: str) -> Decision:
        """Take the run's due steps until one must wait (or this invocation's budget is spent), then schedule."""
        token = uuid.uuid4().hex
        now = self.clock()
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
            return record.model_copy(update={"claim": token, "claimed_until": now + self.claim_lease_s})

        try:
            record = update(self.ledger, run, claim)
        except ConflictError:
            record, why = None, ["another process claimed it first"]
        except NotFoundError:
            record, why = None, [f"no run named '{run}' in the ledger"]
        if record is None:
            return Decision("", run, "idle", why[0] if why else "nothing to do")
        try:
            return self._walk(record, token)
        except Exception:  # a bug, or the ledger unreachable: free the run for the retry (a dead process keeps it until the lease ends)
            self._release(record, token)
            raise

    def _walk(self, record: RunRecord, token: str) -> Decision:
        run = record.run
        started = time.monotonic()
        for _ in range(MAX_STEPS_PER_ADVANCE):
            assert record.cursor is not None
            outcome = self._take_step(record, record.cursor)
            next_record = self._apply(record, outcome, token)
            if next_record is None:
                return Decision("", run, "idle", "the claim was lost to another process")
            record = next_record
            if record.cursor is None:
                self._finished(record)
                return Decision("", run, record.status, outcome.note)
            if outcome.kind == "wait":
                self._schedule(record, self.clock())
                return Decision("", run, "waiting", f"{record.cursor.step}: {outcome.note}")
            if outcome.kind == "again" and self.queue is not None:  # one slice of a long step per queued invocation
                record = self._release(record, token) or record
                self._schedule(record, self.clock())
                return Decision("", run, "continues", f"{record.cursor.step if record.cursor else '-'}: {outcome.note}")
            if time.monotonic() - started > self.step_budget_s:
                break
        record = self._release(record, token) or record  # the rest in a new invocation, at once
        self._schedule(record, self.clock())
        return Decision("", run, "continues", f"next: {record.cursor.step if record.cursor else '-'}")

    def _take_step(self, record: RunRecord, cursor: Cursor) -> steps.Outcome:
        now = self.clock()
        _, step = steps.find(cursor.plan, cursor.step)
        if now >= cursor.deadline_at:
            return steps.fail(
                f"{cursor.step} did not finish within {human(self._timeout(record, step.phase))}"
                + (f" ({cursor.last})" if cursor.last else "")
            )
        try:
            reader = (lambda: self.reader_for(record.backend)) if self.reader_for is not None else None  # type: ignore[misc]
            return step.run(steps.StepContext(record, cursor, self.backend_for(record.backend), now, reader, self.repo))
        except TransientBackendError as exc:  # throttled, a 5xx, a timeout: look again later, until the deadline
            return steps.wait(steps.backoff(cursor.attempt), exc.headline)
        except GitopsError as exc:
            return steps.fail(f"{cursor.step}: {exc.headline}")
        except Exception as exc:  # a bug or an SDK surprise must not strand the run: it rolls back
            log.exception("run %s: step %s raised", record.run, cursor.step)
            return steps.fail(f"{cursor.step}: {type(exc).__name__}: {exc}"[:300])

    def _apply(self, before: RunRecord, outcome: steps.Outcome, token: str) -> RunRecord | None:
        """Record a step's outcome under our claim; None when another process holds the run now."""
        now = self.clock()

        def change(record: RunRecord) -> RunRecord | None:
            cursor = record.cursor
            if record.claim != token or cursor is None:
                return None
            r = record.model_copy(update={**outcome.record, "updated_at": now, "claimed_until": now + self.claim_lease_s})
            if outcome.kind == "wait":
                waited = cursor.model_copy(
                    update={**outcome.cursor, "attempt": cursor.attempt + 1, "not_before": now + outcome.wait_s, "last": outcome.note}
                )
                return r.model_copy(update={**RELEASED, "cursor": waited})
            if outcome.kind == "end":
                assert outcome.status is not None
                ended = r.moved(outcome.status, outcome.note, now)
                return ended.model_copy(update=ENDED)
            if outcome.kind == "fail":
                return self._failed(r, cursor, outcome.note, now)
            if outcome.kind == "again":  # the same step at once: a slice of its work is recorded
                more = cursor.model_copy(update={**outcome.cursor, "not_before": now, "last": outcome.note})
                return r.model_copy(update={"cursor": more})
            if outcome.kind == "hold":
                return self._held(r, cursor.model_copy(update=dict(outcome.cursor)), outcome.note, now)
            return self._next(r, cursor.model_copy(update=dict(outcome.cursor)), outcome.note, now)

        try:
            return update(self.ledger, before.run, change)
        except ConflictError:
            return None

    def _next(self, record: RunRecord, cursor: Cursor, note: str, now: float) -> RunRecord:
        index, step = steps.find(cursor.plan, cursor.step)
        plan = steps.PLANS[cursor.plan]
        entry = [HistoryEntry(at=now, status=record.status, note=note)] if note else []  # a step with nothing to say says nothing
        noted = record.model_copy(update={"history": [*record.history, *entry]})
        if index + 1 == len(plan):
            return self._complete(noted, cursor, now)
        following = plan[index + 1]
        deadline = cursor.deadline_at if following.phase == step.phase else now + self._timeout(record, following.phase)
        moved = _entering(cursor, cursor.plan, following.name, now, deadline)
        status = steps.RUNNING_STATUS[cursor.plan]
        if noted.status != status:
            noted = noted.moved(status, f"{cursor.plan} starts", now)
        return noted.model_copy(update={"cursor": moved})

    def _held(self, record: RunRecord, cursor: Cursor, reason: str, now: float) -> RunRecord:
        """The candidate failed the gate: it stays at 0%, the serving deployment keeps its traffic, and the run waits
        for a person's decision until its hold runs out (then the candidate is removed and the run is rejected)."""
        held = _entering(cursor, "hold", steps.HOLD[0].name, now, now + self._timeout(record, "hold"), reason=reason)
        log.warning("run %s is held: %s", record.run, reason)
        return record.moved("held", reason, now).model_copy(update={"cursor": held, "error": None})

    def _failed(self, record: RunRecord, cursor: Cursor, reason: str, now: float) -> RunRecord:
        """A rollout step failed: roll back. A rollback step failed: stop, and say what was left where. A hold that
        ran out: the candidate is removed and the run is rejected."""
        if cursor.plan == "hold":
            hours = self._timeout(record, "hold") / 3600
            reason = f"held for {hours:g} h without a decision: the candidate is removed ({cursor.reason or 'gate failed'})"
            cursor = cursor.model_copy(update={"ending": "rejected"})
        if cursor.plan == "rollback":
            note = f"rollback did not finish: {reason}; check endpoint {cursor.endpoint} (gitops status, reconcile)"
            return record.moved("failed", note, now).model_copy(update={**ENDED, "error": f"{cursor.reason}; {note}"})
        log.warning("run %s rolls back: %s", record.run, reason)
        return self._rolling_back(record, cursor, reason, now).model_copy(update={"error": reason})

    def _rolling_back(self, record: RunRecord, cursor: Cursor, reason: str, now: float, **more: Any) -> RunRecord:
        """The run on the rollback plan's first step: the previous deployment gets its traffic back, the candidate goes."""
        first = steps.ROLLBACK[0]
        back = _entering(cursor, "rollback", first.name, now, now + self._timeout(record, first.phase), reason=reason, **more)
        return record.moved("rolling_back", reason, now).model_copy(update={"cursor": back})

    def _complete(self, record: RunRecord, cursor: Cursor, now: float) -> RunRecord:
        if cursor.plan == "rollout":
            note = f"{cursor.deployment} takes 100% on {cursor.endpoint}"
            return record.moved("live", note, now).model_copy(
                update={
                    **ENDED,
                    "endpoint": cursor.endpoint,
                    "deployment": cursor.deployment,
                    "previous_deployment": cursor.previous,
                    "error": None,
                    "serving_job": record.job_name,
                    "serving_model_version": cursor.model_version or record.model_version,
                    "previous_serving_job": record.serving_job if record.serving_job != record.job_name else record.previous_serving_job,
                }
            )
        return record.moved(cursor.ending or "rolled_back", cursor.reason or "", now).model_copy(
            update={**ENDED, "endpoint": cursor.endpoint, "deployment": cursor.previous, "error": cursor.reason}
        )

    def _release(self, record: RunRecord, token: str) -> RunRecord | None:
        def release(r: RunRecord) -> RunRecord | None:
            return r.model_copy(update=RELEASED) if r.claim == token else None

        try:
            return update(self.ledger, record.run, release)
        except ConflictError:
            return None

    def _finished(self, record: RunRecord) -> None:
        """After a rollout ends: the report of a live run, and the queued version's turn."""
        if record.status == "live":
            self._attach_report(record)
        if record.queued is not None:
            self._start_queued(record.run)

    def _start_queued(self, run: str) -> None:
        now = self.clock()

        def switch(record: RunRecord) -> RunRecord | None:
            q = record.queued
            if q is None or record.cursor is not None:
                return None
            same_job = q.job_name == record.job_name
            spec = RunSpec.model_validate(q.spec)
            nxt = record.model_copy(
                update={
                    **q.model_dump(include=set(VERSION_FIELDS)),
                    "policy": q.policy or record.policy,
                    "job_name": q.job_name,
                    "previous_job": record.previous_job if same_job else record.job_name,
                    "commit": q.commit,
                    "pr": q.pr,
                    "test_path": q.test_path,
                    "model_name": naming.model_name(spec),
                    "endpoint": naming.endpoint_name(spec, self.name_salt),
                    "queued": None,
                    "smoke": None,
                    "gate": None,
                }
            )
            note = f"queued version: redeploy of job {q.job_name}" if same_job else f"queued version: job {q.job_name}"
            return self._with_cursor(nxt.moved("completed" if same_job else "submitted", note, now), now)

        try:
            switched = update(self.ledger, run, switch)
        except ConflictError:
            switched = None
        if switched is not None:
            self._schedule(switched, now)

    def _attach_report(self, record: RunRecord) -> None:
        """Keep the run report's summary with the record; a missing report never fails a live run."""
        if self.reader_for is None:
            return
        from gitops.report.build import build_report

        try:
            summary = build_report(record, self.reader_for(record.backend).job_metrics(record.job_name)).summary()
        except Exception as exc:  # noqa: BLE001  (metrics unreachable, or MLflow missing here: never fails a live run)
            log.warning("run %s: no report: %s", record.run, exc.headline if isinstance(exc, GitopsError) else type(exc).__name__)
            return

        def attach(r: RunRecord) -> RunRecord:
            # The version before keeps its summary beside: its smoke test and gate are not in any metrics store.
            kept = r.report if r.report and r.report.get("job_name") != summary.get("job_name") else r.previous_report
            return r.model_copy(update={"report": summary, "previous_report": kept})

        update(self.ledger, record.run, attach)

    def give_up(self, run: str, reason: str) -> None:
        """A step message that kept failing (the host moves it to the poison queue): record why on the run and
        stop there. Nothing is deleted: the endpoint stays as the last step left it, for a person to look at."""
        now = self.clock()

        def stop(record: RunRecord) -> RunRecord | None:
            if record.cursor is None:
                return None
            c = record.cursor
            note = (
                f"step {c.step} of the {c.plan} kept failing and was given up: {reason}; "
                f"endpoint {c.endpoint} left as it is (nothing deleted)"
            )
            return record.moved("failed", note, now).model_copy(update={**ENDED, "error": note})

        update(self.ledger, run, stop)

    # -- drivers ---------------------------------------------------------------------------------
    def settle(self, run: str, sleep: Callable[[float], None] = time.sleep, timeout_s: float = 3 * 3600) -> RunRecord:
        """Drive one run in this process until no step is pending (the CLI; tests with a virtual clock's sleep)."""
        deadline = self.clock() + timeout_s
        while True:
            got = self.ledger.get(run)
            if got is None:
                raise GitopsError(f"no run named '{run}' in the ledger")
            record = got[0]
            if record.cursor is None or record.cursor.plan == "hold":  # ended, or waiting for a person
                return record
            now = self.clock()
            if now > deadline:
                raise GitopsError(f"run '{run}' still at step {record.cursor.step} after {timeout_s:.0f}s", hint="see `gitops status`")
            if record.cursor.not_before > now:
                sleep(min(record.cursor.not_before - now, 5.0))
                continue
            if record.claim and (record.claimed_until or 0) > now:
                sleep(1.0)
                continue
            self.advance(run)

    # -- reconcile -------------------------------------------------------------------------------
    def reconcile(self, only: str | None = None) -> list[Decision]:
        """The safety net (timer or CLI): start runs whose job ended without an event reaching us, and take up
        cursors whose message is overdue. A record that cannot be read, or whose run fails here, is a ``skipped``
        decision naming it and why, and the others carry on."""
        decisions = []
        records = self.ledger.list()
        for where, why in self.ledger.damaged:
            log.warning("reconcile: %s (skipped)", why)
            run = Path(where).stem
            if not only or run == only:
                decisions.append(Decision("", run, SKIPPED, why))
        for record in records:
            if only and record.run != only:
                continue
            try:
                decision = self._reconcile_one(record)
            except GitopsError as exc:
                log.warning("reconcile %s: %s (skipped)", record.run, exc.headline)
                decision = Decision("", record.run, SKIPPED, exc.headline)
            except Exception as exc:  # a bug or a record this version misreads: never the end of the other runs
                log.exception("reconcile %s raised", record.run)
                decision = Decision("", record.run, SKIPPED, f"{type(exc).__name__}: {exc}"[:300])
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _reconcile_one(self, record: RunRecord) -> Decision | None:
        now = self.clock()
        if record.serves:
            restarted = self._restart_if_down(record)
            if restarted is not None:
                return restarted
        if record.cursor is None and record.status in ROLLING:
            return self._adopt_legacy(record, now)
        if record.cursor is not None:
            held = record.claim is not None and (record.claimed_until or 0) > now
            if held or record.cursor.not_before > now:
                return None
            return self._nudge(record, now, f"step {record.cursor.step} was overdue")
        if record.status not in AWAITING_JOB:
            return None
        job = self.backend_for(record.backend).get_job(record.job_name)
        if job is None or not job.state.terminal:
            if job is not None and job.state is JobState.RUNNING and record.status == "submitted":
                update(self.ledger, record.run, lambda r: r.moved("running", "", now) if r.status == "submitted" else None)
            return None
        decision = self._start(record.run, f"job {job.state.value} (found by reconcile)", f"reconcile:{record.job_name}")
        if decision.action == "scheduled" and self.queue is None:  # one reconcile takes the run as far as it goes
            return self._drive_here(record.run)
        return decision

    def _restart_if_down(self, record: RunRecord) -> Decision | None:
        """A run whose serving deployment's server died (a backend that runs its own servers) is started again; one a
        person stopped (``RunRecord.stopped_at``) stays down."""
        backend = self.backend_for(record.backend)
        if Feature.SERVER_RESTART in backend.unsupported or not record.endpoint or not record.deployment:
            return None
        if record.stopped_at is not None:  # a person stopped it: down on purpose, not dead
            return None
        info = backend.get_endpoint(record.endpoint)
        serving = info.deployment(record.deployment) if info else None
        if serving is None or serving.healthy:
            return None
        backend.begin_endpoint(record.endpoint, {})
        log.warning("run %s: endpoint %s was down; started again", record.run, record.endpoint)
        return Decision("", record.run, "restarted", f"endpoint {record.endpoint} was down; started again")

    def _drive_here(self, run: str) -> Decision:
        """No queue to hand the rest to (the CLI): take the run's steps here until one waits or the run ends."""
        decision = self.advance(run)
        for _ in range(MAX_ADVANCES_HERE):
            if decision.action != "continues":
                break
            decision = self.advance(run)
        return decision

    def _nudge(self, record: RunRecord, now: float, why: str) -> Decision:
        if self.queue is None:
            return self._drive_here(record.run)
        self._schedule(
            record.model_copy(update={"cursor": record.cursor.model_copy(update={"not_before": now})}) if record.cursor else record, now
        )
        return Decision("", record.run, "scheduled", why)

    def _adopt_legacy(self, record: RunRecord, now: float) -> Decision | None:
        """A record written before rollouts had cursors ("deploying" with a one-hour claim): once that claim has
        run out, continue it from registration (every step is idempotent: the same job registers the same version,
        a deployment that exists is reused)."""
        if (record.claimed_until or 0) > now:
            return None

        def adopt(r: RunRecord) -> RunRecord | None:
            if r.cursor is not None or r.status not in ROLLING:
                return None
            return self._with_cursor(r.moved("deploying", "continued by the step machine", now), now, step="register")

        adopted = update(self.ledger, record.run, adopt)
        return self._nudge(adopted, now, "a rollout from an older version continues") if adopted is not None else None
