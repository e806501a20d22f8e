"""The cleanup policy: pure decisions from facts (no I/O), so every rule is tested on its own.

Safety first: an endpoint that is not this repository's (``gitops.ownership``) is never touched; unknown usage counts as active;
a run mid-deploy is skipped; ``keep`` protects; deletions per run are capped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from gitops.ownership import Claim, claim
from gitops.spec.naming import TAG_KEEP

KEEP_TAG = TAG_KEEP
FALSE_WORDS = frozenset({"", "0", "false", "no", "off", "n", "f"})


def keep_tag_says_keep(value: str | None) -> bool:
    """The usual truthy words keep; so does anything that is not plainly false (an unreadable tag never deletes)."""
    return value is not None and value.strip().lower() not in FALSE_WORDS


Action = Literal["keep", "delete", "delete_deployments", "skip"]


@dataclass(frozen=True)
class DeploymentFacts:
    name: str
    traffic: int
    created_at: datetime | None


@dataclass(frozen=True)
class EndpointFacts:
    """What cleanup knows of one endpoint, gathered before any decision."""

    name: str
    tags: dict[str, str]
    created_at: datetime | None
    deployments: tuple[DeploymentFacts, ...]
    usage_known: bool
    repo: str  # this repository's identity: whose endpoints cleanup may touch
    held: bool = False  # this ledger records a deployment of the endpoint's run on it (an endpoint tagged before gitops_repo)
    last_request_at: datetime | None = None
    run: str | None = None  # the run it serves (tag gitops_run)
    run_status: str | None = None  # from the ledger; None when the ledger has no record
    rollout_step: str | None = None  # the step of a rollout in progress (the run's cursor), if any
    record_unreadable: str = ""  # why the run's ledger record (or the spec stored in it) cannot be read; "" when it can
    keep: bool = False  # the spec's lifecycle.keep
    idle_after: timedelta | None = None  # the spec's, else the repo default
    expire_after: timedelta | None = None
    spec_on_main: bool | None = None  # None: not known (no repo given)
    kept_deployment: str | None = None  # the replaced deployment kept at 0% for a rollback (deploy.keep_previous_for)
    kept_until: datetime | None = None
    # A serverless endpoint (one model; deleted as a whole) rather than a managed one.
    serverless: bool = False
    # The run serves from another endpoint now (a newer serverless version's, or a serverless one after a change of
    # kind): this one is kept only as ``kept_deployment`` says, and is deleted once that is over.
    replaced_by: str | None = None

    @property
    def owner(self) -> Claim:
        return claim(self.tags, self.repo, self.held)

    @property
    def last_deployed_at(self) -> datetime | None:
        times = [d.created_at for d in self.deployments if d.created_at] or ([self.created_at] if self.created_at else [])
        return max(times) if times else None


@dataclass(frozen=True)
class Rules:
    idle_after: timedelta
    expire_after: timedelta
    stuck_grace: timedelta
    prune_orphans: bool = False
    max_deletions_per_run: int = 3


@dataclass(frozen=True)
class Verdict:
    endpoint: str
    action: Action
    reasons: tuple[str, ...]
    run: str | None = None
    deployments: tuple[str, ...] = field(default=())  # for delete_deployments
    unreadable: bool = False  # skipped because the run's record could not be read: the command says so in its exit code
    serverless: bool = False  # a serverless endpoint: deleted with delete_serverless

    def line(self) -> str:
        extra = f" ({', '.join(self.deployments)})" if self.deployments else ""
        return f"{self.action:18} {self.endpoint}{extra}: {'; '.join(self.reasons)}"


def _age(now: datetime, then: datetime | None) -> timedelta | None:
    return None if then is None else now - then


def judge(facts: EndpointFacts, rules: Rules, now: datetime) -> Verdict:
    """The decision for one endpoint, before the deletion cap."""

    def verdict(action: Action, *reasons: str, deployments: tuple[str, ...] = ()) -> Verdict:
        return Verdict(facts.name, action, reasons, facts.run, deployments, serverless=facts.serverless)

    owner = facts.owner
    if not owner.ours:
        return verdict("skip", owner.reason)
    if facts.keep or keep_tag_says_keep(facts.tags.get(KEEP_TAG)):
        return verdict("keep", "kept by lifecycle.keep" if facts.keep else f"kept by the {KEEP_TAG} tag")
    if facts.record_unreadable:
        why = f"run {facts.run}'s ledger record cannot be read ({facts.record_unreadable}): nothing is deleted on it"
        return Verdict(facts.name, "skip", (why,), facts.run, unreadable=True, serverless=facts.serverless)
    if facts.rollout_step or facts.run_status in ("deploying", "rolling_back"):
        step = f" (step {facts.rollout_step})" if facts.rollout_step else ""
        return verdict("skip", f"run {facts.run} is mid-deploy{step}")
    if facts.replaced_by is not None:  # the run serves elsewhere: this one only waits out keep_previous_for
        keeping = facts.kept_deployment is not None and facts.kept_until is not None and facts.kept_until > now
        if keeping:
            return verdict("keep", f"kept for a rollback until {facts.kept_until:%Y-%m-%d %H:%M} UTC (deploy.keep_previous_for)")
        billed = " (its hosting fee is billed whether it is called or not)" if facts.serverless else ""
        return verdict("delete", f"replaced: run {facts.run} serves from {facts.replaced_by}{billed}")
    reasons = []
    idle_after = facts.idle_after or rules.idle_after
    expire_after = facts.expire_after or rules.expire_after
    deployed_age = _age(now, facts.last_deployed_at)
    if deployed_age is not None and deployed_age > expire_after:
        reasons.append(f"expired: last deployed {_fmt(deployed_age)} ago (expire_after {_fmt(expire_after)})")
    if facts.usage_known:
        last_activity = max(filter(None, [facts.last_request_at, facts.last_deployed_at]), default=None)
        idle = _age(now, last_activity)
        if idle is not None and idle > idle_after:
            reasons.append(f"idle: no requests for {_fmt(idle)} (idle_after {_fmt(idle_after)})")
    if rules.prune_orphans and facts.spec_on_main is False:
        reasons.append(f"orphaned: runs/{facts.run}.yaml no longer exists on main")
    if reasons:
        return verdict("delete", *reasons)
    kept = facts.kept_deployment if facts.kept_until is not None and facts.kept_until > now else None
    stuck = tuple(
        d.name
        for d in facts.deployments
        if d.name != kept and d.traffic == 0 and (age := _age(now, d.created_at)) is not None and age > rules.stuck_grace
    )
    if stuck and sum(d.traffic for d in facts.deployments) > 0:
        return verdict("delete_deployments", f"left at 0% traffic for over {_fmt(rules.stuck_grace)}", deployments=stuck)
    active = "usage unknown: counted as active" if not facts.usage_known else "in use and within its lifetime"
    return verdict("keep", active)


def decide(endpoints: list[EndpointFacts], rules: Rules, now: datetime) -> list[Verdict]:
    """Every endpoint's verdict, with deletions beyond the cap turned into skips (oldest deploys go first)."""
    verdicts = {f.name: judge(f, rules, now) for f in endpoints}
    order = sorted(endpoints, key=lambda f: f.last_deployed_at or now)
    budget = rules.max_deletions_per_run
    for facts in order:
        v = verdicts[facts.name]
        if v.action != "delete":
            continue
        if budget > 0:
            budget -= 1
        else:
            verdicts[facts.name] = Verdict(
                v.endpoint,
                "skip",
                (*v.reasons, f"deletion cap of {rules.max_deletions_per_run} per run reached: next run"),
                v.run,
                serverless=v.serverless,
            )
    return [verdicts[f.name] for f in endpoints]


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0", "")
    return f"{seconds}s"
