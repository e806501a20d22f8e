"""Validation with the online checks, and submission from a request: what the ``validate`` and ``submit``
Functions do, with no HTTP in sight.

Offline passes first (schema, then policy); only a spec that passes them is checked against its backend
(model metadata, retirement, compute, SKU allow lists, GPUs). A backend that cannot be reached turns into
one finding, not a failed request, so the plan comment still shows everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gitops.backends.base import Backend
from gitops.cost.estimate import CostEstimate, assess
from gitops.cost.prices import PriceBook, PriceSource
from gitops.errors import GitopsError, RequestError, SpecError
from gitops.ledger.model import RunRecord, endpoint_move
from gitops.markdown import code, text
from gitops.review.derive import EFFECT_OF_CHANGE, Derived, derive
from gitops.spec import naming
from gitops.spec.capabilities import ONLINE_CHECKED, not_hosted
from gitops.spec.findings import Code, Finding, error, has_errors, note
from gitops.spec.policy import POLICY_FILE, Policy, parse_policy
from gitops.spec.validate import SpecValidation, ValidSpec, validate_text


@dataclass(frozen=True)
class SpecText:
    path: str
    text: str


@dataclass(frozen=True)
class CheckedSpec:
    """A spec that passed the one check (``check_specs``): valid offline, and its backend's online checks, the budget
    and the endpoint rule passed too where they apply. What ``submit`` takes, and does not check again."""

    valid: ValidSpec
    policy: Policy  # the rules it was checked against: the run keeps their deadlines and gate
    findings: tuple[Finding, ...]  # its warnings and notes, for the caller to show


@dataclass
class SpecCheck:
    path: str
    validated: SpecValidation
    policy: Policy = field(default_factory=Policy)  # the rules it was checked against
    online: list[Finding] = field(default_factory=list)
    online_checked: bool = False  # False for a backend without online checks, or a spec that failed offline
    derived: Derived | None = None  # model, data, compute, GPUs, effective batch size, endpoint, TTL
    cost: CostEstimate | None = None  # with the prices and the previous duration this side knows
    effect: str | None = None  # what submitting it does to the run the ledger holds: train | retrain | redeploy | settings | none

    @property
    def findings(self) -> list[Finding]:
        return [*self.validated.findings, *self.online]

    @property
    def ok(self) -> bool:
        return self.validated.ok and not has_errors(self.online)

    def passed(self) -> CheckedSpec:
        """The spec, checked, or ``SpecError`` whose headline is its first error's ``FILE:LINE: field: message``."""
        if not self.ok:
            errors = [f for f in self.findings if f.is_error]
            first = errors[0].located(errors[0].file or self.path) if errors else None
            raise SpecError(first.headline() if first else f"{self.path}: invalid", errors, hint=first.hint if first else None)
        return CheckedSpec(self.validated.valid(), self.policy, tuple(self.findings))

    def to_dict(self) -> dict[str, Any]:
        spec = self.validated.spec
        return {
            "path": self.path,
            "ok": self.ok,
            "run": spec.name if spec else None,
            "backend": spec.backend if spec else None,
            "digest": self.validated.digest,
            "plan": asdict(self.derived) if self.derived else None,
            "cost": self.cost.to_dict() if self.cost else None,
            "effect": self.effect,
            "findings": [f.to_dict() for f in self.findings],
            "messages": [f.format() for f in self.findings],
        }


def policy_from_text(text: Any, required: bool = False) -> Policy:
    """The repo policy sent with a request (the workflow reads it from the default branch with ``git show``).
    Broken: an error, never the defaults. Absent: the defaults, unless ``required`` (submit), then an error."""
    if text is None or text == "":
        if required:
            raise RequestError(
                f"the request carries no policy ({POLICY_FILE})",
                hint=f"send the default branch's {POLICY_FILE} as 'policy' (the workflows do)",
            )
        return Policy()
    if not isinstance(text, str):
        raise RequestError(f"'policy' must be the text of {POLICY_FILE}, not {type(text).__name__}")
    policy, findings = parse_policy(text, POLICY_FILE)
    if policy is None:
        first = next((f for f in findings if f.is_error), None)
        raise SpecError(
            f"{POLICY_FILE} is invalid: {first.message if first else 'unreadable'}", findings, hint="fix gitops.yaml on the default branch"
        )
    return policy


def online_findings(valid: ValidSpec, backend: Backend) -> list[Finding]:
    """The backend's verdict on a spec (model, retirement, compute, SKUs), placed on the spec's lines as the offline
    findings are."""
    spec = valid.spec
    try:  # which call failed says which field the finding is on: never the message's words
        model = backend.resolve_model(spec)
    except GitopsError as exc:
        return valid.locate([error("model", exc.headline, exc.hint, source="online", code=Code.MODEL)])
    try:
        found = [*model.findings, *backend.check_compute(spec, model)]
    except GitopsError as exc:
        found = [*model.findings, error("compute", exc.headline, exc.hint, code=Code.COMPUTE)]
    return valid.locate([replace(f, source="online") for f in found])


