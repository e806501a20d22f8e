"""#27: a run live in the first environment whose next environment's conditions hold has its model shared into
the registry once, and its promotion becomes due; it waits while the soak, the gate's evidence or the model's
content digest is missing, and a newer version going live supersedes a promotion still due. The local backend's
workspace and registry directories, the reconcile pass, a virtual clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.errors import ConflictError
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import HistoryEntry, PromotionState, RunRecord
from gitops.lifecycle.flow import Lifecycle
from gitops.lifecycle.parts import Action
from gitops.lifecycle.promotions import propose, waiting_for
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
    # The superseded version's request (a waiting workflow run approved late) is refused; the newer one is let in.
    with pytest.raises(ConflictError, match="superseded by a newer version: this request is stale"):
        setup.lifecycle.release("tiny", "prod", by="a reviewer", job="gitops-tiny-000000000001")
    assert setup.lifecycle.ledger.get("tiny.prod") is None
    entered = setup.lifecycle.release("tiny", "prod", by="a reviewer", job="gitops-tiny-000000000002")
    assert entered.key == "tiny.prod" and entered.job_name == "gitops-tiny-000000000002" and entered.model_version == "2"


def test_a_release_while_prod_rolls_out_waits_its_turn_and_a_held_candidate_there_is_superseded(setup: Setup) -> None:
    """One rollout per endpoint in prod too: a version released while the one before still rolls out there is queued
    behind it (its rollout starts when that one ends); a candidate held by prod's gate is removed in its favour."""
    setup.live("gitops-tiny-000000000001")
    setup.now[0] = T0 + 2 * HOUR
    setup.lifecycle.reconcile()
    first = setup.lifecycle.release("tiny", "prod", by="a reviewer", job="gitops-tiny-000000000001")
    assert first.cursor is not None and first.cursor.step == "register"  # its rollout begun, not driven here
    setup.live("gitops-tiny-000000000002", at=T0 + 3 * HOUR)
    setup.now[0] = T0 + 5 * HOUR
    assert propose(setup.lifecycle, "tiny") is not None  # (not reconcile: it would take up prod's overdue step too)
    waiting = setup.lifecycle.release("tiny", "prod", by="a reviewer", job="gitops-tiny-000000000002")
    assert waiting.job_name == "gitops-tiny-000000000001" and waiting.cursor is not None and waiting.cursor.plan == "rollout"
    assert waiting.queued is not None and waiting.queued.job_name == "gitops-tiny-000000000002"
    assert (waiting.queued.model_version, waiting.queued.approval and waiting.queued.approval.by) == ("2", "a reviewer")
    assert [p.job_name for p in waiting.received] == ["gitops-tiny-000000000001", "gitops-tiny-000000000002"]
    assert waiting.history[-1].note.endswith("it waits for the rollout in progress")
    # Asked again (the workflow retried), nothing more is queued or received.
    again = setup.lifecycle.release("tiny", "prod", by="a reviewer", job="gitops-tiny-000000000002")
    assert again.queued == waiting.queued and len(again.received) == 2
    # Prod's gate holds the first version; a third one released then is the decision: the held candidate goes.
    from gitops.ledger.model import update
    from gitops.ledger.transitions import Asker, RunStatus

    def held(r: RunRecord) -> RunRecord:
        assert r.cursor is not None
        hold = r.cursor.model_copy(update={"plan": "hold", "step": "hold", "deployment": "v1-aaaa", "reason": "gate failed"})
        now = setup.now[0]
        moved = r.moved(RunStatus.DEPLOYING, "", now, by=Asker.STEP).moved(RunStatus.HELD, "gate failed", now, by=Asker.STEP)
        return moved.model_copy(update={"cursor": hold})

    update(setup.lifecycle.ledger, "tiny.prod", held)
    setup.live("gitops-tiny-000000000003", at=T0 + 5 * HOUR)
    setup.now[0] = T0 + 7 * HOUR
    assert propose(setup.lifecycle, "tiny") is not None
    superseded = setup.lifecycle.release("tiny", "prod", by="a reviewer", job="gitops-tiny-000000000003")
    assert superseded.status == "rolling_back" and superseded.cursor is not None and superseded.cursor.ending == "rejected"
    assert superseded.queued is not None and superseded.queued.job_name == "gitops-tiny-000000000003"
    assert [(p.job_name, p.state) for p in setup.record().promotions][-1] == ("gitops-tiny-000000000003", PromotionState.RELEASED)


