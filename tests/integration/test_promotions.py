"""#27: a run live in the first environment whose next environment's conditions hold has its model shared into
the registry once, and its promotion becomes due; it waits while the soak, the gate's evidence or the model's
content digest is missing, and a newer version going live supersedes a promotion still due. The local backend's
workspace and registry directories, the reconcile pass, a virtual clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import HistoryEntry, PromotionState, RunRecord
from gitops.lifecycle.flow import Lifecycle
from gitops.lifecycle.parts import Action
from gitops.lifecycle.promotions import waiting_for
from gitops.spec import naming
from gitops.spec.policy import Policy, parse_policy
from gitops.spec.validate import validate_text
from tests.integration.test_local_registry import _trained

HOUR = 3600.0
T0 = 1_800_000_000.0


class Setup:
    def __init__(self, tmp_path: Path, spec_text: str) -> None:
        text = (
            f"registry: {{directory: {tmp_path / 'registry'}}}\nenvironments:\n"
            f"  - name: dev\n    workspace: {{directory: {tmp_path / 'dev'}}}\n"
            f"  - name: prod\n    workspace: {{directory: {tmp_path / 'prod'}}}\n    promotion: {{soak: 1h}}\n"
        )
        policy, findings = parse_policy(text, "gitops.yaml")
        assert policy is not None, findings
        self.policy: Policy = policy
        self.tmp = tmp_path
        self.now = [T0]
        self.backend = LocalBackend(tmp_path / "dev")
        self.lifecycle = Lifecycle(
            LocalLedger(tmp_path / "dev" / "ledger"), lambda _: self.backend, name_salt="acme/models", clock=lambda: self.now[0]
        )
        validated = validate_text(spec_text, "runs/tiny.yaml", policy)
        assert validated.ok, [f.format() for f in validated.findings]
        self.spec = validated.require()

    def live(self, job: str, *, on_evidence: bool = True, digest: bool = True, at: float = T0) -> RunRecord:
        """The run live in dev with the model ``job`` trained, as a rollout leaves it."""
        model = _trained(self.backend, self.tmp, job)
        got = self.lifecycle.ledger.get("tiny")
        before = got[0] if got else None
        record = RunRecord(
            run="tiny",
            backend="local",
            digest="d" * 64,
            job_name=job,
            status="live",
            spec=self.spec.model_dump(mode="json"),
            policy=self.policy.model_dump(mode="json"),
            model_name=model.name,
            model_version=model.version,
            model_digest=model.tags[naming.TAG_CONTENT] if digest else None,
            gate={"ok": True, "reasons": [], "notes": [], "on_evidence": on_evidence},
            history=[*(before.history if before else []), HistoryEntry(at=at, status="live", note="")],
            promotions=before.promotions if before else [],
        )
        self.lifecycle.ledger.put(record, got[1] if got else None)
        return record

    def record(self) -> RunRecord:
        got = self.lifecycle.ledger.get("tiny")
        assert got is not None
        return got[0]


@pytest.fixture
def setup(tmp_path: Path, local_spec_text: Any) -> Setup:
    return Setup(tmp_path, local_spec_text("tiny"))


def test_after_its_soak_a_live_model_is_shared_once_and_its_promotion_is_due(setup: Setup) -> None:
    record = setup.live("gitops-tiny-000000000001")
    setup.now[0] = T0 + 0.5 * HOUR
    assert waiting_for(record, setup.policy, "prod", setup.now[0]) == ["1h live in dev (0.5 h so far)"]
    assert [d for d in setup.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE] == []
    assert setup.record().promotions == [] and not (setup.tmp / "registry" / "mlflow.db").exists()
    setup.now[0] = T0 + 2 * HOUR
    (due,) = [d for d in setup.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE]
    (promotion,) = setup.record().promotions
    assert promotion.to == "prod" and promotion.state is PromotionState.DUE and promotion.job_name == "gitops-tiny-000000000001"
    assert promotion.model == naming.registry_model_name(setup.spec, "acme/models") and promotion.version == "1"
    assert promotion.digest == record.model_digest and promotion.due_at == T0 + 2 * HOUR
    assert f"promotion to prod due: {promotion.model} v1" in due.reason
    shared = setup.backend.registry_model(setup.policy.registry, promotion.model, "1")  # type: ignore[arg-type]
    assert shared.tags[naming.TAG_CONTENT] == record.model_digest and shared.tags[naming.TAG_JOB] == record.job_name
    from gitops.cli.describe_cmds import describe

    shown = describe(setup.lifecycle, setup.record(), now=T0 + 3 * HOUR)  # gitops status tiny
    assert f"promotion  to prod: due for 1h ({promotion.model} v1, {promotion.digest[:19]}…)" in shown, shown
    # Asked again: the same promotion, nothing shared twice.
    assert [d for d in setup.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE] == []
    assert len(setup.record().promotions) == 1
    with pytest.raises(Exception, match="no model"):
        setup.backend.registry_model(setup.policy.registry, promotion.model, "2")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("evidence", "digest", "waits_for"),
    [
        (False, True, "the gate passed in dev on its evidence"),
        (True, False, "a content digest of the model"),
    ],
)
def test_without_positive_evidence_the_promotion_waits(setup: Setup, evidence: bool, digest: bool, waits_for: str) -> None:
    record = setup.live("gitops-tiny-000000000001", on_evidence=evidence, digest=digest)
    setup.now[0] = T0 + 5 * HOUR
    assert any(waits_for in w for w in waiting_for(record, setup.policy, "prod", setup.now[0]))
    assert [d for d in setup.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE] == []
    assert setup.record().promotions == []


def test_a_newer_version_live_supersedes_the_promotion_still_due(setup: Setup) -> None:
    setup.live("gitops-tiny-000000000001")
    setup.now[0] = T0 + 2 * HOUR
    setup.lifecycle.reconcile()
    setup.live("gitops-tiny-000000000002", at=T0 + 3 * HOUR)
    setup.now[0] = T0 + 3.5 * HOUR
    setup.lifecycle.reconcile()
    assert [(p.job_name, p.state) for p in setup.record().promotions] == [("gitops-tiny-000000000001", PromotionState.DUE)]
    setup.now[0] = T0 + 4.5 * HOUR  # the new version's own soak
    (due,) = [d for d in setup.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE]
    assert [(p.job_name, p.state, p.version) for p in setup.record().promotions] == [
        ("gitops-tiny-000000000001", PromotionState.SUPERSEDED, "1"),
        ("gitops-tiny-000000000002", PromotionState.DUE, "2"),
    ]
