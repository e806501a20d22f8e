"""The steps of a rollout, as data: each reads state, does one bounded thing, and says done, wait or fail.

A step makes a few backend calls and never waits for a long-running operation: it starts one
(``begin_*``) and a later step reads its provisioning state. Every step is idempotent, so a step
repeated after a crash or a duplicate message does nothing twice. ``ROLLOUT`` and ``ROLLBACK`` are the
plans the driver (``gitops.lifecycle.flow``) walks; a later plan may add steps (a gate, a hold) without
touching the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from gitops import naming
from gitops.backends.base import Backend, JobState, Provisioning
from gitops.ledger.model import Cursor, RunRecord, RunStatus
from gitops.lifecycle.smoke import run_smoke_test
from gitops.spec.model import RunSpec

# Waits between looks at something Azure is provisioning: 10 s, 20 s, 40 s, then every minute.
FIRST_WAIT_S = 10.0
MAX_WAIT_S = 60.0


def backoff(attempt: int) -> float:
    return float(min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** max(0, attempt)))


@dataclass(frozen=True)
class Outcome:
    """What a step answers. ``cursor``/``record`` are fields to set; ``status`` ends the rollout (kind ``end``)."""

    kind: Literal["done", "wait", "fail", "end"]
    note: str = ""
    wait_s: float = 0.0
    cursor: Mapping[str, Any] = field(default_factory=dict)
    record: Mapping[str, Any] = field(default_factory=dict)
    status: RunStatus | None = None


def done(note: str = "", *, cursor: Mapping[str, Any] | None = None, record: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("done", note, cursor=cursor or {}, record=record or {})


def wait(seconds: float, note: str) -> Outcome:
    return Outcome("wait", note, wait_s=seconds)


def fail(reason: str, *, record: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("fail", reason, record=record or {})


def end(status: RunStatus, note: str, *, record: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("end", note, status=status, record=record or {})


@dataclass
class StepContext:
    record: RunRecord
    cursor: Cursor
    backend: Backend
    now: float

    @cached_property
    def spec(self) -> RunSpec:
        """Parsed when a step needs it (checking the job does not)."""
        return RunSpec.model_validate(self.record.spec)


StepFn = Callable[[StepContext], Outcome]


# -- the rollout ---------------------------------------------------------------------------------
def check_job(ctx: StepContext) -> Outcome:
    """Events are hints: the job's own state decides (level-triggered, as controllers do)."""
    job = ctx.backend.get_job(ctx.record.job_name)
    if job is None:
        return end("failed", f"job {ctx.record.job_name} does not exist", record={"error": "job not found"})
    if job.state is JobState.COMPLETED:
        return done(f"job {job.name} completed")
    if job.state in (JobState.FAILED, JobState.CANCELED):
        reason = job.error or f"job {job.state.value}"
        return end("failed" if job.state is JobState.FAILED else "canceled", reason, record={"error": reason})
    status: RunStatus = "running" if job.state is JobState.RUNNING else ctx.record.status
    return end(status, f"the job is {job.state.value}: nothing to do until it ends")


def register(ctx: StepContext) -> Outcome:
    r = ctx.record
    model = ctx.backend.register_model(r.job_name, r.model_name or naming.model_name(ctx.spec),
                                       {naming.TAG_RUN: r.run, naming.TAG_DIGEST: r.digest, naming.TAG_COMMIT: r.commit or ""})
    return done(f"registered {model.name} v{model.version}", cursor={"model_version": model.version, "model_uri": model.uri},
                record={"model_version": model.version})


def ensure_endpoint(ctx: StepContext) -> Outcome:
    """One rule for every backend: an endpoint is ours to deploy to only when absent or tagged with this run."""
    name = ctx.cursor.endpoint
    if not name:
        return fail("the run has no endpoint name recorded", record={"error": "no endpoint name"})
    info = ctx.backend.get_endpoint(name)
    if info is not None:
        owner = info.tags.get(naming.TAG_RUN)
        if info.tags.get(naming.MANAGED_BY_TAG) != naming.MANAGED_BY_VALUE:
            return fail(f"endpoint {name} exists and is not managed by finetune-gitops; it is never taken over")
        if owner != ctx.record.run:
            return fail(f"endpoint {name} belongs to run '{owner}'; two runs never share an endpoint")
    wanted = {naming.MANAGED_BY_TAG: naming.MANAGED_BY_VALUE, naming.TAG_RUN: ctx.record.run}
    if ctx.spec.lifecycle.keep:  # on the endpoint itself: cleanup keeps it even if the run's record is lost
        wanted[naming.TAG_KEEP] = "true"
    if info is None or any(info.tags.get(k) != v for k, v in wanted.items()):
        info = ctx.backend.begin_endpoint(name, wanted)
    serving = ctx.record.deployment or next((d for d, pct in info.traffic.items() if pct > 0), None)
    return done(f"endpoint {name} {info.state.value}", cursor={"previous": serving})


def await_endpoint(ctx: StepContext) -> Outcome:
    name = ctx.cursor.endpoint or ""
    info = ctx.backend.get_endpoint(name)
    if info is None:
        return wait(backoff(ctx.cursor.attempt), f"endpoint {name} not visible yet")
    if info.state is Provisioning.SUCCEEDED:
        return done(f"endpoint {name} ready")
    if info.state.settled:
        return fail(f"endpoint {name} provisioning {info.state.value}")
    return wait(backoff(ctx.cursor.attempt), f"endpoint {name} {info.state.value}")


