"""The cost a plan shows for a spec, and the budget caps of ``gitops.yaml`` applied to it.

Training: the training SKU's hourly price x nodes, for as long as the previous version of the same run trained
(scaled by the share of data, the epochs or steps, and the nodes), or per hour when no version has run yet.
Serving: the deployment SKU's hourly price x instances, bounded by the lifecycle: at most until ``expire_after``
(an idle endpoint goes earlier), unbounded when ``keep`` is set. Backends that bill nothing (the local one) cost
nothing. Every price names its date and source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gitops.cost.prices import Price, PriceSource
from gitops.cost.tokens import TokenRates, TokenSnapshot, committed_token_snapshot, training_tokens
from gitops.ledger.model import RunRecord
from gitops.spec.capabilities import KINDS
from gitops.spec.findings import Code, Finding, error, warning
from gitops.spec.model import RunSpec, parse_duration
from gitops.spec.policy import POLICY_FILE, BudgetPolicy, Policy, run_environments, serving_in

if TYPE_CHECKING:
    from gitops.spec.validate import ValidSpec


def _billed(backend: str) -> bool:
    """Whether the backend's compute and serving are billed at a price list (the local one runs on this machine)."""
    kind = KINDS.get(backend)
    return kind is not None and kind.billed


def _times(a: float | None, b: float | None) -> float | None:
    """A product that is unknown when either factor is."""
    return a * b if a is not None and b is not None else None


