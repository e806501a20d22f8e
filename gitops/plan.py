"""The plan a pull request shows: which specs changed between two revisions, and what each would do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops import gitrepo
from gitops.cost.estimate import CostEstimate, assess
from gitops.cost.prices import PriceBook, PriceSource
from gitops.ledger.model import RunRecord
from gitops.spec import naming
from gitops.spec.capabilities import Feature, kind_of
from gitops.spec.conflicts import conflict_findings
from gitops.spec.diff import FieldChange, field_changes
from gitops.spec.findings import Finding, error, has_errors
from gitops.spec.model import RunSpec, parse_duration
from gitops.spec.policy import POLICY_FILE, Policy, parse_policy
from gitops.spec.validate import ValidatedSpec, validate_text
from gitops.spec.yamlsource import parse_yaml


@dataclass(frozen=True)
class Derived:
    """What a valid spec resolves to, as the plan shows it."""

    backend: str
    model: str
    data: str
    compute: str
    instance_type: str | None
    nodes: int
    gpus_per_node: int | None
    effective_batch_size: int
    job_name: str
    display_name: str
    model_name: str
    endpoint: str
    deploy_instance_type: str | None
    traffic: str  # how the candidate takes the traffic (at once, or gradually with its bounds)
    gate: str  # what the gate decides on, and what it waives
    idle_after: str
    expire_after: str
    keep: bool


@dataclass
class SpecPlan:
    status: str  # added | changed | renamed | removed | unchanged
    path: str
    old_path: str | None = None
    valid: bool = True
    findings: list[Finding] = field(default_factory=list)
    derived: Derived | None = None
    changes: list[FieldChange] = field(default_factory=list)
    digest: str | None = None
    effect: str | None = None  # what merging it does: train | retrain | redeploy | settings | none | remove
    cost: CostEstimate | None = None

    @property
    def name(self) -> str:
        return Path(self.path).stem


@dataclass
class Plan:
    base: str
    head: str
    specs: list[SpecPlan]
    policy_findings: list[Finding] = field(default_factory=list)
    salt_source: str = ""  # where the repository in derived endpoint names came from
    price_notes: list[str] = field(default_factory=list)  # e.g. the live price API unreachable, the snapshot used

    @property
    def ok(self) -> bool:
        return all(s.valid for s in self.specs) and not any(f.is_error for f in self.policy_findings)

    def by_status(self, status: str) -> list[SpecPlan]:
        return [s for s in self.specs if s.status == status]

    def to_dict(self) -> dict[str, Any]:
        def spec(s: SpecPlan) -> dict[str, Any]:
            return {
                "status": s.status,
                "path": s.path,
                "old_path": s.old_path,
                "valid": s.valid,
                "digest": s.digest,
                "effect": s.effect,
                "cost": s.cost.to_dict() if s.cost else None,
                "findings": [f.to_dict() for f in s.findings],
                "derived": asdict(s.derived) if s.derived else None,
                "changes": [asdict(c) for c in s.changes],
            }

        return {
            "base": self.base,
            "head": self.head,
            "ok": self.ok,
            "endpoint_names_from": self.salt_source,
            "price_notes": self.price_notes,
            "policy_findings": [f.to_dict() for f in self.policy_findings],
            "specs": [spec(s) for s in self.specs],
        }


def derive(spec: RunSpec, params: dict[str, Any], training_digest: str, policy: Policy, salt: str = "") -> Derived:
    from gitops.spec.component import effective_params, model_uri

    kind = kind_of(spec.backend)
    gpus = naming.gpus_per_node(spec.compute.instance_type) if kind.named_compute else None
    merged = effective_params(spec, params)
    if spec.model.path:
        model = spec.model.path
    elif not kind.supports(Feature.REGISTRY_MODELS) or spec.model.registry == "local":
        model = f"{spec.model.registry}/{spec.model.name}:{spec.model.version or spec.model.label or 'latest'}"
    else:
        model = model_uri(spec)
    d = spec.data
    data = d.dataset and f"{d.dataset} [{d.train_split}/{d.test_split}, first {d.sample_percent:g}%]"
    return Derived(
        backend=spec.backend,
        model=model,
        data=data or f"{spec.data.train_path} / {spec.data.test_path or '(split from train)'}",
        compute=spec.compute.cluster or kind.compute_label,
        instance_type=spec.compute.instance_type,
        nodes=spec.compute.nodes,
        gpus_per_node=gpus,
        effective_batch_size=naming.effective_batch_size(merged, gpus, spec.compute.nodes),
        job_name=naming.job_name(spec, training_digest),
        display_name=naming.display_name(spec, merged, gpus),
        model_name=naming.model_name(spec),
        endpoint=naming.endpoint_name(spec, salt),
        deploy_instance_type=spec.deploy.instance_type,
        traffic=traffic_summary(spec),
        gate=gate_summary(policy.gate.resolve(spec)),
        idle_after=spec.lifecycle.idle_after or policy.defaults.idle_after,
        expire_after=spec.lifecycle.expire_after or policy.defaults.expire_after,
        keep=spec.lifecycle.keep,
    )


def gate_summary(rules: dict[str, Any]) -> str:
    """``training metrics and 32 held-out conversations`` or what it waives: ``off (waives all its evidence)``."""
    if not rules.get("enabled", True):
        return "off: waives all its evidence (training metrics, held-out conversations)"
    waived = set(rules.get("waive") or [])
    parts = [] if "training_metrics" in waived else ["training metrics"]
    if "held_out" not in waived:
        parts.append(f"{rules['conversations']} held-out conversations")
    decides = " and ".join(parts) if parts else "nothing"
    gone = [label for e, label in (("training_metrics", "training metrics"), ("held_out", "held-out conversations")) if e in waived]
    return f"decides on {decides}" + (f"; waives {', '.join(gone)}" if gone else "")


def traffic_summary(spec: RunSpec) -> str:
    """``10% → 50% → 100%, each held 10m; rolls back over 5.0% errors or p95 over 90000 ms``."""
    ramp = spec.deploy.rollout
    if ramp is None or not ramp.shares:
        return "100% as soon as the gate passes"
    bound = ramp.max_p95_latency_ms or spec.deploy.request_timeout_ms
    least = f", at least {ramp.min_requests} requests each" if ramp.min_requests else ""
    return (
        f"{' → '.join(f'{s}%' for s in ramp.steps)}, each held {ramp.hold}{least}; "
        f"rolls back over {ramp.max_error_rate:.1%} errors or p95 over {bound} ms"
    )


def _comparable(result: ValidatedSpec | None, text: str | None) -> dict[str, Any] | None:
    """The normalised spec when valid (so ``true`` vs ``"true"`` is no change, and a default written out or left out is
    the same value: ``instance_count: 1 -> 2``, never ``null -> 2``), else the raw YAML."""
    if result is not None and result.spec is not None:
        body = result.spec.model_dump(mode="json")
        body.setdefault("finetune", {})["params"] = result.params
        return body
    return parse_yaml(text).data if text else None


EFFECT_OF_CHANGE = {"retrain": "retrain", "redeploy": "redeploy", "settings": "settings", "unchanged": "none"}


def spec_plan(
    status: str, result: ValidatedSpec, policy: Policy, salt: str = "", prices: PriceSource | None = None, previous: RunRecord | None = None
) -> SpecPlan:
    """One spec's part of the plan: what it resolves to, what it costs (budget caps applied), what merging it does."""
    plan = SpecPlan(status, result.file, valid=result.ok, findings=result.findings, digest=result.digest)
    if result.ok and result.spec is not None and result.digest:
        plan.derived = derive(result.spec, result.params, result.training_digest, policy, salt)
        plan.cost, over = assess(result.valid(), policy, prices or PriceBook(), previous)
        plan.findings = [*plan.findings, *over]
        plan.valid = plan.valid and not has_errors(over)
        plan.effect = "train" if status == "added" else None
    return plan


