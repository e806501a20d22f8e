"""Versions of a run: a merged spec is acted on as far as it changed (a new job, a redeploy, settings only, nothing),
waits in the queue behind a rollout in progress, supersedes a job still running, or is tried again (``retry``).

Terraform tells "replace" from "update in place"; so does ``submit``: a change to the training sections starts a
job, one to the deployment sections deploys the model already trained again, one to the settings is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitops.backends.base import JobState
from gitops.errors import ConfigurationError, ConflictError, GitopsError, NotFoundError, SpecError
from gitops.ledger.model import HistoryEntry, QueuedVersion, RunRecord, endpoint_move, lookup, stored_spec, update
from gitops.ledger.transitions import AWAITING_JOB, ROLLING, Asker, RunStatus
from gitops.lifecycle.moves import rolling_back, with_cursor
from gitops.lifecycle.parts import Parts
from gitops.ownership import IDENTITY_HINT, missing_identity, same_repository
from gitops.spec import naming
from gitops.spec.findings import Code, error
from gitops.spec.model import RunSpec
from gitops.spec.policy import Policy
from gitops.spec.validate import SpecValidation, ValidSpec

if TYPE_CHECKING:
    from gitops.review.check import CheckedSpec

MAX_ATTEMPTS = 3  # job attempts of one spec version (the first and two retries)

# What a version of a spec sets on its run, whether it starts now, waits in the queue or keeps the job it follows.
# Built once, from the checked spec, when the version is submitted: nothing later parses the stored spec to learn them.
VERSION_FIELDS = (
    "digest",
    "training_digest",
    "deployment_digest",
    "spec",
    "params",
    "timeouts",
    "gate_rules",
    "policy",
    "model_name",
    "endpoint",
)


def _located(exc: SpecError, validated: ValidSpec) -> SpecError:
    """A spec error found after validation (at submit), placed on the spec's file and lines."""
    findings = validated.locate(exc.findings)
    first = next((f for f in findings if f.is_error), None)
    return SpecError(first.headline() if first else f"{validated.file}: {exc.headline}", findings, first.hint if first else exc.hint)


def _version_fields(lc: Parts, validated: ValidSpec, policy: Policy) -> dict[str, Any]:
    """What a version of a run is, computed once: its digests, its spec and parameters, the names it registers and
    serves under, its deadlines, its gate and the policy it was checked against."""
    spec = validated.spec
    rules = policy.first_environment()  # where a merge trains and rolls out: its gate and deadlines
    return {
        "digest": validated.digest,
        "training_digest": validated.digests.training,
        "deployment_digest": validated.digests.deployment,
        "spec": spec.model_dump(mode="json"),
        "params": validated.params,
        "timeouts": rules.rollout.deadlines(spec, spec.deploy.gate.hold_for or rules.gate.hold_for),
        "gate_rules": rules.gate.resolve(spec),
        "policy": policy.model_dump(mode="json"),
        "model_name": naming.model_name(spec),
        "endpoint": naming.endpoint_name(spec, lc.name_salt),
    }


def _refuse_another_environment(lc: Parts, spec: RunSpec, policy: Policy) -> None:
    """With environments in gitops.yaml, a merge trains and rolls out in the first one only: a lifecycle set up for
    another workspace (the Function or a shell pointed elsewhere) acts on nothing."""
    if not policy.environments:
        return
    first = policy.environments[0]
    if not lc.backend_for(spec.backend).is_workspace(first.workspace):
        where = first.workspace.directory or f"{first.workspace.resource_group}/{first.workspace.name}"
        raise ConfigurationError(
            f"a merge of {spec.name} trains and rolls out in {first.name} ({where}), which is not the workspace set up here",
            hint="point it at the first environment's workspace: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and "
            "AZUREML_WORKSPACE_NAME (or GITOPS_WORKSPACE for a local directory)",
        )


def _serving_job(record: RunRecord) -> str | None:
    """The job whose model serves: what a new version's gate compares with (records before the gate: a live one's)."""
    return record.serving_job or (record.job_name if record.status == "live" else None)


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    from gitops.spec.diff import field_changes

    return [c.path for c in field_changes(old, new)]


def check(lc: Parts, spec: SpecValidation | ValidSpec, policy: Policy | None = None) -> CheckedSpec:
    """The one spec check (``check_specs``) with this lifecycle's backends, ledger and repository, for a caller
    that has not checked: ``SpecError`` on the spec's lines, or the value ``submit`` takes."""
    from gitops.review.check import check_specs

    (result,) = check_specs([spec], policy or lc.policy, lc.backend_for, salt=lc.name_salt, previous=lookup(lc.ledger))
    return result.passed()


