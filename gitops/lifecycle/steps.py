"""The steps of a rollout, as data: each reads state, does one bounded thing, and says done, wait or fail.

A step makes a few backend calls and never waits for a long-running operation: it starts one
(``begin_*``) and a later step reads its provisioning state. Every step is idempotent, so a step
repeated after a crash or a duplicate message does nothing twice. ``ROLLOUT`` and ``ROLLBACK`` are the
plans the driver (``gitops.lifecycle.driver``) walks; a later plan may add steps (a gate, a hold) without
touching the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from gitops.backends.base import Backend, JobState, Provisioning
from gitops.errors import CorruptRecordError
from gitops.ledger.model import Cursor, RunRecord, stored_spec
from gitops.ledger.step_state import Answer, HeldShare, Ramp
from gitops.ledger.transitions import RunStatus
from gitops.lifecycle import gate
from gitops.lifecycle.pacing import FIRST_WAIT_S, MAX_WAIT_S, PACING, Pacing, backoff, remembered
from gitops.lifecycle.smoke import extract_reply, run_smoke_test
from gitops.ownership import IDENTITY_HINT, claim_endpoint, identity_tags, missing_identity, refusal_hint
from gitops.report.metrics import MetricsReader
from gitops.spec import naming
from gitops.spec.model import RunSpec
from gitops.spec.policy import Phase, waived_evidence
from gitops.util.durations import human

# Waits on a provisioning are paced by the run's past durations; every other wait (traffic, a hold's figures) is
# pacing.backoff's: 10 s, 20 s, 40 s, then every minute.


@dataclass(frozen=True)
class Outcome:
    """What a step answers. ``cursor``/``record`` are fields to set; ``status`` ends the rollout (kind ``end``)."""

    kind: Literal["done", "wait", "fail", "end", "again", "hold"]
    note: str = ""
    wait_s: float = 0.0
    cursor: Mapping[str, Any] = field(default_factory=dict)
    record: Mapping[str, Any] = field(default_factory=dict)
    status: RunStatus | None = None


def done(note: str = "", *, cursor: Mapping[str, Any] | None = None, record: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("done", note, cursor=cursor or {}, record=record or {})


def wait(seconds: float, note: str, *, cursor: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("wait", note, wait_s=seconds, cursor=cursor or {})


def fail(reason: str, *, record: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("fail", reason, record=record or {})


def end(status: RunStatus, note: str, *, record: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("end", note, status=status, record=record or {})


def again(note: str, *, cursor: Mapping[str, Any], record: Mapping[str, Any] | None = None) -> Outcome:
    """The same step once more, at once (a bounded slice of a longer piece of work was done and recorded)."""
    return Outcome("again", note, cursor=cursor, record=record or {})


def hold(reason: str, *, cursor: Mapping[str, Any] | None = None, record: Mapping[str, Any] | None = None) -> Outcome:
    """The candidate failed the gate: it stays at 0% and the run waits for a person (``gitops promote/rollback``)."""
    return Outcome("hold", reason, cursor=cursor or {}, record=record or {})


@dataclass
class StepContext:
    record: RunRecord
    cursor: Cursor
    backend: Backend
    now: float
    reader: Callable[[], MetricsReader] | None = None  # where the training metrics are (the gate reads them)
    repo: str = ""  # this repository's identity (owner/name): what makes a resource ours
    # Where the run's job ran and wrote its data (the first environment's workspace): a later environment's rollout
    # reads the held-out split from there, as its gate reads the training metrics. None: ``backend`` itself.
    trained_in: Backend | None = None
    pacing: Pacing = PACING  # when to look again at a provisioning (the lifecycle's; a benchmark compares others)

    @cached_property
    def spec(self) -> RunSpec:
        """Parsed when a step needs it (checking the job does not)."""
        return stored_spec(self.record)


StepFn = Callable[[StepContext], Outcome]


# -- the rollout ---------------------------------------------------------------------------------
def check_job(ctx: StepContext) -> Outcome:
    """Events are hints: the job's own state decides (level-triggered, as controllers do)."""
    job = ctx.backend.get_job(ctx.record.job_name)
    if job is None:
        return end(RunStatus.FAILED, f"job {ctx.record.job_name} does not exist", record={"error": "job not found"})
    if job.state is JobState.COMPLETED:
        return done(f"job {job.name} completed")
    if job.progress.get("next") == "submit":  # a fine-tuning job whose data was prepared first: submitted now
        return _submit_prepared(ctx)
    if job.state in (JobState.FAILED, JobState.CANCELED):
        reason = job.error or f"job {job.state.value}"
        return end(RunStatus.FAILED if job.state is JobState.FAILED else RunStatus.CANCELED, reason, record={"error": reason})
    status = RunStatus.RUNNING if job.state is JobState.RUNNING else ctx.record.status
    return end(status, f"the job is {job.state.value}: nothing to do until it ends")


