"""What a run has cost so far and what it is expected to cost, from its ledger record: training time and deployment
hours (instance-hours) x the price the plan uses.

The record's history is the clock. A version trains from its ``submitted`` entry until the run leaves ``submitted`` or
``running``; a deployment exists from a ``deploying`` entry (the candidate is created) and serves once ``live``, until
``retired``; a candidate beside what serves is billed too until ``live`` (it replaced it), ``rolled_back``,
``rejected`` or ``failed``; the deployment replaced last and kept at 0% (``deploy.keep_previous_for``) is billed until
its keep ends. Nothing here calls a backend: the dashboard's list of a thousand runs reads the ledger alone, and the
figures say what they rest on (a price unknown is unknown, never $0).

Expected: what is spent, plus the rest of a training in progress at the plan's estimate, plus serving until
``lifecycle.expire_after`` from the last deployment (cleanup deletes it then), or per 30 days for a ``keep`` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitops.cost.estimate import CostEstimate, estimate
from gitops.cost.prices import PriceSource
from gitops.ledger.model import RunRecord, stored_spec
from gitops.spec.model import parse_duration
from gitops.spec.policy import Policy

if TYPE_CHECKING:
    from gitops.cost.tokens import TokenSnapshot

TRAINING = frozenset({"submitted", "running"})
CANDIDATE_ENDS = frozenset({"live", "rolled_back", "rejected", "failed", "retired"})
MONTH_H = 24 * 30


@dataclass(frozen=True)
class Spend:
    """A run's cost so far and expected. Hours come from the ledger; dollars are None when a price is unknown."""

    billed: bool  # False: the backend bills nothing (the local one runs on this machine)
    training_hours: float  # job time of every version in the history
    deployment_hours: float  # hours a deployment (or a serverless endpoint) existed, summed over deployments
    instances: int  # instances per managed deployment (1 for a serverless endpoint)
    training_usd: float | None
    serving_usd: float | None
    expected_usd: float | None
    expected_basis: str  # what the expected figure rests on
    prices_from: str  # the prices' dates and sources
    notes: tuple[str, ...] = ()
    serving_hourly: float | None = None  # what serving bills by the hour now, called or not (None: unknown)

    @property
    def instance_hours(self) -> float:
        return self.deployment_hours * self.instances

    @property
    def so_far_usd(self) -> float | None:
        if not self.billed:
            return 0.0
        if self.training_usd is None or self.serving_usd is None:
            return None
        return self.training_usd + self.serving_usd

    def line(self) -> str:
        """One line for `gitops status NAME` and the report: spent, on what, and expected."""
        hours = f"{self.training_hours:.1f} h of training, {self.instance_hours:.1f} instance-hours"
        if not self.billed:
            return f"no cloud cost (this machine): {hours}"
        spent = f"${self.so_far_usd:,.2f}" if self.so_far_usd is not None else "unknown (a price is unknown)"
        expected = f"${self.expected_usd:,.2f}" if self.expected_usd is not None else "unknown"
        return f"{spent} so far ({hours}); expected {expected} ({self.expected_basis})"


@dataclass(frozen=True)
class _Hours:
    training: float  # all versions
    training_now: float  # the version in training now (0 when none trains)
    deployed: float  # deployment-hours
    last_deployed_at: float | None  # when the last deployment was created (the ``deploying`` entry)


def hours(record: RunRecord, now: float) -> _Hours:
    """Training and deployment hours from the record's history, up to ``now``."""
    training = training_now = deployed = 0.0
    serving = candidate = False
    last_deployed_at = None
    history = record.history
    for i, entry in enumerate(history):
        end = history[i + 1].at if i + 1 < len(history) else now
        span = max(0.0, end - entry.at) / 3600
        if entry.status in TRAINING:
            training += span
            training_now = training_now + span if i + 1 == len(history) or history[i + 1].status in TRAINING else 0.0
        if entry.status == "deploying" and (i == 0 or history[i - 1].status != "deploying"):
            candidate, last_deployed_at = True, entry.at
        elif entry.status in CANDIDATE_ENDS:
            candidate = False
            serving = entry.status == "live" or (serving and entry.status != "retired")
        deployed += span * (int(serving) + int(candidate))
    # The deployment replaced last, kept at 0% for an instant rollback, bills until its keep ends.
    went_live = record.entered("live")
    if record.previous_kept_until and went_live is not None and record.previous_deployment:
        deployed += max(0.0, min(now, record.previous_kept_until) - went_live) / 3600
    return _Hours(training, training_now, deployed, last_deployed_at)