def submit(lc: Parts, checked: CheckedSpec, commit: str | None = None, pr: str | None = None) -> RunRecord:
    """Act on a version of a spec as far as it changed, as Terraform tells "replace" from "update in place": a
    change to the training sections starts a job; one to the deployment sections deploys the model already
    trained again; one to the settings only is recorded; the same version again changes nothing. The spec passed
    the one check (``check``): nothing of it is checked again; the run keeps the deadlines of the policy it was
    checked against (the spec's own ``deploy.timeouts`` win)."""
    validated, policy = checked.valid, checked.policy
    spec = validated.spec
    _refuse_another_environment(lc, spec, policy)
    existing = lc.ledger.get(spec.name)
    if existing is None:
        return _new_job(lc, validated, spec, commit, pr, policy, None)
    record, version = existing
    refusal = endpoint_move(record, naming.endpoint_name(spec, lc.name_salt))
    if refusal is not None:  # the run's state, read now (the check read it too, maybe before another version landed)
        raise _located(
            SpecError(refusal[0], [error("deploy.endpoint", refusal[0], refusal[1], code=Code.ENDPOINT_MOVED)], hint=refusal[1]), validated
        )
    if record.queued is not None:  # the newest version is the one waiting for the rollout in progress
        return _queue_version(lc, record, version, validated, spec, commit, pr, policy)
    change = record.digests().change_to(validated.digests)
    job_failed = record.status in ("failed", "canceled") and not _job_completed(lc, record)
    if change == "retrain" or (job_failed and change != "unchanged"):
        if record.cursor is not None or record.status in ROLLING:
            return _queue_version(lc, record, version, validated, spec, commit, pr, policy)
        return _new_job(lc, validated, spec, commit, pr, policy, existing)
    if change == "unchanged" and record.status not in ("retired", "failed", "canceled"):
        return _policy_applied(lc, record, version, policy)  # the same version again: the existing job, not a second GPU bill
    if job_failed:
        return retry(lc, spec.name, by=Asker.VERSION)  # the same version whose job failed: a new attempt, not the old failed job
    now = lc.clock()
    updated = _as_version(lc, record, validated, spec, commit, pr, policy)
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
        lc.ledger.put(applied, version)
        return applied
    if record.status in ROLLING:
        return _queue_version(lc, record, version, validated, spec, commit, pr, policy)
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
        lc.ledger.put(noted, version)
        return noted
    # Live, rolled back, retired, or failed after its job completed: the trained model is deployed again.
    why = (
        "brought back by a new submit"
        if record.status == "retired"
        else f"redeploy only: the model of job {record.job_name} is deployed again"
    )
    _refuse_shared_endpoint(lc, spec.name, updated.endpoint or "")
    again = with_cursor(
        lc, updated.moved(RunStatus.COMPLETED, why, now, by=Asker.VERSION).model_copy(update={"smoke": None, "error": None}), now
    )
    lc.ledger.put(again, version)
    lc.schedule(again, now)
    return again


def _policy_applied(lc: Parts, record: RunRecord, version: str, policy: Policy) -> RunRecord:
    """The same version submitted with another gitops.yaml (deploy.yml submits every spec when the policy changes):
    the run keeps the policy it is now under, and nothing else changes: no job, no redeploy. Its environments and
    registry are what its promotions follow; a single-workspace run that gains environments is the first
    environment's state as it stands. The deadlines and gate of the version it runs stay those it was checked with."""
    now_policy = policy.model_dump(mode="json")
    if record.policy == now_policy:
        return record
    note = "gitops.yaml applied, nothing redeployed" + (
        f" (environments: {', '.join(e.name for e in policy.environments)})" if policy.environments else ""
    )
    applied = record.model_copy(
        update={
            "policy": now_policy,
            "updated_at": lc.clock(),
            "history": [*record.history, HistoryEntry(at=lc.clock(), status=record.status, note=note)],
        }
    )
    lc.ledger.put(applied, version)
    return applied


