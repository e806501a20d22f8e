"""Two-pass validation of run specs: strict schema (with component params), then repo policy.

``validate_text`` never raises on bad input: it returns a ``SpecValidation`` whose findings say what is
wrong, each with file, line and field path. ``load_spec`` is the raising variant for code that needs a
valid spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gitops.errors import SpecError
from gitops.spec import naming
from gitops.spec.capabilities import capability_findings
from gitops.spec.component import check_params
from gitops.spec.evidence import evidence_findings
from gitops.spec.findings import Code, Finding, error, has_errors
from gitops.spec.finetuning_job import HYPERPARAMETERS, check_hyperparameters
from gitops.spec.kinds import kind_findings
from gitops.spec.model import FinetuneSpec, RunSpec
from gitops.spec.parse import findings_from
from gitops.spec.policy import Policy, check_policy
from gitops.spec.yamlsource import YamlDocument, dotted, parse_yaml, read_text_bounded, undotted, unreadable_reason


@lru_cache(maxsize=64)
def _document(source: str, file: str) -> YamlDocument:
    """A spec's text parsed once for placing findings on its lines (a spec is checked, then submitted, then located
    again: the same text is not parsed each time)."""
    return parse_yaml(source, file)


def _placed(findings: list[Finding], file: str, source: str | None) -> list[Finding]:
    """Findings made after validation placed on the spec's file and lines (line 1 when its text is not kept)."""
    doc = _document(source, file) if source is not None else None
    return [f if f.file else doc.locate([f])[0] if doc is not None else f.located(file, f.line or 1) for f in findings]


@dataclass(frozen=True)
class ValidSpec:
    """A spec that passed both passes, complete (Atlantis' raw -> valid): the model, its component parameters, its
    digests, the warnings it still carries, and its text. Never partial: nothing here is None or needs a check."""

    file: str
    spec: RunSpec
    params: dict[str, Any]
    digests: naming.Digests
    warnings: tuple[Finding, ...] = ()
    source: str | None = field(default=None, repr=False)

    @property
    def digest(self) -> str:
        return self.digests.spec

    @property
    def training_digest(self) -> str:
        return self.digests.training

    def locate(self, findings: list[Finding]) -> list[Finding]:
        """Findings made later (online, at submit) placed on this spec's file and lines."""
        return _placed(findings, self.file, self.source)

    def validation(self) -> SpecValidation:
        """The validation this spec passed (its warnings as its findings)."""
        return SpecValidation(self.file, self.spec, dict(self.params), list(self.warnings), self.digest, self.digests, self.source)


@dataclass
class SpecValidation:
    """What validating a spec found: every finding, the parsed spec when the schema pass succeeded, and ``valid()``,
    the complete ``ValidSpec``, when there is no error. A ``SpecValidation`` may be invalid; a ``ValidSpec`` never is."""

    file: str
    spec: RunSpec | None
    params: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    digest: str | None = None  # the whole spec's: this version of the run
    digests: naming.Digests | None = None  # with the training and deployment digests: what a change takes
    source: str | None = field(default=None, repr=False)  # the text, to place later findings on their lines

    @property
    def training_digest(self) -> str:
        """What names the job; the whole digest for a spec built without its digests."""
        return self.digests.training if self.digests else (self.digest or "")

    def locate(self, findings: list[Finding]) -> list[Finding]:
        """Findings made later (online, at submit) placed on this spec's file and lines."""
        return _placed(findings, self.file, self.source)

    def line_of(self, field: str) -> int:
        """The line of the spec's text that sets ``field`` (a dotted path); 1 when the text is not kept."""
        return _document(self.source, self.file).line_of(undotted(field)) if self.source is not None else 1

    @property
    def ok(self) -> bool:
        return self.spec is not None and not has_errors(self.findings)

    def require(self) -> RunSpec:
        return self.valid().spec

    def valid(self) -> ValidSpec:
        """The complete spec, or ``SpecError`` naming its first problem."""
        if not self.ok or self.spec is None or self.digests is None:
            errors = [f for f in self.findings if f.is_error]
            raise SpecError(
                f"{self.file}: {len(errors)} problem(s); first: {errors[0].format() if errors else '?'}", findings=self.findings
            )
        return ValidSpec(self.file, self.spec, dict(self.params), self.digests, tuple(self.findings), self.source)


