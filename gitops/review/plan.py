"""The plan a pull request shows: which specs changed between two revisions, and what each would do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops.cost.estimate import CostEstimate
from gitops.cost.prices import PriceBook, PriceSource
from gitops.ledger.model import RunRecord
from gitops.review import gitrepo
from gitops.review.check import SpecText, check_specs
from gitops.review.derive import EFFECT_OF_CHANGE, Derived
from gitops.spec.diff import FieldChange, field_changes
from gitops.spec.findings import Code, Finding, error
from gitops.spec.model import parse_duration
from gitops.spec.policy import POLICY_FILE, Policy, parse_policy
from gitops.spec.validate import SpecValidation, validate_text
from gitops.spec.yamlsource import parse_yaml


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

    def findings(self) -> list[Finding]:
        """Every finding of the plan: gitops.yaml's, then each spec's, in the order shown."""
        return [*self.policy_findings, *(f for s in self.specs for f in s.findings)]

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


def _comparable(result: SpecValidation | None, text: str | None) -> dict[str, Any] | None:
    """The normalised spec when valid (so ``true`` vs ``"true"`` is no change, and a default written out or left out is
    the same value: ``instance_count: 1 -> 2``, never ``null -> 2``), else the raw YAML."""
    if result is not None and result.spec is not None:
        body = result.spec.model_dump(mode="json")
        body.setdefault("finetune", {})["params"] = result.params
        return body
    return parse_yaml(text).data if text else None


def effect_of(old: SpecValidation | None, new: SpecValidation) -> str:
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
        broken = error("", f"not checked: {POLICY_FILE} is invalid (see above)", f"fix {POLICY_FILE}", code=Code.POLICY_FILE)
        unjudged = [
            SpecPlan(changes[p].status if p in changes else "unchanged", p, valid=False, findings=[broken.located(p, 1)]) for p in at_head
        ]
        return Plan(base_sha, head_sha, unjudged, policy_findings)

    book = prices if prices is not None else PriceBook()
    texts = {path: blobs[(head_sha, path)] or "" for path in at_head}
    # the spec check of the CLI's validate and the Functions (no online checks here: a plan reads git, not Azure)
    checks = check_specs(
        [SpecText(path, texts[path]) for path in at_head],
        policy,
        online_backends=frozenset(),
        salt=salt,
        prices=book,
        previous=previous,
    )
    plans: list[SpecPlan] = []
    for path, check in zip(at_head, checks, strict=True):
        change = changes.get(path)
        status = change.status if change else "unchanged"
        result = check.validated
        plan = SpecPlan(status, path, valid=check.ok, findings=check.findings, digest=result.digest)
        if result.ok and check.derived is not None:
            plan.derived, plan.cost = check.derived, check.cost
            plan.effect = "train" if status == "added" else None
        if change is not None and change.status in ("changed", "renamed"):
            plan.old_path = change.old_path
            old_text = blobs.get((base_sha, change.old_path or path))
            old_result = validate_text(old_text, change.old_path or path, policy) if old_text else None
            plan.changes = field_changes(_comparable(old_result, old_text), _comparable(result, texts[path]))
            if plan.derived is not None:
                plan.effect = effect_of(old_result if old_result is not None and old_result.ok else None, result)
        elif plan.derived is not None and status == "unchanged":
            plan.effect = "none"
        plans.append(plan)
    plans += [SpecPlan("removed", c.path, effect="remove") for c in changes.values() if c.status == "removed"]
    order = {"added": 0, "changed": 1, "renamed": 2, "removed": 3, "unchanged": 4}
    plans.sort(key=lambda p: (order[p.status], p.path))
    return Plan(base_sha, head_sha, plans, policy_findings, price_notes=list(getattr(book, "notes", [])))


def ttl_summary(derived: Derived) -> str:
    if derived.keep:
        return "kept (never torn down automatically)"
    idle, expire = parse_duration(derived.idle_after), parse_duration(derived.expire_after)
    return f"idle {derived.idle_after} / expires {derived.expire_after}" + (" (idle first)" if idle < expire else "")