def _new_job(
    lc: Parts,
    validated: ValidSpec,
    spec: RunSpec,
    commit: str | None,
    pr: str | None,
    policy: Policy,
    existing: tuple[RunRecord, str] | None,
) -> RunRecord:
    """The first version of a run, or one that changed what is trained: a new job."""
    now = lc.clock()
    history = list(existing[0].history) if existing else []  # a run's history spans its versions
    if existing is not None and existing[0].status in ("submitted", "running"):
        record = existing[0]
        if not spec.lifecycle.supersede:
            raise ConflictError(
                f"run '{spec.name}' has job {record.job_name} still {record.status}",
                hint="wait for it, cancel it, or set lifecycle.supersede: true",
            )
        lc.backend_for(record.backend).cancel_job(record.job_name)
        history.append(HistoryEntry(at=now, status="superseded", note=f"job {record.job_name} canceled"))
    fields = _version_fields(lc, validated, policy)
    _refuse_shared_endpoint(lc, spec.name, fields["endpoint"])
    status, data = _start_job(lc, spec, validated, naming.job_name(spec.name, validated.training_digest), commit, pr)
    record = RunRecord(
        run=spec.name,
        backend=spec.backend,
        job_name=status.name,
        **fields,
        commit=commit,
        pr=pr,
        deployment=existing[0].deployment if existing else None,  # what still serves
        # ... its kind and where a client calls it, and what is kept beside it for a rollback until the new one goes live
        **(_serving_fields(existing[0]) if existing else {}),
        history=history,
        test_path=data.local_test_path or data.test_uri,
        previous_job=existing[0].job_name if existing else None,
        serving_job=_serving_job(existing[0]) if existing else None,
        serving_model_version=existing[0].serving_version if existing else None,
        # the report of what serves (and of the version before it) stays until this version goes live: what the
        # comparison of a held or rolled-back candidate reads the previous smoke test and gate from
        report=existing[0].report if existing else None,
        previous_report=existing[0].previous_report if existing else None,
        provisioned=existing[0].provisioned if existing else {},  # how long its provisionings took: the next waits' pacing
    ).moved(RunStatus.SUBMITTED, f"job {status.name}", now, by=Asker.VERSION)
    lc.ledger.put(record, existing[1] if existing else None)
    return record


def _serving_fields(record: RunRecord) -> dict[str, Any]:
    """What serves and what is kept beside it, carried into a record of a new version (nothing moves until it is live)."""
    keys = ("serving_kind", "scoring_uri", "previous_deployment", "previous_serving_kind", "previous_kept_until", "previous_scoring_uri")
    return {k: getattr(record, k) for k in keys}


def _as_version(
    lc: Parts, record: RunRecord, validated: ValidSpec, spec: RunSpec, commit: str | None, pr: str | None, policy: Policy
) -> RunRecord:
    """The record carrying a new version of the spec that keeps its job (a redeploy, or settings only)."""
    return record.model_copy(
        update={
            **_version_fields(lc, validated, policy),
            "commit": commit or record.commit,
            "pr": pr or record.pr,
            "updated_at": lc.clock(),
        }
    )


def _job_completed(lc: Parts, record: RunRecord) -> bool:
    """Whether the run's job completed (a run that failed in its rollout has a trained model to deploy)."""
    try:
        job = lc.backend_for(record.backend).get_job(record.job_name)
    except GitopsError:
        return False
    return job is not None and job.state is JobState.COMPLETED


def retry(lc: Parts, run: str, who: str = "", max_attempts: int = MAX_ATTEMPTS, by: Asker = Asker.PERSON) -> RunRecord:
    """A new attempt of a version whose job failed or was canceled: a new job (``-a2``, ``-a3``...), at most
    ``max_attempts`` in all. Idempotent: asked again while the new attempt stands, the record is returned."""
    got = lc.ledger.get(run)
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
    spec = stored_spec(record)  # the backend submits the whole spec again; its names are the record's
    attempt = record.attempt + 1
    job = naming.job_name(record.run, record.digests().training, attempt)
    validated = ValidSpec(f"runs/{spec.name}.yaml", spec, dict(record.params), record.digests())
    status, data = _start_job(lc, spec, validated, job, record.commit, record.pr)
    now = lc.clock()
    retried = record.moved(
        RunStatus.SUBMITTED, f"retry: attempt {attempt}, job {status.name}" + (f" (by {who})" if who else ""), now, by=by
    )
    retried = retried.model_copy(
        update={
            "job_name": status.name,
            "attempt": attempt,
            "error": None,
            "test_path": data.local_test_path or data.test_uri or record.test_path,
        }
    )
    lc.ledger.put(retried, version)
    return retried


def _refuse_shared_endpoint(lc: Parts, run: str, endpoint: str) -> None:
    """Two runs never share an endpoint: the second would move the first one's traffic to its own model."""
    for other in lc.ledger.list():
        if other.run != run and other.endpoint == endpoint and other.status != "retired":
            raise ConflictError(
                f"endpoint {endpoint} already serves run '{other.run}'",
                hint=f"give this spec its own deploy.endpoint (or retire run '{other.run}' first)",
            )