def create_deployment(ctx: StepContext) -> Outcome:
    from gitops.backends.base import RegisteredModel

    c = ctx.cursor
    # Named by the deployment digest: a redeploy of the same model (new SKU, new probe) is a new deployment.
    name = f"v{c.model_version}-{(ctx.record.deployment_digest or ctx.record.digest)[:8]}"
    model = RegisteredModel(ctx.record.model_name or naming.model_name(ctx.spec), c.model_version or "", c.model_uri or "")
    info = ctx.backend.begin_deployment(c.endpoint or "", name, model, ctx.spec)  # a new deployment takes 0% traffic
    return done(f"deployment {name} {info.state.value}", cursor={"deployment": name})


def await_deployment(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    info = ctx.backend.get_deployment(c.endpoint or "", c.deployment or "")
    if info is None:
        if c.attempt < 3:  # a PUT just accepted may take a moment to show
            return wait(backoff(c.attempt), f"deployment {c.deployment} not visible yet")
        return fail(f"deployment {c.deployment} disappeared from {c.endpoint}")
    if info.state is Provisioning.SUCCEEDED:
        return done(f"deployment {c.deployment} ready")
    if info.state.settled:
        return fail(info.error or f"deployment {c.deployment} provisioning {info.state.value}")
    return wait(backoff(c.attempt), f"deployment {c.deployment} {info.state.value}")


def smoke_test(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    result = run_smoke_test(ctx.backend, c.endpoint or "", c.deployment or "", ctx.spec, ctx.record.test_path)
    if not result.ok:
        return fail(f"smoke test failed: {result.reason}", record={"smoke": result})
    return done(f"smoke test passed in {result.latency_ms:.0f} ms", record={"smoke": result})


def promote(ctx: StepContext) -> Outcome:
    c = ctx.cursor
    ctx.backend.begin_traffic(c.endpoint or "", {c.deployment or "": 100})
    return done(f"{c.deployment} asked for 100% on {c.endpoint}")


def await_traffic(ctx: StepContext) -> Outcome:
    """The endpoint settled with the candidate at 100%."""
    c = ctx.cursor
    info = ctx.backend.get_endpoint(c.endpoint or "")
    if info is None:
        return fail(f"endpoint {c.endpoint} disappeared during the rollout")
    if info.state is Provisioning.SUCCEEDED and info.traffic.get(c.deployment or "", 0) == 100:
        return done(f"{c.deployment} takes 100% on {c.endpoint}")
    if info.state in (Provisioning.FAILED, Provisioning.CANCELED):
        return fail(f"endpoint {c.endpoint} traffic update {info.state.value}")
    return wait(backoff(c.attempt), f"endpoint {c.endpoint} {info.state.value}")


def retire_previous(ctx: StepContext) -> Outcome:
    """Start deleting every other deployment of the endpoint (they take no traffic now)."""
    c = ctx.cursor
    info = ctx.backend.get_endpoint(c.endpoint or "")
    others = [d.name for d in (info.deployments if info else ()) if d.name != c.deployment]
    for name in others:
        ctx.backend.delete_deployment(c.endpoint or "", name)
    return done(f"deleting {', '.join(others)}" if others else "nothing else to delete")


# -- the rollback ----------------------------------------------------------------------------------
def restore_traffic(ctx: StepContext) -> Outcome:
    """The previous deployment back to 100% (or no traffic at all when there was none)."""
    c = ctx.cursor
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
    info = ctx.backend.get_endpoint(c.endpoint or "") if c.endpoint else None
    if info is not None and c.deployment and c.deployment != c.previous and info.deployment(c.deployment) is not None:
        ctx.backend.delete_deployment(info.name, c.deployment)
        return done(f"deleting {c.deployment}")
    return done("no candidate left")


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFn
    phase: str  # whose deadline applies (RolloutPolicy's fields); steps of one phase share one deadline


ROLLOUT: tuple[Step, ...] = (
    Step("check_job", check_job, "register"),
    Step("register", register, "register"),
    Step("ensure_endpoint", ensure_endpoint, "endpoint"),
    Step("await_endpoint", await_endpoint, "endpoint"),
    Step("create_deployment", create_deployment, "deployment"),
    Step("await_deployment", await_deployment, "deployment"),
    Step("smoke_test", smoke_test, "smoke"),
    Step("promote", promote, "traffic"),
    Step("await_traffic", await_traffic, "traffic"),
    Step("retire_previous", retire_previous, "traffic"),
)
ROLLBACK: tuple[Step, ...] = (
    Step("restore_traffic", restore_traffic, "traffic"),
    Step("await_restore", await_restore, "traffic"),
    Step("remove_candidate", remove_candidate, "traffic"),
)
PLANS: dict[str, tuple[Step, ...]] = {"rollout": ROLLOUT, "rollback": ROLLBACK}
# The statuses a run shows while each plan runs, and when it ends.
RUNNING_STATUS: dict[str, RunStatus] = {"rollout": "deploying", "rollback": "rolling_back"}
FINAL_STATUS: dict[str, RunStatus] = {"rollout": "live", "rollback": "rolled_back"}
DEFAULT_TIMEOUT_S = 30 * 60.0


def find(plan: str, name: str) -> tuple[int, Step]:
    steps = PLANS[plan]
    for i, step in enumerate(steps):
        if step.name == name:
            return i, step
    raise KeyError(f"no step {name!r} in the {plan} plan")