def test_a_release_into_prod_holds_it_to_the_digest_proven_in_dev(setup: Setup) -> None:
    """The registry's model must carry the digest dev proved: anything else is refused before prod is touched."""
    record = setup.live("gitops-tiny-000000000001")
    setup.now[0] = T0 + 2 * HOUR
    setup.lifecycle.reconcile()

    def tamper(r: RunRecord) -> RunRecord:
        (p,) = r.promotions
        return r.model_copy(update={"promotions": [p.model_copy(update={"digest": "sha256:" + "0" * 64})]})

    from gitops.ledger.model import update

    update(setup.lifecycle.ledger, "tiny", tamper)
    with pytest.raises(ConflictError, match="refused: registry model .* carries digest sha256:"):
        setup.lifecycle.release("tiny", "prod", by="a reviewer")
    assert setup.lifecycle.ledger.get("tiny.prod") is None and record.model_digest


def test_an_environment_that_asks_no_approval_is_released_by_reconcile_once_due(tmp_path: Path, local_spec_text: Any) -> None:
    """``promotion.approval: false``: once due, the reconcile pass releases it, recorded as the policy's doing."""
    setup = Setup(tmp_path, local_spec_text("tiny"))
    setup.policy = setup.policy.model_copy(
        update={
            "environments": [
                setup.policy.environments[0],
                setup.policy.environments[1].model_copy(
                    update={"promotion": setup.policy.environments[1].promotion.model_copy(update={"approval": False})}
                ),
            ]
        }
    )
    setup.live("gitops-tiny-000000000001")
    setup.now[0] = T0 + 2 * HOUR
    (released,) = [d for d in setup.lifecycle.reconcile("tiny") if d.action == Action.RELEASED]
    assert "released into prod" in released.reason and "no approval asked" in released.reason
    prod = setup.lifecycle.ledger.get("tiny.prod")
    assert prod is not None and prod[0].approval is not None and prod[0].approval.by == "the policy (promotion.approval: false)"
    assert [p.state for p in setup.record().promotions] == [PromotionState.RELEASED]
    assert setup.lifecycle.due() == []  # nothing left for the promote workflow to ask


def test_an_azure_run_is_released_from_a_shell_only_in_admin_mode(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its approval is the GitHub Environment's reviewers' (promote.yml); `gitops release` refuses it unless an
    administrator's shell says so (GITOPS_ADMIN_RELEASE=1), before anything is read of the registry or released."""
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    LocalLedger(tmp_path / "ws" / "ledger").put(
        RunRecord(run="phi4", backend="azureml", digest="d" * 64, job_name="gitops-phi4-000000000001", status="live"), None
    )
    refused = cli("release", "phi4", "--to", "prod", "--reason", "CAB-42")
    assert refused.exit_code != 0 and "its release is approved in GitHub, not from a shell" in refused.err
    assert "GITOPS_ADMIN_RELEASE=1" in refused.err
    monkeypatch.setenv("GITOPS_ADMIN_RELEASE", "1")
    admin = cli("release", "phi4", "--to", "prod", "--reason", "CAB-42")  # past the gate: nothing is due for it
    assert admin.exit_code != 0 and "is not promoted to 'prod'" in admin.err


def test_a_share_that_fails_leaves_no_promotion_behind_and_the_next_pass_tries_again(setup: Setup) -> None:
    """The promotion is recorded as sharing before anything is shared (one pass shares, a second finds it recorded);
    a share that fails takes that record back, says why, and the next pass tries again."""
    setup.live("gitops-tiny-000000000001")
    (weights,) = [p for p in (setup.tmp / "dev" / "mlartifacts").rglob("model.safetensors") if b"000000000001" in p.read_bytes()]
    original = weights.read_bytes()
    weights.write_bytes(b"changed after training")
    setup.now[0] = T0 + 2 * HOUR
    (skipped,) = [d for d in setup.lifecycle.reconcile("tiny") if d.action == Action.SKIPPED]
    assert "is not the model that was trained" in skipped.reason
    assert setup.record().promotions == []
    weights.write_bytes(original)
    assert [d.action for d in setup.lifecycle.reconcile("tiny") if d.run == "tiny"] == [Action.PROMOTION_DUE]
    assert [p.state for p in setup.record().promotions] == [PromotionState.DUE]