def effect_of(old: ValidatedSpec | None, new: ValidatedSpec) -> str:
    """What a changed spec takes once merged; a base version that did not validate counts as a new training."""
    if old is None or old.digests is None or new.digests is None:
        return "retrain"
    return EFFECT_OF_CHANGE[old.digests.change_to(new.digests)]


def build_plan(
    repo: str | Path,
    base: str,
    head: str = "HEAD",
    salt: str = "",
    prices: PriceSource | None = None,
    previous: Callable[[str], RunRecord | None] | None = None,
) -> Plan:
    """Classify and validate every spec under ``runs/`` at ``head`` against ``base``. ``prices``: where hourly prices
    come from (the committed snapshot by default); ``previous``: the ledger's record of a run, for durations."""
    root = Path(repo)
    base_sha, head_sha = gitrepo.resolve(root, base), gitrepo.resolve(root, head)
    changes = {c.path: c for c in gitrepo.diff_specs(root, base_sha, head_sha)}
    at_head = gitrepo.list_specs(root, head_sha)
    refs = [(head_sha, p) for p in at_head] + [(head_sha, POLICY_FILE)]
    refs += [(base_sha, c.old_path or c.path) for c in changes.values() if c.status in ("changed", "renamed", "removed")]
    blobs = gitrepo.read_blobs(root, refs)

    policy: Policy | None = Policy()
    policy_findings: list[Finding] = []
    policy_text = blobs.get((head_sha, POLICY_FILE))
    if policy_text is not None:
        policy, policy_findings = parse_policy(policy_text, POLICY_FILE)
    if policy is None:  # a broken policy: no spec is judged by the defaults instead
        broken = error("", f"not checked: {POLICY_FILE} is invalid (see above)", f"fix {POLICY_FILE}")
        unjudged = [
            SpecPlan(changes[p].status if p in changes else "unchanged", p, valid=False, findings=[broken.located(p, 1)]) for p in at_head
        ]
        return Plan(base_sha, head_sha, unjudged, policy_findings)

    book = prices if prices is not None else PriceBook()
    plans: list[SpecPlan] = []
    validated_at_head: dict[str, ValidatedSpec] = {}
    for path in at_head:
        change = changes.get(path)
        status = change.status if change else "unchanged"
        text = blobs[(head_sha, path)] or ""
        result = validate_text(text, path, policy)
        validated_at_head[path] = result
        before = previous(result.spec.name) if previous is not None and result.spec is not None else None
        plan = spec_plan(status, result, policy, salt, book, before)
        if change is not None and change.status in ("changed", "renamed"):
            plan.old_path = change.old_path
            old_text = blobs.get((base_sha, change.old_path or path))
            old_result = validate_text(old_text, change.old_path or path, policy) if old_text else None
            plan.changes = field_changes(_comparable(old_result, old_text), _comparable(result, text))
            if plan.derived is not None:
                plan.effect = effect_of(old_result if old_result is not None and old_result.ok else None, result)
        elif plan.derived is not None and status == "unchanged":
            plan.effect = "none"
        plans.append(plan)
    shared = conflict_findings([(validated_at_head[p], blobs[(head_sha, p)] or "") for p in at_head], salt)
    for plan in plans:
        if plan.path in shared:
            plan.findings = [*plan.findings, *shared[plan.path]]
            plan.valid = False
    plans += [SpecPlan("removed", c.path, effect="remove") for c in changes.values() if c.status == "removed"]
    order = {"added": 0, "changed": 1, "renamed": 2, "removed": 3, "unchanged": 4}
    plans.sort(key=lambda p: (order[p.status], p.path))
    return Plan(base_sha, head_sha, plans, policy_findings, price_notes=list(getattr(book, "notes", [])))


def ttl_summary(derived: Derived) -> str:
    if derived.keep:
        return "kept (never torn down automatically)"
    idle, expire = parse_duration(derived.idle_after), parse_duration(derived.expire_after)
    return f"idle {derived.idle_after} / expires {derived.expire_after}" + (" (idle first)" if idle < expire else "")