def _submit_prepared(ctx: StepContext) -> Outcome:
    """The second job of a chain: the fine-tuning job, once the job that prepared its data completed. The backend's
    submit is idempotent (the job's name is deterministic), so a repeated step submits nothing twice."""
    r, spec, backend = ctx.record, ctx.spec, ctx.backend
    tags = naming.job_tags(spec.name, ctx.repo, r.training_digest or r.digest, r.commit, r.pr)
    status = backend.submit(spec, r.params, r.job_name, tags, backend.resolve_model(spec), backend.prepare_data(spec, r.job_name))
    if status.state in (JobState.FAILED, JobState.CANCELED):
        reason = status.error or f"job {status.name} {status.state.value}"
        return end(RunStatus.FAILED, reason, record={"error": reason})
    return end(RunStatus.RUNNING, f"data prepared: fine-tuning job {status.name} submitted ({status.state.value})")


def register(ctx: StepContext) -> Outcome:
    """The model the rollout deploys, registered where it serves: the job's output in the first environment; in a
    later one, the registry's copy released into it, held to the content digest the first environment proved."""
    r = ctx.record
    if r.environment is not None:
        return _receive(ctx)
    # Lineage on the model itself: a registry copy carries the tags along (an Azure ML import keeps them), so a
    # version can be traced to its repository, commit, pull request and data in every environment.
    data = ctx.spec.data
    model = ctx.backend.register_model(
        r.job_name,
        r.model_name or naming.model_name(ctx.spec),
        {
            naming.TAG_RUN: r.run,
            naming.TAG_REPO: ctx.repo,
            naming.TAG_DIGEST: r.digest,
            naming.TAG_COMMIT: r.commit or "",
            naming.TAG_PR: r.pr or "",
            naming.TAG_DATA: str(data.dataset or data.train_path or ""),
        },
    )
    return done(
        f"registered {model.name} v{model.version}",
        cursor={"model_version": model.version, "model_uri": model.uri},
        record={"model_version": model.version, "model_digest": model.tags.get(naming.TAG_CONTENT)},
    )


def _receive(ctx: StepContext) -> Outcome:
    """A later environment's register: the version released into it for the record's job (``RunRecord.received``),
    read from the registry; refused when its content digest is not the one proved where it was trained."""
    from gitops.backends.base import SharesModels
    from gitops.spec.policy import Policy

    r = ctx.record
    released = next((p for p in reversed(r.received) if p.job_name == r.job_name), None)
    if released is None:
        return fail(f"job {r.job_name}'s model was never released into {r.environment}", record={"error": "not released"})
    registry = Policy.model_validate(r.policy or {}).registry
    if registry is None or not isinstance(ctx.backend, SharesModels):
        return fail(f"the {r.backend} backend cannot read a model from a registry", record={"error": "no registry"})
    model = ctx.backend.receive_model(registry, released.model, released.version)
    found = model.tags.get(naming.TAG_CONTENT)
    if not released.digest or found != released.digest:
        why = (
            f"refused: registry model {released.model} v{released.version} hashes to {found or '(no digest)'}, "
            f"not {released.digest or '(none recorded)'}, the model proven before"
        )
        return fail(why, record={"error": why})
    return done(
        f"received {released.model} v{released.version} from the registry ({released.digest[:19]})",
        cursor={"model_version": released.version, "model_uri": model.uri},
        record={"model_name": released.model, "model_version": released.version, "model_digest": released.digest},
    )


def _kind(ctx: StepContext, what: str) -> str:
    """What a provisioning is, for its past durations: the endpoint, a deployment on its SKU, a serverless endpoint."""
    if what == "deployment":
        return f"deployment {(ctx.spec.deploy.instance_type or '').lower()}"
    return what


def _next_look(ctx: StepContext, what: str) -> float:
    c = ctx.cursor
    return ctx.pacing.next_look(ctx.record.provisioned.get(_kind(ctx, what), []), ctx.now - c.entered_at, c.attempt)


def _provisioned(ctx: StepContext, what: str) -> dict[str, Any]:
    """The record's past durations with this one (from the step's start to now), when the step waited for it."""
    if ctx.cursor.attempt == 0:  # ready at the first look: it was not provisioned now (an endpoint that existed)
        return {}
    kind = _kind(ctx, what)
    past = ctx.record.provisioned
    return {"provisioned": {**past, kind: remembered(past.get(kind, []), ctx.now - ctx.cursor.entered_at)}}