@dataclass(frozen=True)
class CostEstimate:
    backend: str
    region: str
    training_sku: str | None = None
    training_price: Price | None = None
    nodes: int = 1
    training_hours: float | None = None
    training_basis: str = ""  # where the duration comes from
    deploy_sku: str | None = None
    deploy_price: Price | None = None
    instances: int = 1
    deploy_bound_hours: float | None = None  # None: kept, no bound
    idle_after: str = ""
    expire_after: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    environment: str = ""  # with environments in gitops.yaml: the one this estimate is for
    later: tuple[CostEstimate, ...] = ()  # serving in each environment after the first (nothing trains there)
    # Serverless training (per token) and serving (per token plus an hourly hosting fee): the model's rates there.
    training_kind: str = "pipeline"
    serving_kind: str = "managed"
    model: str = ""
    token_rates: TokenRates | None = None
    training_tokens: float | None = None  # tokens x epochs, scaled from the previous version's (None: unknown yet)

    @property
    def serverless_training(self) -> bool:
        return self.training_kind == "serverless"

    @property
    def serverless_serving(self) -> bool:
        return self.serving_kind == "serverless"

    def _rate(self, name: str) -> float | None:
        return getattr(self.token_rates, name) if self.token_rates is not None else None

    @property
    def billed(self) -> bool:
        return _billed(self.backend)

    @property
    def training_hourly(self) -> float | None:
        if self.serverless_training:  # billed per token, not by the hour
            return None
        return _times(self.training_price.usd_per_hour if self.training_price else None, self.nodes)

    @property
    def training_usd(self) -> float | None:
        if self.serverless_training:
            return _times(self.training_tokens / 1e6 if self.training_tokens is not None else None, self._rate("train_per_million"))
        return _times(self.training_hourly, self.training_hours)

    @property
    def deploy_hourly(self) -> float | None:
        """What serving bills by the hour, called or not: the VMs, or a serverless endpoint's hosting fee."""
        if self.serverless_serving:
            return self._rate("hosting_per_hour")
        return _times(self.deploy_price.usd_per_hour if self.deploy_price else None, self.instances)

    @property
    def deploy_bound_usd(self) -> float | None:
        return _times(self.deploy_hourly, self.deploy_bound_hours)

    @property
    def prices_from(self) -> str:
        """The dates and sources of the prices used, e.g. ``snapshot of 2026-07-01 (eastus)``."""
        seen = sorted({(p.source, p.as_of) for p in (self.training_price, self.deploy_price) if p is not None})
        if self.token_rates is not None and (self.serverless_training or self.serverless_serving):
            seen.append(("serverless price snapshot", self.token_rates.as_of))
        if not seen:
            return "no price known"
        return "; ".join(f"{src} of {day}" if src == "snapshot" else f"{src}, {day}" for src, day in seen) + f" ({self.region})"

    def training_line(self) -> str:
        if not self.billed:
            return "no cloud cost (trains on this machine)"
        if self.serverless_training:
            return self._serverless_training_line()
        if self.training_sku is None:
            return "unknown: the cluster's size is read online (set compute.instance_type to see it here)"
        if self.training_price is None:
            return f"unknown: no price for {self.training_sku} in {self.region}"
        rate = f"{self.training_sku} ${self.training_price.usd_per_hour:.3f}/h x {self.nodes} node{'s' if self.nodes > 1 else ''}"
        if self.training_usd is None:
            return f"${self.training_hourly:.2f}/h ({rate}); {self.training_basis}"
        return f"~${self.training_usd:,.2f} ({rate} x ~{self.training_hours:.1f} h, {self.training_basis})"

    def serving_usd(self, hours: float, prompt_tokens: float = 0.0, completion_tokens: float = 0.0) -> float | None:
        """What serving costs for ``hours`` of being deployed and the tokens it answered: the VMs by the hour (called
        or not), or a serverless endpoint's hosting fee by the hour plus its tokens. None when a price it needs is
        unknown (never 0)."""
        hourly = self.deploy_hourly
        if hourly is None:
            return None
        if not self.serverless_serving:
            return hourly * hours
        tokens = [(prompt_tokens, self._rate("input_per_million")), (completion_tokens, self._rate("output_per_million"))]
        if any(n and rate is None for n, rate in tokens):
            return None
        return hourly * hours + sum(n / 1e6 * (rate or 0.0) for n, rate in tokens)

    def _serverless_training_line(self) -> str:
        rates = self.token_rates
        if rates is None or rates.train_per_million is None:
            return f"price unknown: no serverless fine-tuning price for {self.model} in {self.region} (billed per token x epochs)"
        rate = f"{rates.label('train_per_million')} x epochs"
        if self.training_tokens is None:
            return f"{rate}; tokens unknown until a version of this run has trained"
        at = rates.label("train_per_million")
        return f"~${self.training_usd or 0:,.2f} (~{self.training_tokens:,.0f} tokens x epochs at {at}, scaled from the previous version)"

    def _serverless_serving_line(self) -> str:
        rates = self.token_rates
        tokens = (
            f"{rates.label('input_per_million')} in, {rates.label('output_per_million')} out"
            if rates is not None
            else f"price unknown for {self.model} in {self.region}"
        )
        if self.deploy_hourly is None:
            return f"per token ({tokens}); hosting fee: price unknown (billed by the hour deployed, called or not)"
        hosting = f"hosting {rates.label('hosting_per_hour') if rates else ''}, called or not"
        bound = (
            f"at most ${self.deploy_bound_usd:,.2f} of hosting until expire_after {self.expire_after}"
            if self.deploy_bound_usd is not None
            else f"kept: ${self.deploy_hourly * 24 * 30:,.0f} of hosting per 30 days"
        )
        return f"per token ({tokens}) + {hosting}; {bound}"

    def serving_line(self) -> str:
        if not self.billed:
            return "no cloud cost (serves on this machine)"
        if self.serverless_serving:
            return self._serverless_serving_line()
        if self.deploy_price is None:
            return f"unknown: no price for {self.deploy_sku} in {self.region}"
        rate = f"${self.deploy_hourly:.2f}/h ({self.deploy_sku} x {self.instances} instance{'s' if self.instances > 1 else ''})"
        if self.deploy_bound_usd is None:
            return f"{rate}; kept: no bound, ${(self.deploy_hourly or 0) * 24 * 30:,.0f} per 30 days"
        return f"{rate}; at most ${self.deploy_bound_usd:,.2f} until expire_after {self.expire_after}; stopped after {self.idle_after} idle"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            training_hourly=self.training_hourly,
            training_usd=self.training_usd,
            deploy_hourly=self.deploy_hourly,
            deploy_bound_usd=self.deploy_bound_usd,
            prices_from=self.prices_from,
            later=[c.to_dict() for c in self.later],
        )
        return data


def _work(spec: dict[str, Any], params: dict[str, Any]) -> float:
    """How much training a version asks for, up to a constant: share of data x epochs (or steps) / nodes."""
    data = spec.get("data") or {}
    share = float(data.get("sample_percent") or 100) / 100
    steps = params.get("max_steps")
    amount = float(steps) if isinstance(steps, int) and steps > 0 else share * float(params.get("num_train_epochs") or 1)
    return amount / max(1, int((spec.get("compute") or {}).get("nodes") or 1))


def training_duration(spec: RunSpec, params: dict[str, Any], previous: RunRecord | None) -> tuple[float | None, str]:
    """Hours, from the previous version of the run when it trained on the same size, and what that rests on."""
    seconds = (previous.report or {}).get("duration_s") if previous is not None else None
    if previous is None or not isinstance(seconds, int | float) or seconds <= 0:
        return None, "duration unknown until a version of this run has trained"
    before = (previous.spec.get("compute") or {}).get("instance_type")
    if str(before or "").lower() != str(spec.compute.instance_type or "").lower():
        return None, f"duration unknown: the previous version trained on {before or 'another size'}"
    scale = _work(spec.model_dump(mode="json"), params) / max(_work(previous.spec, previous.params), 1e-9)
    basis = "as long as the previous version" if abs(scale - 1) < 1e-6 else f"the previous version's time x {scale:.2f}"
    return seconds / 3600 * scale, basis