def validate_text(text: str, file: str, policy: Policy | None = None) -> SpecValidation:
    """Both passes over one spec's text; every problem in the file is reported at once."""
    doc = parse_yaml(text, file)
    if doc.data is None:
        return SpecValidation(file, None, findings=doc.findings)
    findings = list(doc.findings)
    spec: RunSpec | None = None
    try:
        spec = RunSpec.model_validate(doc.data)
    except ValidationError as exc:
        findings += findings_from(exc, RunSpec, doc)
    # Component params are checked even when another section failed, so that all problems show at once.
    raw_finetune: dict[str, Any] = doc.data["finetune"] if isinstance(doc.data.get("finetune"), dict) else {}
    raw_params: dict[str, Any] = raw_finetune["params"] if isinstance(raw_finetune.get("params"), dict) else {}
    version = str(raw_finetune.get("component_version", FinetuneSpec.model_fields["component_version"].default))
    training_kind = raw_finetune.get("kind")
    if training_kind in HYPERPARAMETERS:  # a fine-tuning job's hyperparameters, not the component's inputs
        params, param_findings = check_hyperparameters(raw_params, str(training_kind))
    else:
        params, param_findings = check_params(raw_params, version)
    findings += doc.locate(param_findings)
    if spec is None:
        # The policy pass too, over what of the spec is valid, so a cap violation shows with the typos, not after.
        findings += _policy_of_the_rest(doc, policy, params)
        findings.sort(key=lambda f: f.line or 0)
        return SpecValidation(file, None, params, findings)
    findings.sort(key=lambda f: f.line or 0)
    stem = Path(file).stem
    if Path(file).parent.name == "runs" and stem != spec.name:
        findings.append(
            error(
                "name",
                f"'{spec.name}' differs from the file name '{stem}.yaml'",
                f"rename the file to {spec.name}.yaml or set name: {stem}",
                code=Code.NAME,
            ).located(file, doc.line_of(("name",)), column=doc.column_of(("name",)))
        )
    findings += doc.locate(capability_findings(spec, params))  # what the chosen backend cannot do
    findings += doc.locate(kind_findings(spec, policy))  # what the training and serving kinds ask of the rest
    if policy is not None:
        findings += doc.locate(check_policy(spec, params, policy))
    # What the gate will decide on: the repo's gate defaults apply whether or not a policy file was read.
    findings += doc.locate(evidence_findings(spec, params, (policy or Policy()).first_environment().gate.resolve(spec)))
    both = naming.digests(spec, params)
    return SpecValidation(file, spec, params, findings, both.spec, both, text)


def _without(data: Any, loc: tuple[Any, ...]) -> bool:
    """Remove the value at ``loc`` from nested dicts and lists; False when there is none."""
    *parents, last = loc
    for part in parents:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        del data[last]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _policy_of_the_rest(doc: YamlDocument, policy: Policy | None, params: dict[str, Any]) -> list[Finding]:
    """The policy's findings on a spec that failed the schema: its invalid fields are left out (up to a few rounds,
    as leaving one out may uncover another) and the rules run over what remains, when that is still a spec. A rule
    about a field that was left out says nothing: the schema error on it stands for it."""
    import copy

    if policy is None or not isinstance(doc.data, dict):
        return []
    data, dropped = copy.deepcopy(doc.data), []
    for _ in range(4):
        try:
            rest = RunSpec.model_validate(data)
        except ValidationError as exc:
            locs = [
                tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
                for e in exc.errors(include_url=False)
                if e["type"] != "missing"
            ]
            removed = [loc for loc in sorted(locs, key=len, reverse=True) if loc and _without(data, loc)]
            if not removed:
                return []  # what is left is not a spec (a required field is missing): the typos first
            dropped += [dotted(loc) for loc in removed]
            continue
        found = check_policy(rest, params, policy)
        kept = [f for f in found if not any(f.path == d or f.path.startswith(d + ".") or d.startswith(f.path + ".") for d in dropped)]
        return doc.locate(kept)
    return []


def validate_file(path: str | Path, policy: Policy | None = None) -> SpecValidation:
    path = Path(path)
    try:
        text = read_text_bounded(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = unreadable_reason(exc)
        problem = error("", f"cannot read the file: {reason}", "a run spec is a UTF-8 YAML file of a few KiB", code=Code.UNREADABLE)
        return SpecValidation(str(path), None, findings=[problem.located(str(path), 1)])
    return validate_text(text, str(path), policy)


def load_spec(path: str | Path, policy: Policy | None = None) -> SpecValidation:
    """Validate and raise ``SpecError`` on any error; warnings stay in ``findings``."""
    result = validate_file(path, policy)
    result.require()
    return result