def ensure_endpoint(ctx: StepContext) -> Outcome:
    """One rule for every backend: an endpoint is ours to deploy to only when absent, or this repository's (see
    ``gitops.ownership``) and tagged with this run. Writing the tags adopts an endpoint made before gitops_repo."""
    name = ctx.cursor.endpoint
    if not name:
        return fail("the run has no endpoint name recorded", record={"error": "no endpoint name"})
    nameless = missing_identity(ctx.record.backend, ctx.repo)
    if nameless:
        return fail(f"{nameless}; {IDENTITY_HINT}")
    if ctx.cursor.serverless:  # each version gets a serverless endpoint of its own (create_deployment makes it)
        r = ctx.record
        serving = r.deployment if r.status != "retired" else None
        kind = "serverless" if r.serving_kind == "serverless" else "managed"
        note = f"serverless: the version gets an endpoint of its own; {serving or 'nothing'} serves meanwhile" + (
            f" ({kind})" if serving else ""
        )
        return done(note, cursor={"previous": serving, "previous_serverless": bool(serving) and r.serving_kind == "serverless"})
    info = ctx.backend.get_endpoint(name)
    if info is not None:
        got = claim_endpoint(info, ctx.record, ctx.repo)
        if not got.ours:
            return fail(f"endpoint {name}: {got.reason}; {refusal_hint(name, ctx.repo, got)}")
        owner = info.tags.get(naming.TAG_RUN)
        if owner != ctx.record.run:
            return fail(f"endpoint {name} belongs to run '{owner}'; two runs never share an endpoint")
    wanted = {**identity_tags(ctx.repo), naming.TAG_RUN: ctx.record.run}
    if ctx.spec.lifecycle.keep:  # on the endpoint itself: cleanup keeps it even if the run's record is lost
        wanted[naming.TAG_KEEP] = "true"
    if info is None or any(info.tags.get(k) != v for k, v in wanted.items()):
        info = ctx.backend.begin_endpoint(name, wanted)
    serving = ctx.record.deployment or next((d for d, pct in info.traffic.items() if pct > 0), None)
    on_serverless = bool(ctx.record.deployment) and ctx.record.serving_kind == "serverless"
    return done(f"endpoint {name} {info.state.value}", cursor={"previous": serving, "previous_serverless": on_serverless})


def await_endpoint(ctx: StepContext) -> Outcome:
    name = ctx.cursor.endpoint or ""
    if ctx.cursor.serverless:
        return done()
    info = ctx.backend.get_endpoint(name)
    if info is None:
        return wait(backoff(ctx.cursor.attempt), f"endpoint {name} not visible yet")
    if info.state is Provisioning.SUCCEEDED:
        return done(f"endpoint {name} ready", cursor={"scoring_uri": info.scoring_uri or None}, record=_provisioned(ctx, "endpoint"))
    if info.state.settled:
        return fail(f"endpoint {name} provisioning {info.state.value}")
    return wait(_next_look(ctx, "endpoint"), f"endpoint {name} {info.state.value}")


def create_deployment(ctx: StepContext) -> Outcome:
    from gitops.backends.base import RegisteredModel

    c = ctx.cursor
    if c.serverless:
        return _create_serverless(ctx)
    # Named by the deployment digest: a redeploy of the same model (new SKU, new probe) is a new deployment.
    name = f"v{c.model_version}-{(ctx.record.deployment_digest or ctx.record.digest)[:8]}"
    same = ctx.backend.get_deployment(c.endpoint or "", name)
    if same is not None and same.state is Provisioning.DELETING:
        # The same model and settings, deployed again while the last deployment of them is still being deleted (a
        # rollback and a re-merge): a name of its own, stable for this rollout, so a repeated step reuses it.
        name = f"{name}-{int(c.started_at) % 100000:05d}"
    model = RegisteredModel(ctx.record.model_name or naming.model_name(ctx.spec), c.model_version or "", c.model_uri or "")
    info = ctx.backend.begin_deployment(c.endpoint or "", name, model, ctx.spec)  # a new deployment takes 0% traffic
    return done(f"deployment {name} {info.state.value}", cursor={"deployment": name})


def _create_serverless(ctx: StepContext) -> Outcome:
    """The version's serverless endpoint, started: named after the run's endpoint, the model version and the
    deployment digest; refused when a serverless endpoint of that name is not this repository's run's."""
    from gitops.backends.base import RegisteredModel
    from gitops.lifecycle.serving import serverless_backend
    from gitops.ownership import claim

    c, r = ctx.cursor, ctx.record
    backend = serverless_backend(ctx.backend)
    name = naming.serverless_endpoint_name(c.endpoint or r.run, c.model_version or "", r.deployment_digest or r.digest)
    found = backend.get_serverless(name)
    if found is not None and found.state is Provisioning.DELETING:
        # The same version deployed again while its last endpoint is still being deleted (a rollback, then the same
        # spec merged again): a name of its own, stable for this rollout, so a repeated step reuses it.
        name = f"{name[: naming.SERVERLESS_MAX - 6].rstrip('-')}-{int(c.started_at) % 100000:05d}"
        found = backend.get_serverless(name)
    if found is not None:
        got = claim(found.tags, ctx.repo)
        if not got.ours or found.tags.get(naming.TAG_RUN) != r.run:
            why = got.reason if not got.ours else f"it belongs to run '{found.tags.get(naming.TAG_RUN)}'"
            return fail(f"serverless endpoint {name}: {why}; two runs never share an endpoint")
    tags = {**identity_tags(ctx.repo), naming.TAG_RUN: r.run, naming.TAG_DIGEST: r.digest}
    if ctx.spec.lifecycle.keep:
        tags[naming.TAG_KEEP] = "true"
    model = RegisteredModel(r.model_name or naming.model_name(ctx.spec), c.model_version or "", c.model_uri or "")
    spec_model = ctx.spec.model  # the foundation model, whose publisher may ask for a marketplace subscription first
    base = f"azureml://registries/{spec_model.registry}/models/{spec_model.name}" if spec_model.path is None else None
    info = backend.begin_serverless(name, model, tags, base)
    return done(f"serverless endpoint {name} {info.state.value}", cursor={"deployment": name})


