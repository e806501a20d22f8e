"""The repo policy (pass two of validation): ``gitops.yaml`` at the repo root.

The schema says what a spec may be; the policy says what this repo allows: backends, compute clusters
and SKUs, caps on nodes, instances and epochs, required fields. Findings are errors or warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gitops.spec.capabilities import KINDS, Feature, kind_of
from gitops.spec.findings import Code, Finding, Severity, error, warning
from gitops.spec.model import EVIDENCE, Duration, EnvironmentName, RolloutSpec, RunSpec, parse_duration
from gitops.spec.parse import model_from_yaml

POLICY_FILE = "gitops.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComputePolicy(_Strict):
    allowed_clusters: list[str] | None = Field(None, description="Compute clusters a spec may use (None: any).")
    allowed_instance_types: list[str] | None = Field(None, description="Training SKUs a spec may use (None: any).")
    allowed_deploy_instance_types: list[str] | None = Field(None, description="Serving SKUs (None: any).")
    # Which kinds of training and serving the repository allows (a team may keep every run on its own clusters).
    allowed_finetune_kinds: list[Literal["pipeline", "job", "serverless"]] | None = Field(
        None, description="Training kinds a spec may use (finetune.kind; None: any)."
    )
    allowed_deploy_kinds: list[Literal["managed", "serverless"]] | None = Field(
        None, description="Serving kinds a spec may use (deploy.kind; None: any)."
    )


class Caps(_Strict):
    max_nodes: int = Field(2, ge=1)
    max_instance_count: int = Field(2, ge=1)
    max_epochs: int = Field(10, ge=1)
    max_steps: int = Field(100_000, ge=1, description="finetune.params.max_steps above this is refused (it overrides epochs).")


class Defaults(_Strict):
    idle_after: Duration = "24h"
    expire_after: Duration = "7d"


class Phase(StrEnum):
    """A stretch of a run's plans with one deadline: the rollout's phases (``RolloutPolicy``'s fields), the gradual
    traffic's whole time, and how long a held candidate waits for a person."""

    REGISTER = "register"
    ENDPOINT = "endpoint"
    DEPLOYMENT = "deployment"
    SMOKE = "smoke"
    GATE = "gate"
    TRAFFIC = "traffic"
    RAMP = "ramp"
    HOLD = "hold"


DEFAULT_PHASE_S = 30 * 60.0  # what a record from before deadlines were kept gives a phase
DEFAULT_HOLD_S = 24 * 3600.0


class Deadlines(_Strict):
    """Seconds each phase may take, resolved once when a version is submitted (the spec's own, else the policy's) and
    kept on the run. A phase a record from before deadlines were kept does not name takes the defaults."""

    register: float | None = None
    endpoint: float | None = None
    deployment: float | None = None
    smoke: float | None = None
    gate: float | None = None
    traffic: float | None = None
    ramp: float | None = None
    hold: float | None = None

    def of(self, phase: Phase) -> float:
        return float(getattr(self, phase.value) or (DEFAULT_HOLD_S if phase is Phase.HOLD else DEFAULT_PHASE_S))


class RolloutPolicy(_Strict):
    """Default deadlines of a rollout's phases; a spec may set its own under ``deploy.timeouts``."""

    register: Duration = "30m"
    endpoint: Duration = "30m"
    deployment: Duration = "45m"
    smoke: Duration = "15m"
    gate: Duration = "30m"
    traffic: Duration = "15m"

    def resolve(self, spec: RunSpec) -> dict[str, float]:
        """Seconds per phase: the spec's value where it sets one, else this policy's."""
        own = spec.deploy.timeouts
        return {
            phase: parse_duration(getattr(own, phase, None) or getattr(self, phase)).total_seconds() for phase in type(self).model_fields
        }

    def deadlines(self, spec: RunSpec, hold_for: str) -> Deadlines:
        """Every phase's deadline for one run: the rollout's phases, how long a held candidate waits (``hold_for``),
        and the gradual traffic's whole time (each share's hold and a traffic change)."""
        phases = self.resolve(spec)
        ramp = spec.deploy.rollout
        whole = (
            len(ramp.shares) * (parse_duration(ramp.hold).total_seconds() + phases["traffic"])
            if ramp and ramp.shares
            else phases["traffic"]
        )
        return Deadlines(**phases, hold=parse_duration(hold_for).total_seconds(), ramp=whole)


def waived_evidence(enabled: bool, conversations: int, named: list[str]) -> list[str]:
    """The evidence a run's gate goes without: what the spec names under ``deploy.gate.waive``, everything when the
    gate is off, and the held-out conversations when it asks none (``conversations: 0``)."""
    waived = set(named)
    if not enabled:
        waived |= set(EVIDENCE)
    if not conversations:
        waived.add("held_out")
    return [e for e in EVIDENCE if e in waived]


class GateRules(_Strict):
    """The gate's rules for one run, resolved once when its version is submitted (the spec's, else the policy's)
    and kept on the run: every value concrete."""

    enabled: bool = True
    max_eval_loss_increase: float = 0.1
    max_perplexity: float | None = None
    conversations: int = 32
    margin: float = 0.02
    confidence: float = 0.95
    max_error_rate: float = 0.05
    max_p95_latency_ms: int | None = None
    hold_for: str = "24h"
    hold_for_s: float = DEFAULT_HOLD_S
    waive: list[str] = Field(default_factory=list)  # the evidence it goes without (``waived_evidence``)

    @classmethod
    def before_the_gate(cls) -> GateRules:
        """What a record written before the gate existed (no rules kept) is judged by: the default rules, with no
        held-out conversations (that record's code asked none)."""
        return cls(conversations=0, waive=waived_evidence(True, 0, []))


class GatePolicy(_Strict):
    """The promotion gate's defaults; a spec may set its own under ``deploy.gate``."""

    enabled: bool = True
    max_eval_loss_increase: float = Field(0.1, ge=0, description="Nats the final eval loss may rise over the serving version's.")
    max_perplexity: float | None = Field(None, gt=1, description="Absolute eval perplexity ceiling (None: none).")
    conversations: int = Field(32, ge=0, le=512, description="Held-out conversations of the online evaluation.")
    margin: float = Field(0.02, ge=0, le=1, description="Non-inferiority margin on mean ROUGE-L.")
    confidence: float = Field(0.95, ge=0.5, lt=1)
    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p95_latency_ms: int | None = Field(None, ge=1, description="None: the smoke test's max_latency_ms.")
    hold_for: Duration = "24h"

    def resolve(self, spec: RunSpec) -> GateRules:
        """The rules for one run: the spec's value where it sets one, else this policy's (kept on the run at submit)."""
        own = spec.deploy.gate
        rules: dict[str, Any] = {k: v if (v := getattr(own, k, None)) is not None else getattr(self, k) for k in type(self).model_fields}
        if rules["max_p95_latency_ms"] is None:
            rules["max_p95_latency_ms"] = spec.deploy.smoke_test.max_latency_ms
        rules["hold_for_s"] = parse_duration(rules["hold_for"]).total_seconds()
        rules["waive"] = waived_evidence(rules["enabled"], rules["conversations"], list(own.waive or []))
        return GateRules(**rules)


class CleanupPolicy(_Strict):
    prune_orphans: bool = Field(False, description="Delete endpoints whose spec no longer exists on main.")
    max_deletions_per_run: int = Field(3, ge=0)
    stuck_grace: Duration = "2h"


class BudgetPolicy(_Strict):
    """What one run may cost, by the plan's estimate. A spec over a cap is an error."""

    region: str = Field("eastus", min_length=2, description="The workspace's Azure region: prices are read for it.")
    max_training_usd: float | None = Field(None, gt=0, description="Cap on a version's estimated training cost (USD).")
    max_hourly_usd: float | None = Field(None, gt=0, description="Cap on the training or serving cost per hour (USD).")


class WorkspaceRef(_Strict):
    """Where an environment runs: an Azure ML workspace (subscription, resource group, name), or, for the local
    backend, a workspace directory."""

    subscription: str | None = Field(None, min_length=1, description="The Azure subscription id.")
    resource_group: str | None = Field(None, min_length=1)
    name: str | None = Field(None, min_length=1, description="The Azure ML workspace.")
    directory: str | None = Field(None, min_length=1, description="A local workspace directory (the local backend).")

    @model_validator(mode="after")
    def _one_form(self) -> WorkspaceRef:
        azure = (self.subscription, self.resource_group, self.name)
        if self.directory is not None and any(v is not None for v in azure):
            raise ValueError("is either an Azure ML workspace (subscription, resource_group, name) or a directory, not both")
        if self.directory is None and not all(v is not None for v in azure):
            raise ValueError("needs subscription, resource_group and name (an Azure ML workspace), or directory (local)")
        return self


class RegistryRef(_Strict):
    """The one registry that carries models from environment to environment: an Azure ML registry, or a local
    registry directory. Model names in it carry the repository's identity (registry names are global)."""

    name: str | None = Field(None, min_length=3, max_length=33, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="An Azure ML registry.")
    directory: str | None = Field(None, min_length=1, description="A local registry directory (the local backend).")

    @model_validator(mode="after")
    def _one_form(self) -> RegistryRef:
        if (self.name is None) == (self.directory is None):
            raise ValueError("is an Azure ML registry (name) or a local registry directory (directory): give one")
        return self


class PromotionRules(_Strict):
    """What a promotion into an environment needs, all of it: the version live this long in the environment before,
    the gate passed there (not a person's override), and a person's approval (the GitHub Environment of this
    environment's name, with its required reviewers)."""

    soak: Duration = Field("24h", description="How long the version must be live in the environment before.")
    gate: bool = Field(True, description="The gate passed in the environment before (a person's promote is not enough).")
    approval: bool = Field(True, description="A reviewer of the GitHub Environment of this name approves.")


class EnvironmentOverrides(_Strict):
    """What an environment allows differently from the repository's policy (each section replaces the repository's)."""

    compute: ComputePolicy | None = None
    caps: Caps | None = None
    budget: BudgetPolicy | None = None
    gate: GatePolicy | None = None
    rollout: RolloutPolicy | None = None


class EnvironmentPolicy(_Strict):
    """One stage a model goes through (dev, prod): its workspace, its rules, what a promotion into it needs."""

    name: EnvironmentName
    workspace: WorkspaceRef
    policy: EnvironmentOverrides = Field(default_factory=EnvironmentOverrides)
    promotion: PromotionRules = Field(default_factory=PromotionRules, description="Ignored for the first environment.")


class Policy(_Strict):
    """What this repo allows. Every field has a safe default, so an absent file is a valid policy."""

    allowed_backends: list[Literal["azureml", "local"]] = Field(default_factory=lambda: ["azureml", "local"])  # type: ignore[arg-type]
    compute: ComputePolicy = Field(default_factory=ComputePolicy)
    caps: Caps = Field(default_factory=Caps)
    required: list[Literal["owner", "description", "deploy.endpoint", "register.name"]] = Field(default_factory=list)
    model_labels: Literal["allow", "warn", "error"] = Field("warn", description="How to treat model.label (unpinned).")
    defaults: Defaults = Field(default_factory=Defaults)
    cleanup: CleanupPolicy = Field(default_factory=CleanupPolicy)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    budget: BudgetPolicy = Field(default_factory=BudgetPolicy)
    gate: GatePolicy = Field(default_factory=GatePolicy)
    environments: list[EnvironmentPolicy] = Field(
        default_factory=list, description="The stages a model goes through, in order; none: one workspace, as configured."
    )
    registry: RegistryRef | None = Field(
        None, validate_default=True, description="Carries models between environments (needed with two or more)."
    )

    @field_validator("environments")
    @classmethod
    def _distinct(cls, value: list[EnvironmentPolicy]) -> list[EnvironmentPolicy]:
        names = [e.name for e in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"environment {', '.join(twice)} is listed twice; give each environment one entry")
        if value and value[0].promotion != PromotionRules():  # (the defaults, as a stored policy writes them, are no rule)
            raise ValueError(f"{value[0].name} is the first environment, where a merge trains and rolls out: nothing is promoted into it")
        return value

    @field_validator("registry")
    @classmethod
    def _registry_between_environments(cls, value: RegistryRef | None, info: ValidationInfo) -> RegistryRef | None:
        if value is None and len(info.data.get("environments") or []) > 1:
            raise ValueError("two or more environments need a registry: add registry: {name: <an Azure ML registry>} (or directory:)")
        return value

    def environment(self, name: str) -> EnvironmentPolicy:
        found = next((e for e in self.environments if e.name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    def first_environment(self) -> Policy:
        """The rules where a run trains and first rolls out: the first environment's, else the repository's."""
        return self.in_environment(self.environments[0].name) if self.environments else self

    def in_environment(self, name: str) -> Policy:
        """This policy as it applies in environment ``name``: each section it overrides replaces the repository's."""
        overrides = self.environment(name).policy
        return self.model_copy(update={k: v for k, v in overrides if v is not None})


def _ci_in(value: str, allowed: list[str]) -> bool:
    return value.lower() in {a.lower() for a in allowed}


def _get(spec: RunSpec, dotted_path: str) -> object:
    value: object = spec
    for part in dotted_path.split("."):
        value = getattr(value, part, None)
    return value


def check_policy(spec: RunSpec, params: dict[str, object], policy: Policy) -> list[Finding]:  # noqa: C901  (one branch per rule of gitops.yaml, read flat)
    """Pass two: the repo's rules applied to a spec that passed the schema (with environments, the first one's: where
    the run trains and first serves); then the run's environments (``environment_findings``)."""
    out: list[Finding] = []
    everywhere, policy = policy, policy.first_environment()

    def add(sev: Severity, path: str, message: str, hint: str | None = None) -> None:
        maker = error if sev is Severity.ERROR else warning
        out.append(maker(path, message, hint, source="policy", code=Code.POLICY))

    if spec.backend not in policy.allowed_backends:
        add(
            Severity.ERROR,
            "backend",
            f"backend '{spec.backend}' is not allowed by {POLICY_FILE}",
            f"use one of: {', '.join(policy.allowed_backends)}",
        )
    for field_path in policy.required:
        if not _get(spec, field_path):
            add(Severity.ERROR, field_path, f"is required by {POLICY_FILE}", f"add '{field_path}' to the spec")
    if spec.model.label is not None and policy.model_labels != "allow":
        sev = Severity.ERROR if policy.model_labels == "error" else Severity.WARNING
        add(
            sev, "model.label", f"label '{spec.model.label}' is not reproducible: the run changes when the label moves", "pin model.version"
        )
    kind = KINDS.get(spec.backend)
    if kind is not None and kind.named_compute:  # the allow lists name clusters and VM sizes
        comp = policy.compute
        # A cluster is asked of what trains on compute of the repository's (serverless training runs on none).
        if comp.allowed_clusters is not None and spec.finetune.kind != "serverless":
            if spec.compute.cluster is None:
                add(
                    Severity.ERROR,
                    "compute.cluster",
                    "serverless compute is not allowed here; name a cluster",
                    f"use one of: {', '.join(comp.allowed_clusters)}",
                )
            elif not _ci_in(spec.compute.cluster, comp.allowed_clusters):
                add(
                    Severity.ERROR,
                    "compute.cluster",
                    f"cluster '{spec.compute.cluster}' is not allowed",
                    f"use one of: {', '.join(comp.allowed_clusters)}",
                )
        if (
            comp.allowed_instance_types is not None
            and spec.compute.instance_type is not None
            and not _ci_in(spec.compute.instance_type, comp.allowed_instance_types)
        ):
            add(
                Severity.ERROR,
                "compute.instance_type",
                f"SKU '{spec.compute.instance_type}' is not allowed",
                f"use one of: {', '.join(comp.allowed_instance_types)}",
            )
        if (
            comp.allowed_deploy_instance_types is not None
            and spec.deploy.instance_type is not None
            and not _ci_in(spec.deploy.instance_type, comp.allowed_deploy_instance_types)
        ):
            add(
                Severity.ERROR,
                "deploy.instance_type",
                f"SKU '{spec.deploy.instance_type}' is not allowed for serving",
                f"use one of: {', '.join(comp.allowed_deploy_instance_types)}",
            )
    kinds: list[tuple[str, str, list[str] | None]] = [
        ("finetune", spec.finetune.kind, list(policy.compute.allowed_finetune_kinds or []) or None),
        ("deploy", spec.deploy.kind, list(policy.compute.allowed_deploy_kinds or []) or None),
    ]
    for section, value, allowed in kinds:
        if allowed is not None and value not in allowed:
            add(
                Severity.ERROR,
                f"{section}.kind",
                f"{section}.kind {value} is not allowed by {POLICY_FILE}",
                f"use one of: {', '.join(allowed)} (compute.allowed_{section}_kinds)",
            )
    caps = policy.caps
    if spec.compute.nodes > caps.max_nodes:
        add(
            Severity.ERROR,
            "compute.nodes",
            f"{spec.compute.nodes} nodes exceeds the cap of {caps.max_nodes}",
            f"lower it, or raise caps.max_nodes in {POLICY_FILE} in a reviewed change",
        )
    if spec.deploy.instance_count > caps.max_instance_count:
        add(
            Severity.ERROR,
            "deploy.instance_count",
            f"{spec.deploy.instance_count} instances exceeds the cap of {caps.max_instance_count}",
            f"lower it, or raise caps.max_instance_count in {POLICY_FILE}",
        )
    epochs = params.get("num_train_epochs")
    if isinstance(epochs, int) and epochs > caps.max_epochs:
        add(
            Severity.ERROR,
            "finetune.params.num_train_epochs",
            f"{epochs} epochs exceeds the cap of {caps.max_epochs}",
            f"lower it, or raise caps.max_epochs in {POLICY_FILE}",
        )
    steps = params.get("max_steps")
    if isinstance(steps, int) and steps > caps.max_steps:
        add(
            Severity.ERROR,
            "finetune.params.max_steps",
            f"{steps} steps exceeds the cap of {caps.max_steps} (max_steps overrides "
            "the epochs, so the epoch cap alone does not bound training)",
            f"lower it, or raise caps.max_steps in {POLICY_FILE}",
        )
    if spec.lifecycle.keep:
        add(Severity.WARNING, "lifecycle.keep", "the endpoint is never torn down automatically; it bills until deleted")
    return out + environment_findings(spec, everywhere)


def run_environments(spec: RunSpec, policy: Policy) -> list[str]:
    """The environments a run goes through, in order (the spec's list, else all of gitops.yaml's); none: one workspace."""
    return list(spec.environments) if spec.environments else [e.name for e in policy.environments]


@dataclass(frozen=True)
class ServingIn:
    """What a run serves in one environment: the spec's deploy settings with that environment's override applied."""

    environment: str
    instance_type: str | None
    instance_count: int
    rollout: RolloutSpec | None


def serving_in(spec: RunSpec, environment: str) -> ServingIn:
    own = spec.deploy.environments.get(environment)
    d = spec.deploy
    if own is None:
        return ServingIn(environment, d.instance_type, d.instance_count, d.rollout)
    return ServingIn(
        environment,
        own.instance_type or d.instance_type,
        own.instance_count or d.instance_count,
        own.rollout if own.rollout is not None else d.rollout,
    )


def spec_in(spec: RunSpec, environment: str) -> RunSpec:
    """The spec as a later environment serves it: its deploy settings with the environment's override applied
    (``serving_in``); what is trained is the same everywhere."""
    serving = serving_in(spec, environment)
    deploy = spec.deploy.model_copy(
        update={"instance_type": serving.instance_type, "instance_count": serving.instance_count, "rollout": serving.rollout}
    )
    return spec.model_copy(update={"deploy": deploy})


def environment_findings(spec: RunSpec, policy: Policy) -> list[Finding]:  # noqa: C901  (one branch per rule, read flat)
    """The run's environments against gitops.yaml's: known names, in its order, starting where a run trains; each
    environment's serving settings within that environment's rules; workspaces and registry of the run's backend."""
    out: list[Finding] = []

    def err(path: str, message: str, hint: str) -> None:
        out.append(error(path, message, hint, source="policy", code=Code.POLICY))

    declared = [e.name for e in policy.environments]
    if not declared:
        if spec.environments:
            err(
                "environments", f"{POLICY_FILE} declares no environments", "declare them under environments: in gitops.yaml, or remove this"
            )
        if spec.deploy.environments:
            err("deploy.environments", f"{POLICY_FILE} declares no environments", "declare them in gitops.yaml, or remove this")
        return out
    listed = spec.environments or declared
    for i, name in enumerate(spec.environments or []):
        if name not in declared:
            err(f"environments[{i}]", f"environment '{name}' is not declared in {POLICY_FILE}", f"use some of: {', '.join(declared)}")
    known = [n for n in listed if n in declared]
    if spec.environments and known:
        if known[0] != declared[0]:
            err(
                "environments[0]",
                f"a run trains and is proven in the first environment, {declared[0]}; '{known[0]}' is not it",
                f"list {declared[0]} first: environments: [{', '.join([declared[0], *[n for n in known if n != declared[0]]])}]",
            )
        elif known != sorted(known, key=declared.index):
            err("environments", f"environments go in the order of {POLICY_FILE}: {', '.join(declared)}", "list them in that order")
    for name in spec.deploy.environments:
        if name == declared[0]:  # the rollout, the plan and the cost there read deploy: itself
            err(
                f"deploy.environments.{name}",
                f"{name} is the first environment: it serves the spec's own deploy settings",
                f"set them under deploy: itself, and remove deploy.environments.{name}",
            )
        elif name not in listed:
            err(
                f"deploy.environments.{name}",
                f"the run does not go to environment '{name}'"
                if name in declared
                else f"environment '{name}' is not declared in {POLICY_FILE}",
                f"use some of: {', '.join(listed)}",
            )
    for name in known:
        env = policy.environment(name)
        if (spec.backend == "local") != (env.workspace.directory is not None):
            kind = "a local directory" if env.workspace.directory is not None else "an Azure ML workspace"
            err("backend", f"environment {name} is {kind}: it cannot run the {spec.backend} backend", "run it where its workspace is")
        if name == declared[0]:
            continue  # the spec's own deploy settings: checked with the first environment's rules above
        rules = policy.in_environment(name)
        serving = serving_in(spec, name)
        where = f"deploy.environments.{name}" if name in spec.deploy.environments else "deploy"
        allowed = rules.compute.allowed_deploy_instance_types
        if allowed is not None and serving.instance_type is not None and not _ci_in(serving.instance_type, allowed):
            err(
                f"{where}.instance_type",
                f"SKU '{serving.instance_type}' is not allowed for serving in {name}",
                f"use one of: {', '.join(allowed)}",
            )
        if serving.instance_count > rules.caps.max_instance_count:
            err(
                f"{where}.instance_count",
                f"{serving.instance_count} instances exceeds the cap of {rules.caps.max_instance_count} in {name}",
                f"lower it, or raise the cap of environment {name} in {POLICY_FILE}",
            )
    unbuilt = kind_of(spec.backend).unsupported.get(Feature.PROMOTION) if len(known) > 1 else None
    if unbuilt:  # said on the plan, so nobody merges expecting prod
        out.append(warning("environments", f"the {spec.backend} backend: {unbuilt}", None, source="policy", code=Code.CAPABILITY))
    registry = policy.registry
    if registry is not None and len(known) > 1 and (spec.backend == "local") != (registry.directory is not None):
        kind = "a local directory" if registry.directory is not None else "an Azure ML registry"
        err("backend", f"the registry of {POLICY_FILE} is {kind}: it cannot carry the {spec.backend} backend's models", "match them")
    return out


def parse_policy(text: str, file: str = POLICY_FILE) -> tuple[Policy | None, list[Finding]]:
    """The one parser of the repo policy: a complete ``Policy``, or None and the findings that say why. A broken
    policy is never replaced by the defaults: every caller refuses to go on with it."""

    policy, findings = model_from_yaml(Policy, text, file)
    if policy is None and not any(f.is_error for f in findings):
        findings = [*findings, error("", f"{file} could not be read as a policy", "see docs/spec.md", code=Code.POLICY_FILE)]
    return policy, findings


def load_policy(repo_root: str | Path) -> tuple[Policy | None, list[Finding]]:
    """The repo's policy file; the default policy when the repo has none (documented). None when it is broken."""
    from gitops.spec.yamlsource import read_text_bounded, unreadable_reason

    path = Path(repo_root) / POLICY_FILE
    if not path.exists() and not path.is_symlink():
        return Policy(), []
    try:
        text = read_text_bounded(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = unreadable_reason(exc)
        return None, [
            error("", f"cannot read {POLICY_FILE}: {reason}", "it is a small UTF-8 YAML file", code=Code.POLICY_FILE).located(str(path), 1)
        ]
    return parse_policy(text, str(path))


def require_policy(repo_root: str | Path) -> Policy:
    """The repo's policy, or ``SpecError`` naming what is wrong with it (never the defaults instead)."""
    from gitops.errors import SpecError

    policy, findings = load_policy(repo_root)
    if policy is None:
        first = next((f for f in findings if f.is_error), None)
        raise SpecError(
            f"{POLICY_FILE} is invalid: {first.format() if first else 'unreadable'}",
            findings,
            hint=f"fix {POLICY_FILE}; nothing is judged by the default policy instead",
        )
    return policy