def run_estimate(record: RunRecord, prices: PriceSource, tokens: TokenSnapshot | None = None) -> CostEstimate:
    """The plan's estimate for the record's version (its stored spec, params and policy), at ``prices``;
    ``CorruptRecordError`` when today's schema cannot read the stored spec."""
    spec = stored_spec(record)
    policy = Policy.model_validate(record.policy or {})
    previous = record.model_copy(update={"report": record.previous_report}) if record.previous_report else None
    return estimate(spec, record.params, policy, prices, previous, tokens)


def priced(record: RunRecord, prices: PriceSource, now: float) -> tuple[Spend | None, str]:
    """``record``'s spend at ``prices``, or None and why it cannot be priced (no spec kept; a stored spec or policy
    today's schema refuses): what the dashboard, `gitops status` and the report show."""
    from gitops.errors import GitopsError

    if not record.spec:
        return None, "the record keeps no spec to price"
    try:
        return spend(record, run_estimate(record, prices), now), ""
    except GitopsError as exc:
        return None, exc.headline
    except (ValueError, TypeError):  # a stored policy today's schema refuses
        return None, "the run's stored policy cannot be read"


def spend(record: RunRecord, cost: CostEstimate, now: float) -> Spend:
    """What ``record``'s run has cost by ``now`` and is expected to, priced as ``cost`` (``run_estimate``) prices it."""
    h = hours(record, now)
    serverless_serving = cost.serverless_serving
    instances = 1 if serverless_serving else cost.instances
    if not cost.billed:
        return Spend(False, h.training, h.deployed, instances, 0.0, 0.0, 0.0, "no cloud cost (this machine)", cost.prices_from, (), 0.0)
    notes: list[str] = []
    if cost.serverless_training:
        tokens = (record.report or {}).get("tokens_seen")
        rate = cost.token_rates.train_per_million if cost.token_rates else None
        training = tokens / 1e6 * rate if isinstance(tokens, int | float) and rate is not None else None
        if training is None:
            notes.append("serverless training: tokens or their price unknown")
    else:
        hourly = cost.training_hourly
        training = hourly * h.training if hourly is not None else (0.0 if h.training == 0 else None)
    hourly_serving = cost.deploy_hourly
    serving = hourly_serving * h.deployed if hourly_serving is not None else (0.0 if h.deployed == 0 else None)
    if serverless_serving:
        notes.append("serverless tokens are not counted (the ledger keeps no usage): hosting fee only")
    expected, basis = _expected(record, cost, h, now, training, serving)
    return Spend(
        True, h.training, h.deployed, instances, training, serving, expected, basis, cost.prices_from, tuple(notes), hourly_serving
    )


def _expected(
    record: RunRecord, cost: CostEstimate, h: _Hours, now: float, training: float | None, serving: float | None
) -> tuple[float | None, str]:
    if training is None or serving is None:
        return None, "a price is unknown"
    total, basis = training + serving, ["spent"]
    if record.status in TRAINING:
        estimated = cost.training_usd
        if estimated is None:
            return None, "spent, and a training whose duration is unknown until a version has trained"
        spent_now = (cost.training_hourly or 0.0) * h.training_now
        total += max(0.0, estimated - spent_now)
        basis.append("the rest of the training at the plan's estimate")
    serves = record.status not in ("retired", "failed") and (record.deployment or record.cursor is not None)
    if serves and cost.deploy_hourly is not None:
        if cost.deploy_bound_hours is None:  # lifecycle.keep: no end
            return None, f"kept (lifecycle.keep): ${cost.deploy_hourly * MONTH_H:,.0f} of serving per 30 days on top of what is spent"
        since = h.last_deployed_at if h.last_deployed_at is not None else now
        left = max(0.0, since + parse_duration(cost.expire_after).total_seconds() - now) / 3600
        total += cost.deploy_hourly * left
        basis.append(f"serving until expire_after {cost.expire_after} from the last deployment")
    return total, ", ".join(basis)


def idle_hours(record: RunRecord, last_request_at: float | None, now: float) -> float | None:
    """Hours the serving deployment has been paid for since it last answered a request (since it went live, when it
    never has): what an idle endpoint costs before cleanup's ``idle_after`` deletes it. None when nothing serves."""
    went_live = record.entered("live")
    if not record.serves or went_live is None:
        return None
    return max(0.0, now - max(went_live, last_request_at or went_live)) / 3600