def _start_job(lc: Parts, spec: RunSpec, validated: ValidSpec, job: str, commit: str | None, pr: str | None) -> Any:
    backend = lc.backend_for(spec.backend)
    tags = naming.job_tags(spec.name, lc.repo, validated.training_digest, commit, pr)
    nameless = missing_identity(spec.backend, lc.repo)
    if nameless:
        raise ConfigurationError(nameless, hint=IDENTITY_HINT)
    try:
        model = backend.resolve_model(spec)
        data = backend.prepare_data(spec, job)
        status = backend.submit(spec, validated.params, job, tags, model, data)
    except SpecError as exc:  # the backend's own checks (model, compute, quota): on the spec's lines
        raise _located(exc, validated) from None
    owner = status.tags.get(naming.TAG_REPO)
    if owner is not None and not same_repository(owner, lc.repo):
        # The same run name and training sections in another repository give the same deterministic job name.
        raise ConflictError(
            f"job {job} was submitted by repository {owner}, not this one ({lc.repo})",
            hint="give the run another name (runs/<name>.yaml and name:), or change its training sections",
        )
    return status, data


def _queue_version(
    lc: Parts,
    record: RunRecord,
    version: str,
    validated: ValidSpec,
    spec: RunSpec,
    commit: str | None,
    pr: str | None,
    policy: Policy,
) -> RunRecord:
    """A new version while a rollout runs: its rollout comes after this one ends (never two rollouts on one
    endpoint, and a deployment already provisioning is not thrown away). Its job starts now when it changes
    what is trained; else it keeps the job of the version it follows."""
    latest = record.queued or record
    change = latest.digests().change_to(validated.digests)
    if change == "unchanged":
        return record
    if change == "retrain":
        status, data = _start_job(lc, spec, validated, naming.job_name(spec.name, validated.training_digest), commit, pr)
        job, test_path = status.name, data.local_test_path or data.test_uri
        note = f"job {job} submitted; its rollout waits for the one in progress"
    else:
        job, test_path = latest.job_name, latest.test_path
        note = f"{change} only (job {job} kept); it applies when the rollout in progress ends"
    now = lc.clock()
    queued = QueuedVersion(
        **_version_fields(lc, validated, policy), job_name=job, commit=commit, pr=pr, test_path=test_path, submitted_at=now
    )
    updated = record.model_copy(
        update={"queued": queued, "history": [*record.history, HistoryEntry(at=now, status=record.status, note=note)]}
    )
    c = updated.cursor
    if c is not None and c.plan == "hold":  # a newer version is the decision: the held candidate is removed
        why = f"superseded by a new version while held ({c.reason or 'gate failed'})"
        updated = rolling_back(updated, c, why, now, by=Asker.VERSION, ending=RunStatus.REJECTED)
    lc.ledger.put(updated, version)
    if c is not None and c.plan == "hold":
        lc.schedule(updated, now)
    return updated


def _names_of(lc: Parts, run: str, q: QueuedVersion) -> dict[str, str]:
    """The names a queued version registers and serves under: kept with it since it was queued; a version queued by
    an older release kept only its spec, whose names are derived once here."""
    if q.model_name is not None and q.endpoint is not None:
        return {"model_name": q.model_name, "endpoint": q.endpoint}
    spec = stored_spec(q, run)
    return {"model_name": naming.model_name(spec), "endpoint": naming.endpoint_name(spec, lc.name_salt)}


def start_queued(lc: Parts, run: str) -> None:
    """After a rollout ends: the version that waited for it takes the run (its job checked, or its redeploy begun)."""
    now = lc.clock()

    def switch(record: RunRecord) -> RunRecord | None:
        q = record.queued
        if q is None or record.cursor is not None:
            return None
        same_job = q.job_name == record.job_name
        # A later environment's version is a model trained and released: it is received, never a job checked.
        released = (
            {"model_version": q.model_version, "model_digest": q.model_digest, "approval": q.approval}
            if record.environment is not None
            else {}
        )
        nxt = record.model_copy(
            update={
                **{name: getattr(q, name) for name in VERSION_FIELDS},
                "policy": q.policy or record.policy,
                "job_name": q.job_name,
                "previous_job": record.previous_job if same_job else record.job_name,
                "commit": q.commit,
                "pr": q.pr,
                "test_path": q.test_path,
                **_names_of(lc, record.run, q),
                **released,
                "queued": None,
                "smoke": None,
                "gate": None,
            }
        )
        note = f"queued version: redeploy of job {q.job_name}" if same_job else f"queued version: job {q.job_name}"
        trained = same_job or record.environment is not None
        return with_cursor(lc, nxt.moved(RunStatus.COMPLETED if trained else RunStatus.SUBMITTED, note, now, by=Asker.VERSION), now)

    try:
        switched = update(lc.ledger, run, switch)
    except ConflictError:
        switched = None
    if switched is not None:
        lc.schedule(switched, now)