def estimate(
    spec: RunSpec,
    params: dict[str, Any],
    policy: Policy,
    prices: PriceSource,
    previous: RunRecord | None = None,
    token_prices: TokenSnapshot | None = None,
) -> CostEstimate:
    """What a version costs: training and serving in the first environment (the only one without environments in
    gitops.yaml), and serving in each environment after it, each at its own region's prices."""
    environments = run_environments(spec, policy) if policy.environments else []
    everywhere, policy = policy, policy.first_environment()
    region = policy.budget.region.lower()
    idle = spec.lifecycle.idle_after or policy.defaults.idle_after
    expire = spec.lifecycle.expire_after or policy.defaults.expire_after
    if not _billed(spec.backend):
        return CostEstimate(spec.backend, region, idle_after=idle, expire_after=expire)
    serverless = "serverless" in (spec.finetune.kind, spec.deploy.kind)
    train_sku = None if spec.finetune.kind == "serverless" else spec.compute.instance_type
    deploy_sku = None if spec.deploy.kind == "serverless" else spec.deploy.instance_type or KINDS[spec.backend].default_deploy_sku
    hours, basis = training_duration(spec, params, previous)
    bound = None if spec.lifecycle.keep else parse_duration(expire).total_seconds() / 3600
    tokens = None
    if previous is not None and previous.spec:
        work_now, work_before = _work(spec.model_dump(mode="json"), params), _work(previous.spec, previous.params)
        tokens = training_tokens(work_now, work_before, (previous.report or {}).get("tokens_seen"))
    return CostEstimate(
        spec.backend,
        region,
        train_sku,
        prices.hourly(region, train_sku) if train_sku else None,
        spec.compute.nodes,
        hours,
        basis,
        deploy_sku,
        prices.hourly(region, deploy_sku) if deploy_sku else None,
        spec.deploy.instance_count,
        bound,
        idle,
        expire,
        environment=environments[0] if environments else "",
        later=tuple(_serving_cost(spec, everywhere, env, prices, bound, idle, expire) for env in environments[1:]),
        training_kind=spec.finetune.kind,
        serving_kind=spec.deploy.kind,
        model=spec.model.name,
        token_rates=(token_prices or committed_token_snapshot()).rates(region, spec.model.name) if serverless else None,
        training_tokens=tokens,
    )


def _serving_cost(
    spec: RunSpec, policy: Policy, environment: str, prices: PriceSource, bound: float | None, idle: str, expire: str
) -> CostEstimate:
    serving = serving_in(spec, environment)
    region = policy.in_environment(environment).budget.region.lower()
    sku = serving.instance_type or KINDS[spec.backend].default_deploy_sku
    price = prices.hourly(region, sku) if sku else None
    return CostEstimate(
        spec.backend,
        region,
        deploy_sku=sku,
        deploy_price=price,
        instances=serving.instance_count,
        deploy_bound_hours=bound,
        idle_after=idle,
        expire_after=expire,
        environment=environment,
    )


def budget_findings(cost: CostEstimate, policy: Policy, spec: RunSpec | None = None) -> list[Finding]:
    """The caps of ``budget:`` applied to an estimate, each environment's to what it costs there. A cap that cannot
    be checked (no price, no size) is an error too: a budget is never waved through for want of a number."""
    out = _first_environment_caps(cost, policy.in_environment(cost.environment).budget if cost.environment else policy.budget)
    for later in cost.later:
        own = spec is not None and later.environment in spec.deploy.environments
        path = f"deploy.environments.{later.environment}.instance_type" if own else "deploy.instance_type"
        out += _serving_caps(later, policy.in_environment(later.environment).budget, path)
    return out


def _serving_caps(cost: CostEstimate, b: BudgetPolicy, path: str) -> list[Finding]:
    """An environment after the first only serves: its hourly cap, against what serving there costs."""
    if not cost.billed or b.max_hourly_usd is None:
        return []
    if cost.deploy_hourly is None:
        why = f"no price for {cost.deploy_sku} in {cost.region}: the budget of {cost.environment} cannot be checked"
        return [error(path, why, "add the size to the price snapshot, or pick a size with a known price", code=Code.PRICE_UNKNOWN)]
    if cost.deploy_hourly > b.max_hourly_usd:
        why = f"serving in {cost.environment} costs ${cost.deploy_hourly:.2f}/h, over its budget.max_hourly_usd ${b.max_hourly_usd:.2f}"
        return [error(path, why, "use a smaller size or fewer instances there, or raise the cap", code=Code.BUDGET)]
    return []