def _await_serverless(ctx: StepContext) -> Outcome:
    from gitops.lifecycle.serving import serverless_backend

    c = ctx.cursor
    info = serverless_backend(ctx.backend).get_serverless(c.deployment or "")
    if info is None:
        if c.attempt < 3:  # a PUT just accepted may take a moment to show
            return wait(backoff(c.attempt), f"serverless endpoint {c.deployment} not visible yet")
        return fail(f"serverless endpoint {c.deployment} disappeared")
    if info.serving:
        online = f"serverless endpoint {c.deployment} online"
        return done(online, cursor={"scoring_uri": info.scoring_uri or None}, record=_provisioned(ctx, "serverless"))
    if info.endpoint_state.failed or info.state in (Provisioning.FAILED, Provisioning.CANCELED):
        return fail(info.error or f"serverless endpoint {c.deployment} {info.state.value}, {info.endpoint_state.value}")
    return wait(_next_look(ctx, "serverless"), f"serverless endpoint {c.deployment} {info.state.value}, {info.endpoint_state.value}")


def await_deployment(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    if c.serverless:
        return _await_serverless(ctx)
    info = ctx.backend.get_deployment(c.endpoint or "", c.deployment or "")
    if info is None:
        if c.attempt < 3:  # a PUT just accepted may take a moment to show
            return wait(backoff(c.attempt), f"deployment {c.deployment} not visible yet")
        return fail(f"deployment {c.deployment} disappeared from {c.endpoint}")
    if info.state is Provisioning.SUCCEEDED:
        return done(f"deployment {c.deployment} ready", record=_provisioned(ctx, "deployment"))
    if info.state.settled:
        return fail(info.error or f"deployment {c.deployment} provisioning {info.state.value}")
    return wait(_next_look(ctx, "deployment"), f"deployment {c.deployment} {info.state.value}")


def smoke_test(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    result = run_smoke_test(ctx.backend, c.endpoint or "", c.deployment or "", ctx.spec, ctx.record.test_path, serverless=c.serverless)
    if not result.ok:
        return fail(f"smoke test failed: {result.reason}", record={"smoke": result})
    return done(f"smoke test passed in {result.latency_ms:.0f} ms", record={"smoke": result})


# -- the gate ---------------------------------------------------------------------------------------
EVAL_BATCH = 2  # conversations per slice of the online evaluation: four requests at most, well within a claim
EVAL_TIMEOUT_S = 60.0


def _gate_applies(ctx: StepContext) -> str | None:
    """Why the gate does not apply to this rollout, or None when it does."""
    if ctx.cursor.decided_by:
        return f"decided by {ctx.cursor.decided_by}"
    if not ctx.record.gate_rules.enabled:
        return "the gate is off for this run (enabled: false waives all its evidence)"
    return None


def _waived(ctx: StepContext, evidence: str) -> str | None:
    """How the run waives ``evidence`` (a note for the record), or None when the gate needs it."""
    rules = ctx.record.gate_rules
    if evidence not in waived_evidence(rules.enabled, rules.conversations, rules.waive):
        return None
    if evidence == "held_out" and not rules.conversations:
        return "held-out evaluation waived (conversations: 0)"
    return f"{evidence.replace('_', ' ')} waived (deploy.gate.waive)"


def _serving_job(ctx: StepContext) -> str | None:
    """The job whose model serves now (None for a first version, or when nothing serves)."""
    if not ctx.cursor.previous:
        return None
    return ctx.record.serving_job or ctx.record.previous_job


def _eval_metrics(reader: MetricsReader, job: str) -> dict[str, Any]:
    """The training's final eval loss and perplexity, and what the pipeline's model evaluation step logged (if any)."""
    from gitops.report.build import final_eval

    metrics = reader.job_metrics(job)
    loss, perplexity = final_eval(metrics)
    return {"eval_loss": loss, "eval_perplexity": perplexity, "evaluation": dict(metrics.evaluation)}


def gate_training(ctx: StepContext) -> Outcome:
    """The candidate job's training metrics against the serving version's (recorded; ``judge`` decides)."""
    skip = _gate_applies(ctx) or _waived(ctx, "training_metrics")
    if skip:
        return done(f"gate: {skip}")
    rules, job, serving = ctx.record.gate_rules, ctx.record.job_name, _serving_job(ctx)
    if serving == job:
        return done("gate: the same training as the serving version (a redeploy): no new training metrics")
    if ctx.reader is None:  # a lifecycle set up without a metrics store: no evidence, so no pass
        verdict = gate.Verdict(False, reasons=["no metrics store is configured here: the training gives no evidence"])
    else:
        from gitops.errors import GitopsError

        try:
            reader = ctx.reader()
            verdict = gate.training_verdict(rules, _eval_metrics(reader, job), _eval_metrics(reader, serving) if serving else None)
        except GitopsError as exc:
            verdict = gate.Verdict(False, reasons=[f"the training metrics could not be read: {exc.headline}"])
    note = "; ".join(verdict.reasons or verdict.notes) or "training metrics recorded"
    return done(f"gate (training): {note}", cursor={"evaluation": ctx.cursor.evaluation.model_copy(update={"training": verdict.to_dict()})})


# A deployment that answers these is busy or unreachable, not wrong: the question is asked again later.
UNAVAILABLE_STATUSES = frozenset({408, 429, 502, 503, 504})


class NoAnswer(Exception):
    """A deployment gave no answer to judge (throttled, unreachable, or the serving side failing): never a score."""


def _ask(ctx: StepContext, deployment: str, conversation: gate.Conversation, *, serving: bool) -> Answer:
    """One deployment's greedy answer to one held-out conversation: its ROUGE-L, latency and whether it answered.
    The candidate's own failures (an error status, an empty reply) count against it; a throttled or unreachable
    deployment, or any failure of the serving one, is ``NoAnswer``: scoring it 0 would let a bad candidate tie."""
    from gitops.errors import BackendError
    from gitops.lifecycle.serving import chat

    params = ctx.spec.deploy.smoke_test.parameters
    timeout = min(ctx.spec.deploy.request_timeout_ms / 1000, EVAL_TIMEOUT_S)
    side = f"the serving deployment {deployment}" if serving else f"the candidate {deployment}"
    on_serverless = ctx.cursor.previous_serverless if serving else ctx.cursor.serverless
    try:
        result = chat(
            ctx.backend,
            ctx.cursor.endpoint or "",
            deployment,
            serverless=on_serverless,
            messages=conversation.prompt,
            parameters={"max_new_tokens": params.get("max_new_tokens", 128), "do_sample": False},
            timeout_s=timeout,
        )
    except BackendError as exc:  # a timeout or a connection that failed: no answer either way, so none is scored
        raise NoAnswer(f"{side} did not answer: {exc.headline}") from None
    if result.status_code in UNAVAILABLE_STATUSES or (serving and result.status_code != 200):
        raise NoAnswer(f"{side} answered status {result.status_code}")
    reply = extract_reply(result.body) if result.status_code == 200 else None
    ok = bool(reply and reply.strip())
    return Answer(
        score=gate.rouge_l(reply or "", conversation.reference) if ok else 0.0, latency_ms=round(result.latency_ms, 1), answered=ok
    )


def evaluate(ctx: StepContext) -> Outcome:
    """The online evaluation, a few conversations per slice: each held-out conversation goes to the candidate at
    0% and to the serving deployment; what they answered is kept on the cursor. A conversation one of them gives no
    answer to is asked again after a backoff, until the step's deadline is near: then the gate holds the run."""
    if _gate_applies(ctx):  # why it does not apply is said once, by the gate's first step
        return done()
    skip = _waived(ctx, "held_out")
    if skip:
        return done(f"gate: {skip}")
    from gitops.errors import GitopsError

    n = ctx.record.gate_rules.conversations
    ev = ctx.cursor.evaluation
    try:
        split = (ctx.trained_in or ctx.backend).held_out_split(ctx.record.test_path)
    except GitopsError as exc:  # the split should be there and is not: nobody can say the candidate is as good
        ev = ev.model_copy(update={"online_failed": f"the test split {ctx.record.test_path} could not be read: {exc.headline}"})
        return done(f"gate (online): {ev.online_failed}", cursor={"evaluation": ev})
    sample = gate.sample_conversations(split, n)
    if not sample:
        why = (
            f"no held-out conversations to ask ({ctx.record.test_path or 'the run records no test split'}): nothing shows"
            " the candidate answers as well (give data.test_path a split the gate can read, or waive held_out)"
        )
        return done(f"gate (online): {why}", cursor={"evaluation": ev.model_copy(update={"online_failed": why})})
    if ev.total is None:  # reading the split is a slice of its own: each slice stays a few requests
        return again(
            f"gate (online): {len(sample)} held-out conversations to ask",
            cursor={"evaluation": ev.model_copy(update={"total": len(sample)})},
        )
    cand, serv = list(ev.candidate), list(ev.serving)
    serving = ctx.cursor.serving
    for conversation in sample[len(cand) : len(cand) + EVAL_BATCH]:
        try:
            asked = _ask(ctx, ctx.cursor.deployment or "", conversation, serving=False)
            compared = _ask(ctx, serving, conversation, serving=True) if serving else None
        except NoAnswer as exc:
            ev = ev.model_copy(update={"candidate": cand, "serving": serv, "total": len(sample), "unanswered": ev.unanswered + 1})
            delay = backoff(ctx.cursor.attempt)
            if ctx.now + delay + EVAL_TIMEOUT_S >= ctx.cursor.deadline_at:  # no time left to ask again within the step
                ev = ev.model_copy(update={"online_failed": f"{exc} ({ev.unanswered} tries): the comparison has no answer to judge"})
                return done(f"gate (online): {ev.online_failed}", cursor={"evaluation": ev})
            return wait(delay, f"gate (online): {exc}; asking again in {delay:.0f}s", cursor={"evaluation": ev})
        cand.append(asked)
        if compared is not None:
            serv.append(compared)
    ev = ev.model_copy(update={"candidate": cand, "serving": serv, "total": len(sample)})
    if len(cand) < len(sample):
        return again(f"gate (online): {len(cand)} of {len(sample)} conversations asked", cursor={"evaluation": ev})
    return done(f"gate (online): {len(sample)} conversations asked", cursor={"evaluation": ev})


def _side(answers: list[Answer]) -> gate.Side:
    return gate.Side(
        scores=[a.score for a in answers], latencies_ms=[a.latency_ms for a in answers], failures=sum(1 for a in answers if not a.answered)
    )


def judge(ctx: StepContext) -> Outcome:
    """Both parts of the gate together: promote, or hold the candidate at 0% for a person's decision. Each part
    passes on its evidence or on a waiver; with neither, the candidate holds."""
    skip = _gate_applies(ctx)
    if skip:  # the gate's first step said why, once (a person's decision, or the gate off): no evidence to promote on
        return done(record={"gate": {**gate.Verdict(True, notes=[skip]).to_dict(), "on_evidence": False}})
    ev, rules = ctx.cursor.evaluation, ctx.record.gate_rules
    training = ev.training
    if training is None:
        waived = _waived(ctx, "training_metrics")
        redeploy = _serving_job(ctx) == ctx.record.job_name
        if waived or redeploy:
            training = gate.Verdict(True, notes=[waived or "the same training as the serving version"]).to_dict()
        else:
            training = gate.Verdict(False, reasons=["the training metrics were not read"]).to_dict()
    waived_online = _waived(ctx, "held_out")
    if waived_online:
        online = gate.Verdict(True, notes=[waived_online])
    elif ev.online_failed:
        online = gate.Verdict(False, reasons=[ev.online_failed])
    elif ev.candidate:
        online = gate.online_verdict(rules, _side(ev.candidate), _side(ev.serving) if ev.serving else None)
    else:
        online = gate.Verdict(False, reasons=["no held-out conversation was asked"])
    reasons: list[str] = [*training["reasons"], *online.reasons]
    notes: list[str] = [*training["notes"], *online.notes]
    verdict = {
        "ok": not reasons,
        "reasons": reasons,
        "notes": notes,
        "at": ctx.now,
        "numbers": {"training": training.get("numbers", {}), "online": online.numbers},
        "on_evidence": True,  # judged by the gate's rules (evidence, or the spec's own waivers), not by a person
    }
    if not reasons:
        return done("gate passed: " + "; ".join(notes), record={"gate": verdict})
    return hold("gate failed: " + "; ".join(reasons), record={"gate": verdict})


def wait_for_decision(ctx: StepContext) -> Outcome:
    """A held candidate waits at 0% for ``gitops promote`` or ``gitops rollback``, until its hold runs out."""
    left = max(1.0, ctx.cursor.deadline_at - ctx.now)
    return wait(min(left, 3600.0), "held: the candidate failed the gate; gitops promote or gitops rollback decides")


# -- gradual traffic -------------------------------------------------------------------------------
def ramp(ctx: StepContext) -> Outcome:
    """Gradual traffic (``deploy.rollout``): each share in turn, in three kinds of visit. *shift* asks the endpoint
    for the split; *settle* waits until it took; *observe* waits out the hold (a wait of the step machine, no
    process sleeps) and then reads the candidate's error rate and p95 latency from the endpoint's own metrics over
    the hold. A breach fails the step, and the rollback gives the serving deployment its traffic back."""
    from gitops.spec.model import parse_duration

    rollout, serving = ctx.spec.deploy.rollout, ctx.cursor.serving
    if ctx.cursor.serverless:  # validation refuses a ramp on a serverless endpoint: said here for the history
        return done("serverless: no traffic split; the candidate serves as a whole once promoted")
    if rollout is None or not rollout.shares:
        return done("the candidate takes 100% at once (no gradual traffic set)")
    if serving is None:
        return done("nothing serves yet: the first version takes 100% at once")
    if ctx.cursor.previous_serverless:
        return done(f"{serving} is a serverless endpoint: no split between the two kinds; the candidate takes 100% at once")
    shares = rollout.shares
    c, state = ctx.cursor, ctx.cursor.ramp
    index, visit, seen = state.index, state.visit, list(state.seen)
    if index >= len(shares):
        return done(f"held {', '.join(f'{s}%' for s in shares)} within bounds", record={"rollout_steps": _figures(seen)})
    share, endpoint, candidate = shares[index], c.endpoint or "", c.deployment or ""
    hold_s = parse_duration(rollout.hold).total_seconds()
    if visit == "shift":
        ctx.backend.begin_traffic(endpoint, {candidate: share, serving: 100 - share})
        return wait(
            FIRST_WAIT_S,
            f"{candidate} asked for {share}% ({serving} {100 - share}%)",
            cursor={"ramp": state.model_copy(update={"index": index, "visit": "settle"})},
        )
    if visit == "settle":
        info = ctx.backend.get_endpoint(endpoint)
        if info is None:
            return fail(f"endpoint {endpoint} disappeared during the rollout")
        if info.state in (Provisioning.FAILED, Provisioning.CANCELED):
            return fail(f"endpoint {endpoint} traffic update {info.state.value}")
        if info.state is not Provisioning.SUCCEEDED or info.traffic.get(candidate, 0) != share:
            return wait(backoff(c.attempt), f"endpoint {endpoint} {info.state.value}: {candidate} not yet at {share}%")
        mark = ctx.backend.traffic_mark(endpoint, candidate, ctx.now)
        return wait(
            hold_s,
            f"{candidate} takes {share}%: watched for {rollout.hold}",
            cursor={"ramp": state.model_copy(update={"visit": "observe", "since": ctx.now, "mark": mark})},
        )
    left = (ctx.now if state.since is None else state.since) + hold_s - ctx.now
    if left > 0:
        return wait(left, f"{candidate} at {share}%: {human(left)} of the hold left")
    window = ctx.backend.traffic_since(endpoint, candidate, state.mark, ctx.now)
    if not window.known:  # never promoted blind: read again until the phase's deadline fails the rollout
        return wait(MAX_WAIT_S, f"{candidate} at {share}%: its metrics cannot be read yet ({window.note})")
    bound = float(rollout.max_p95_latency_ms or ctx.spec.deploy.request_timeout_ms)
    reasons = gate.traffic_breaches(
        share,
        window.requests,
        window.errors,
        window.p95_latency_ms,
        max_error_rate=rollout.max_error_rate,
        max_p95_latency_ms=bound,
        min_requests=rollout.min_requests,
    )
    seen.append(
        HeldShare(
            share=share,
            requests=window.requests,
            errors=window.errors,
            p95_latency_ms=window.p95_latency_ms,
            held_s=hold_s,
            ok=not reasons,
            at=ctx.now,
        )
    )
    if reasons:
        return fail("rollout breached its bounds: " + "; ".join(reasons), record={"rollout_steps": _figures(seen)})
    p95 = f", p95 {window.p95_latency_ms:.0f} ms" if window.p95_latency_ms is not None else ""
    note = f"{candidate} held {share}%: {window.requests} requests, {window.errors} failed{p95}"
    return again(note, cursor={"ramp": Ramp(index=index + 1, visit="shift", seen=seen)}, record={"rollout_steps": _figures(seen)})


def _figures(seen: list[HeldShare]) -> list[HeldShare]:
    """The shares held, as the record keeps them for status and the report."""
    return list(seen)


def promote(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    if c.serverless:  # nothing moves on the service: the run's record names the endpoint that serves (on completion)
        return done(f"{c.deployment} becomes the run's serving endpoint" + (f" in place of {c.serving}" if c.serving else ""))
    ctx.backend.begin_traffic(c.endpoint or "", {c.deployment or "": 100})
    return done(f"{c.deployment} asked for 100% on {c.endpoint}")


def await_traffic(ctx: StepContext) -> Outcome:
    """The endpoint settled with the candidate at 100%."""
    c = ctx.cursor
    if c.serverless:
        return done()
    info = ctx.backend.get_endpoint(c.endpoint or "")
    if info is None:
        return fail(f"endpoint {c.endpoint} disappeared during the rollout")
    if info.state is Provisioning.SUCCEEDED and info.traffic.get(c.deployment or "", 0) == 100:
        return done(f"{c.deployment} takes 100% on {c.endpoint}")
    if info.state in (Provisioning.FAILED, Provisioning.CANCELED):
        return fail(f"endpoint {c.endpoint} traffic update {info.state.value}")
    return wait(backoff(c.attempt), f"endpoint {c.endpoint} {info.state.value}")


def retire_previous(ctx: StepContext) -> Outcome:
    """Start deleting every other deployment of the endpoint (they take no traffic now), but the one it replaced
    while ``deploy.keep_previous_for`` keeps it for an instant rollback."""
    from gitops.spec.model import parse_duration

    c = ctx.cursor
    keep_for = ctx.spec.deploy.keep_previous_for
    kept = c.serving if keep_for else None
    if c.serverless or c.previous_serverless:  # what served is another endpoint than the candidate's
        others = _retire_other_endpoints(ctx, kept)
    else:
        info = ctx.backend.get_endpoint(c.endpoint or "")
        others = [d.name for d in (info.deployments if info else ()) if d.name not in (c.deployment, kept)]
        for name in others:
            ctx.backend.delete_deployment(c.endpoint or "", name)
    until = ctx.now + parse_duration(keep_for).total_seconds() if kept and keep_for else None
    note = (f"deleting {', '.join(others)}" if others else "nothing else to delete") + (
        f"; {kept} kept at 0% for {keep_for}" if kept else ""
    )
    return done(note, record={"previous_kept_until": until})


def _retire_other_endpoints(ctx: StepContext, kept: str | None) -> list[str]:
    """After a switch where a serverless endpoint serves or served: every other serverless endpoint of this run (and
    this repository) is deleted, and a managed endpoint left behind by a change of kind, but what ``kept`` keeps for
    an instant rollback. Returns what it started deleting."""
    from gitops.lifecycle.serving import serverless_backend
    from gitops.ownership import claim

    c, run = ctx.cursor, ctx.record.run
    gone: list[str] = []
    backend = serverless_backend(ctx.backend)
    for info in backend.list_serverless():
        if info.name in (c.deployment, kept) or info.tags.get(naming.TAG_RUN) != run or not claim(info.tags, ctx.repo).ours:
            continue
        backend.delete_serverless(info.name)
        gone.append(info.name)
    if c.serverless and c.endpoint and not (c.previous_serverless is False and kept):
        managed = ctx.backend.get_endpoint(c.endpoint)  # the managed endpoint a run served on before it changed kind
        if managed is not None and managed.tags.get(naming.TAG_RUN) == run and claim_endpoint(managed, ctx.record, ctx.repo).ours:
            ctx.backend.delete_endpoint(managed.name)
            gone.append(managed.name)
    return gone


# -- the rollback ----------------------------------------------------------------------------------
def restore_traffic(ctx: StepContext) -> Outcome:
    """The previous deployment back to 100% (or no traffic at all when there was none)."""
    c = ctx.cursor
    if c.serverless:  # what served before kept serving: the run's record goes back to it as the rollback ends
        return done(f"{c.previous} still serves" if c.previous else "nothing served before the candidate")
    info = ctx.backend.get_endpoint(c.endpoint or "") if c.endpoint else None
    if info is None:
        return done("no endpoint: nothing to restore")
    if c.previous and info.deployment(c.previous) is not None:
        if info.traffic.get(c.previous, 0) != 100:
            ctx.backend.begin_traffic(info.name, {c.previous: 100})
            return done(f"{c.previous} asked back to 100%")
        return done(f"{c.previous} still takes 100%")
    if c.deployment and info.traffic.get(c.deployment, 0) > 0:
        ctx.backend.begin_traffic(info.name, {})
        return done(f"traffic taken off {c.deployment}")
    return done("traffic unchanged")


def await_restore(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    info = ctx.backend.get_endpoint(c.endpoint or "") if c.endpoint else None
    if info is None or info.state.settled:
        return done("endpoint settled" if info is not None else "no endpoint")
    return wait(backoff(c.attempt), f"endpoint {c.endpoint} {info.state.value}")


def remove_candidate(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    if c.serverless:
        from gitops.lifecycle.serving import serverless_backend

        backend = serverless_backend(ctx.backend)
        if c.deployment and c.deployment != c.previous and backend.get_serverless(c.deployment) is not None:
            backend.delete_serverless(c.deployment)
            return done(f"deleting serverless endpoint {c.deployment}")
        return done("no candidate left")
    info = ctx.backend.get_endpoint(c.endpoint or "") if c.endpoint else None
    if info is not None and c.deployment and c.deployment != c.previous and info.deployment(c.deployment) is not None:
        ctx.backend.delete_deployment(info.name, c.deployment)
        return done(f"deleting {c.deployment}")
    return done("no candidate left")


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFn
    phase: Phase  # whose deadline applies; steps of one phase share one deadline


ROLLOUT: tuple[Step, ...] = (
    Step("check_job", check_job, Phase.REGISTER),
    Step("register", register, Phase.REGISTER),
    Step("ensure_endpoint", ensure_endpoint, Phase.ENDPOINT),
    Step("await_endpoint", await_endpoint, Phase.ENDPOINT),
    Step("create_deployment", create_deployment, Phase.DEPLOYMENT),
    Step("await_deployment", await_deployment, Phase.DEPLOYMENT),
    Step("smoke_test", smoke_test, Phase.SMOKE),
    Step("gate_training", gate_training, Phase.GATE),
    Step("evaluate", evaluate, Phase.GATE),
    Step("judge", judge, Phase.GATE),
    Step("ramp", ramp, Phase.RAMP),
    Step("promote", promote, Phase.TRAFFIC),
    Step("await_traffic", await_traffic, Phase.TRAFFIC),
    Step("retire_previous", retire_previous, Phase.TRAFFIC),
)
ROLLBACK: tuple[Step, ...] = (
    Step("restore_traffic", restore_traffic, Phase.TRAFFIC),
    Step("await_restore", await_restore, Phase.TRAFFIC),
    Step("remove_candidate", remove_candidate, Phase.TRAFFIC),
)
HOLD: tuple[Step, ...] = (Step("hold", wait_for_decision, Phase.HOLD),)
PLANS: dict[str, tuple[Step, ...]] = {"rollout": ROLLOUT, "rollback": ROLLBACK, "hold": HOLD}
# The statuses a run shows while each plan runs, and when it ends.
RUNNING_STATUS: dict[str, RunStatus] = {"rollout": RunStatus.DEPLOYING, "rollback": RunStatus.ROLLING_BACK, "hold": RunStatus.HELD}
FINAL_STATUS: dict[str, RunStatus] = {"rollout": RunStatus.LIVE, "rollback": RunStatus.ROLLED_BACK}


def find(plan: str, name: str) -> tuple[int, Step]:
    steps = PLANS.get(plan, ())
    for i, step in enumerate(steps):
        if step.name == name:
            return i, step
    raise CorruptRecordError(
        f"the run's cursor names step {name!r} of plan {plan!r}, which this version does not have",
        hint="a record written by another version of gitops: `gitops reconcile NAME` after upgrading, or `gitops delete NAME`",
    )