def check_specs(
    specs: Sequence[SpecText | SpecValidation | ValidSpec],
    policy: Policy,
    backend_for: Callable[[str], Backend] | None = None,
    online_backends: frozenset[str] = ONLINE_CHECKED,
    salt: str = "",
    prices: PriceSource | None = None,
    previous: Callable[[str], RunRecord | None] | None = None,
    hosted: bool = False,
) -> list[SpecCheck]:
    """The one spec check, for the CLI's ``validate`` and ``plan`` and the Functions' ``validate`` and ``submit``: the
    offline passes' findings, the backend's online checks (only for ``online_backends``), the cost (budget caps
    applied) and the conflicts between the specs checked together. A spec comes as its text (a request; validated
    here) or already validated (a file the CLI read, a blob the plan read from git). ``prices``: the
    live API where this side reaches it, else the snapshot; ``previous``: the ledger's record of a run, whose last
    training time the estimate scales and whose endpoint a new version may not move; ``hosted``: checked by the
    Function, which never runs a backend that acts on its own host (such a spec gets a note: merging it submits
    nothing). ``SpecCheck.passed()`` is what ``submit`` takes."""
    validations = [
        validate_text(item.text, item.path, policy)
        if isinstance(item, SpecText)
        else item.validation()
        if isinstance(item, ValidSpec)
        else item
        for item in specs
    ]
    book = prices or PriceBook()
    checks = []
    for validated in validations:
        check = SpecCheck(validated.file, validated, policy)
        if validated.spec is not None and validated.digest is not None:
            check.derived = derive(validated.spec, validated.params, validated.training_digest, policy, salt)
        if validated.ok and validated.spec is not None:
            before = previous(validated.spec.name) if previous is not None else None
            check.cost, over_budget = assess(validated.valid(), policy, book, before)
            if before is not None:
                moved = endpoint_move(before, naming.endpoint_name(validated.spec, salt))
                if moved is not None:
                    check.online = [
                        *check.online,
                        *validated.locate([error("deploy.endpoint", moved[0], moved[1], code=Code.ENDPOINT_MOVED)]),
                    ]
            if previous is not None and validated.digests is not None:
                check.effect = "train" if before is None else EFFECT_OF_CHANGE[before.digests().change_to(validated.digests)]
            check.online = [*check.online, *over_budget]
        if hosted and validated.spec is not None and (why := not_hosted(validated.spec.backend)) is not None:
            check.online = [
                *check.online,
                *validated.locate(
                    [
                        note(
                            "backend",
                            f"merging this spec submits nothing: {why}",
                            "it stays in runs/ as an example to run locally",
                            code=Code.NOT_SUBMITTED,
                        )
                    ]
                ),
            ]
        if backend_for is not None and validated.ok and validated.spec is not None and validated.spec.backend in online_backends:
            check.online = [*online_findings(validated.valid(), backend_for(validated.spec.backend)), *check.online]
            check.online_checked = True
        checks.append(check)
    from gitops.spec.conflicts import conflict_findings

    shared = conflict_findings(validations, salt)
    for check in checks:  # two specs of the same request on one endpoint or model name
        check.online = [*check.online, *shared.get(check.path, [])]
    return checks


_EFFECT_WORDS = {
    "train": "a new run: train, then deploy",
    "retrain": "retrain, then deploy",
    "redeploy": "redeploy only, no training",
    "settings": "settings only",
    "none": "no change",
}


def render_checks(checks: list[SpecCheck]) -> str:
    """The online half of the PR comment: one line per spec, then its findings as the CLI prints them."""
    lines = ["### Online checks (workspace, model, compute)", ""]
    for check in checks:
        skipped = " (no online checks for this backend)" if check.validated.ok and not check.online_checked else ""
        lines.append(f"- {'✅' if check.ok else '❌'} {code(check.path)}{skipped}")
        if not check.validated.ok:  # its own lines are in the plan above; here, why nothing was asked online
            errors = sum(1 for f in check.validated.findings if f.is_error)
            lines.append(f"  - fails the offline checks ({errors} error(s), listed in the plan): the online checks did not run")
        if check.effect is not None:
            lines.append(f"  - against the run as it stands: **{_EFFECT_WORDS[check.effect]}**")
        if check.cost is not None and check.cost.billed:
            cost = f"training {check.cost.training_line()}; serving {check.cost.serving_line()} ({check.cost.prices_from})"
            lines.append(f"  - cost: {text(cost)}")
        lines += [
            f"  - {'**error**' if f.is_error else f.severity.value}: {code(f.path)}: {text(f.message)}"
            + (f" ({text(f.hint)})" if f.hint else "")
            for f in check.online
        ]
    return "\n".join(lines) + "\n"