def _first_environment_caps(cost: CostEstimate, b: BudgetPolicy) -> list[Finding]:
    if not cost.billed or (b.max_training_usd is None and b.max_hourly_usd is None):
        return []
    out: list[Finding] = []
    hint_price = "add the size to the price snapshot (gitops prices refresh), or pick a size with a known price"
    if cost.serverless_training:
        if b.max_training_usd is not None and cost._rate("train_per_million") is None:
            out.append(
                error(
                    "finetune.kind",
                    f"no serverless fine-tuning price for {cost.model} in {cost.region}: budget.max_training_usd cannot be checked",
                    "add the model's rates to gitops/cost/serverless_prices.yaml (with their source), or train on a VM size",
                    code=Code.PRICE_UNKNOWN,
                )
            )
    elif cost.training_sku is None:
        out.append(
            error(
                "compute.instance_type",
                f"the budget in {POLICY_FILE} cannot be checked without the training size",
                "set compute.instance_type to the cluster's VM size",
                code=Code.PRICE_UNKNOWN,
            )
        )
    elif cost.training_price is None:
        out.append(
            error(
                "compute.instance_type",
                f"no price for {cost.training_sku} in {cost.region}: the budget cannot be checked",
                hint_price,
                code=Code.PRICE_UNKNOWN,
            )
        )
    if cost.serverless_serving:
        if cost.deploy_hourly is None and b.max_hourly_usd is not None:
            out.append(
                error(
                    "deploy.kind",
                    f"no hosting fee known for a fine-tuned {cost.model} in {cost.region}: budget.max_hourly_usd cannot be checked",
                    "add the model's rates to gitops/cost/serverless_prices.yaml (with their source), or serve on a VM size",
                    code=Code.PRICE_UNKNOWN,
                )
            )
    elif cost.deploy_price is None and b.max_hourly_usd is not None:
        out.append(
            error(
                "deploy.instance_type",
                f"no price for {cost.deploy_sku} in {cost.region}: the budget cannot be checked",
                hint_price,
                code=Code.PRICE_UNKNOWN,
            )
        )
    if b.max_hourly_usd is not None:
        if cost.training_hourly is not None and cost.training_hourly > b.max_hourly_usd:
            out.append(
                error(
                    "compute.instance_type",
                    f"training costs ${cost.training_hourly:.2f}/h, over budget.max_hourly_usd ${b.max_hourly_usd:.2f}",
                    "use a smaller size or fewer nodes, or raise the cap in a reviewed change",
                    code=Code.BUDGET,
                )
            )
        if cost.deploy_hourly is not None and cost.deploy_hourly > b.max_hourly_usd:
            out.append(
                error(
                    "deploy.kind" if cost.serverless_serving else "deploy.instance_type",
                    f"serving costs ${cost.deploy_hourly:.2f}/h, over budget.max_hourly_usd ${b.max_hourly_usd:.2f}",
                    "use a smaller size or fewer instances, or raise the cap",
                    code=Code.BUDGET,
                )
            )
    if b.max_training_usd is not None and (cost.training_price is not None or cost._rate("train_per_million") is not None):
        path = "finetune.kind" if cost.serverless_training else "compute.instance_type"
        bills = (
            f"{cost.token_rates.label('train_per_million')} x epochs"
            if cost.serverless_training and cost.token_rates is not None
            else f"${cost.training_hourly or 0:.2f}/h"
        )
        basis = "tokens scaled from the previous version" if cost.serverless_training else cost.training_basis
        if cost.training_usd is None:
            out.append(
                warning(
                    path,
                    f"budget.max_training_usd ${b.max_training_usd:,.2f} is checked once a "
                    f"version has trained ({basis if cost.training_tokens else 'no version has trained yet'}); it bills {bills}",
                    code=Code.BUDGET,
                )
            )
        elif cost.training_usd > b.max_training_usd:
            out.append(
                error(
                    path,
                    f"training is estimated at ~${cost.training_usd:,.2f}, over "
                    f"budget.max_training_usd ${b.max_training_usd:,.2f} ({basis})",
                    "train on less data or fewer epochs, or raise the cap in a reviewed change",
                    code=Code.BUDGET,
                )
            )
    return out


def assess(valid: ValidSpec, policy: Policy, prices: PriceSource, previous: RunRecord | None = None) -> tuple[CostEstimate, list[Finding]]:
    """A valid spec's estimate and its budget findings, placed on the spec's lines."""
    cost = estimate(valid.spec, valid.params, policy, prices, previous)
    return cost, valid.locate([replace(f, source="budget") for f in budget_findings(cost, policy, valid.spec)])
