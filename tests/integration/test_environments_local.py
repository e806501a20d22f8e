"""#27 for real on the local backend: a model trained and proven in dev is released into prod through the registry,
never trained again. Two workspace directories (dev, prod) and a registry directory; CPU fine-tunes; loopback
endpoints in each workspace. Tests run in file order, like a team's week: v1 goes live in dev, its promotion
becomes due after the soak, a release lets it into prod where prod's stricter gate holds it (dev untouched) until
a person promotes it; v2 follows the same way; prod rolls back to v1 from the registry; a release of a model whose
registry copy changed is refused.

The soak is crossed on the lifecycle's clock (real time plus an offset moved between rollouts, never during one).
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.errors import ConflictError
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import PromotionState, RunRecord
from gitops.lifecycle.flow import Lifecycle
from gitops.lifecycle.parts import Action
from gitops.report.metrics import MlflowMetricsReader
from gitops.spec.policy import Policy, WorkspaceRef, parse_policy
from gitops.spec.validate import SpecValidation, validate_text
from pipelines.synth import write_dataset

pytestmark = pytest.mark.slow

HOUR = 3600.0

POLICY = """
registry: {{directory: {root}/registry}}
environments:
  - name: dev
    workspace: {{directory: {root}/dev}}
  - name: prod
    workspace: {{directory: {root}/prod}}
    policy:
      gate: {{max_perplexity: 1.01, conversations: 0}}  # stricter than dev: the tiny model never meets it
    promotion: {{soak: 1h}}
"""

SPEC = """
name: envs
backend: local
model: {{registry: local, name: tiny-phi3}}
data: {{train_path: {train}, test_path: {test}}}
finetune:
  params: {{max_steps: 20, per_device_train_batch_size: 8, learning_rate: {lr}, apply_lora: true, lora_alpha: 16,
           max_seq_length: 128, logging_steps: 5, warmup_steps: 2}}
deploy:
  smoke_test:
    messages: [{{role: user, content: Tell me about rain.}}]
    parameters: {{max_new_tokens: 4, do_sample: false}}
    max_latency_ms: 60000
  gate: {{conversations: 0, max_eval_loss_increase: 100}}  # dev's gate judges the training metrics, on evidence
"""


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = write_dataset(root / "data", rows=120, test_rows=8)
        policy, findings = parse_policy(textwrap.dedent(POLICY.format(root=root)), "gitops.yaml")
        assert policy is not None, findings
        self.policy: Policy = policy
        self.offset = 0.0
        self.dev = LocalBackend(root / "dev")
        self.lifecycle = Lifecycle(
            LocalLedger(root / "dev" / "ledger"),  # where `gitops` in the dev workspace reads it
            lambda _: self.dev,
            topic=self.dev.topic,
            reader_for=lambda _: MlflowMetricsReader(self.dev.ws.tracking_uri),
            name_salt="acme/models",
            clock=lambda: time.time() + self.offset,
        )
        prod = self.lifecycle.backend_in("local", WorkspaceRef(directory=str(root / "prod")))
        assert isinstance(prod, LocalBackend)
        self.prod = prod

    def spec(self, lr: str) -> SpecValidation:
        text = textwrap.dedent(SPEC.format(train=self.data["train_sft"], test=self.data["test_sft"], lr=lr))
        result = validate_text(text, "runs/envs.yaml", self.policy)
        assert result.ok, [f.format() for f in result.findings]
        return result

    def train_and_go_live_in_dev(self, lr: str) -> RunRecord:
        record = self.lifecycle.submit(self.spec(lr), commit="c0ffee", pr="7", policy=self.policy)
        deadline = time.monotonic() + 300
        while not (status := self.dev.get_job(record.job_name)) or not status.state.terminal:
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.5)
        event = json.loads((self.dev.ws.events_dir / f"{record.job_name}-completed.json").read_text())
        self.lifecycle.on_job_event(event)
        return self.lifecycle.settle("envs")

    def record(self, key: str = "envs") -> RunRecord:
        got = self.lifecycle.ledger.get(key)
        assert got is not None, key
        return got[0]

    def jobs(self, backend: LocalBackend) -> list[str]:
        where = backend.ws.root / "jobs"
        return sorted(p.name for p in where.iterdir()) if where.exists() else []


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    w = World(tmp_path_factory.mktemp("envs"))
    yield w
    for backend in (w.dev, w.prod):
        for info in backend.list_endpoints():
            backend.delete_endpoint(info.name)


def test_a_merge_trains_and_goes_live_in_dev_only(world: World) -> None:
    live = world.train_and_go_live_in_dev("3.0e-3")
    assert live.status == "live" and live.environment is None and live.key == "envs", live.error
    assert live.gate is not None and live.gate["on_evidence"] is True
    assert live.model_digest  # computed where it was trained
    assert world.lifecycle.ledger.get("envs.prod") is None and world.prod.list_endpoints() == []
    # Not yet soaked: nothing is due, nothing is shared.
    assert [d for d in world.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE] == []
    assert world.lifecycle.due() == []


def test_after_the_soak_the_promotion_is_due_and_a_stale_request_is_refused(world: World) -> None:
    world.offset += 2 * HOUR
    (due,) = [d for d in world.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE]
    assert due.run == "envs"
    (waiting,) = world.lifecycle.due()
    assert waiting.promotion.to == "prod" and waiting.approval is True
    assert waiting.promotion.job_name == world.record().job_name
    with pytest.raises(ConflictError, match="no promotion of job gitops-envs-nope's model to prod is due"):
        world.lifecycle.release("envs", "prod", by="octocat", job="gitops-envs-nope")
    with pytest.raises(ConflictError, match="not promoted to 'staging'"):
        world.lifecycle.release("envs", "staging", by="octocat")


def test_a_release_rolls_out_in_prod_where_its_stricter_gate_holds_and_dev_is_untouched(world: World) -> None:
    dev_before = world.record()
    jobs_before = world.jobs(world.dev)
    (waiting,) = world.lifecycle.due()
    started = world.lifecycle.release("envs", "prod", by="octocat", reason="CAB-42", via="run 99", job=waiting.promotion.job_name)
    assert started.key == "envs.prod" and started.environment == "prod" and started.cursor is not None
    assert started.cursor.step == "register" and started.approval is not None and started.approval.by == "octocat"
    assert started.endpoint != dev_before.endpoint and "prod" in (started.endpoint or "")
    held = world.lifecycle.settle("envs.prod")
    assert held.status == "held", (held.error, [h.note for h in held.history])
    assert held.gate is not None and any("over the ceiling of 1.01" in r for r in held.gate["reasons"])
    assert held.model_name == waiting.promotion.model and held.model_version == waiting.promotion.version
    assert held.model_digest == dev_before.model_digest  # the digest proven in dev, held to in prod
    info = world.prod.get_endpoint(held.endpoint or "")
    assert info is not None and info.traffic.get((held.cursor.deployment or "") if held.cursor else "", 0) == 0
    # Dev is untouched: the same record (but for the promotion marked released), the same endpoint and traffic.
    dev_after = world.record()
    assert dev_after.model_copy(update={"promotions": [], "updated_at": 0}) == dev_before.model_copy(
        update={"promotions": [], "updated_at": 0}
    )
    assert [p.state for p in dev_after.promotions] == [PromotionState.RELEASED]
    assert dev_after.promotions[0].approval is not None and dev_after.promotions[0].approval.reason == "CAB-42"
    dev_info = world.dev.get_endpoint(dev_after.endpoint or "")
    assert dev_info is not None and dev_info.traffic == {dev_after.deployment: 100}
    # Nothing trained again: the same jobs in dev, none in prod.
    assert world.jobs(world.dev) == jobs_before and world.jobs(world.prod) == []
    # Asked again (a retried workflow run), the release changes nothing.
    again = world.lifecycle.release("envs", "prod", by="octocat", job=waiting.promotion.job_name)
    assert again.status == "held" and len(again.received) == 1


def test_gitops_status_shows_each_environment_side_by_side(world: World, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(world.root / "dev"))
    table = cli("status").out.splitlines()
    assert table[0].split("\t")[:3] == ["run", "env", "status"]
    assert [row.split("\t")[:3] for row in table[1:]] == [["envs", "dev", "live"], ["envs", "prod", "held"]]
    records = json.loads(cli("status", "--json").out)
    assert [(r["run"], r["environment"], r["status"]) for r in records] == [("envs", "dev", "live"), ("envs", "prod", "held")]
    assert records[1]["approval"]["by"] == "octocat" and records[1]["model_digest"] == records[0]["model_digest"]
    described = cli("status", "envs").out
    assert "run        envs (local), live" in described and "run        envs in prod (local), held" in described
    assert "approved   by octocat" in described and "CAB-42 (run 99)" in described
    assert "next       gitops promote envs --env prod --reason ..." in described
    # A release from the shell needs a due promotion: the one released is not due again.
    refused = cli("release", "envs", "--to", "prod", "--reason", "again")
    assert refused.exit_code != 0 and "no promotion of run 'envs' to prod is due" in refused.err


def test_a_person_promotes_the_held_candidate_in_prod(world: World) -> None:
    world.lifecycle.promote("envs.prod", "octocat", "prod gate is new; perplexity reviewed")
    live = world.lifecycle.settle("envs.prod")
    assert live.status == "live" and live.serving_job == world.record().job_name
    info = world.prod.get_endpoint(live.endpoint or "")
    assert info is not None and info.traffic == {live.deployment: 100}
    reply = world.prod.invoke(live.endpoint or "", {"input_data": {"input_string": [{"role": "user", "content": "hi"}]}})
    assert reply.status_code == 200


def test_a_second_version_follows_and_prod_rolls_back_to_the_first_from_the_registry(world: World) -> None:
    v1 = world.record("envs.prod")
    v2_dev = world.train_and_go_live_in_dev("1.0e-3")
    assert v2_dev.status == "live" and v2_dev.job_name != v1.job_name, v2_dev.error
    world.offset += 2 * HOUR
    world.lifecycle.reconcile()
    (waiting,) = world.lifecycle.due()
    assert waiting.promotion.job_name == v2_dev.job_name and waiting.promotion.version == "2"
    world.lifecycle.release("envs", "prod", by="octocat", job=v2_dev.job_name)
    assert world.lifecycle.settle("envs.prod").status == "held"
    world.lifecycle.promote("envs.prod", "octocat")
    v2 = world.lifecycle.settle("envs.prod")
    assert v2.status == "live" and v2.serving_job == v2_dev.job_name and v2.model_version == "2"
    assert v2.previous_serving_job == v1.job_name
    # The rollback in prod goes back to prod's previous version: v1's registry model, received again.
    world.lifecycle.rollback("envs.prod", "octocat", "latency regression")
    back = world.lifecycle.settle("envs.prod")
    assert back.status == "live" and back.serving_job == v1.job_name and back.model_version == "1", back.error
    assert world.record().status == "live" and world.record().job_name == v2_dev.job_name  # dev keeps v2


def test_a_release_of_a_model_whose_registry_copy_changed_is_refused(world: World) -> None:
    v3_dev = world.train_and_go_live_in_dev("2.0e-3")
    world.offset += 2 * HOUR
    world.lifecycle.reconcile()
    (waiting,) = world.lifecycle.due()
    assert waiting.promotion.job_name == v3_dev.job_name
    registry = world.root / "registry"
    weights = [p for p in registry.rglob("*.safetensors") if p.stat().st_size > 0]
    assert weights
    newest = max(weights, key=lambda p: p.stat().st_mtime)
    newest.write_bytes(b"changed after it was shared")
    world.lifecycle.release("envs", "prod", by="octocat", job=v3_dev.job_name)
    refused = world.lifecycle.settle("envs.prod")
    # Refused where it would be received, before anything is deployed: the run in prod says why, and serves on.
    assert refused.status == "failed" and "is not what was shared" in (refused.error or ""), refused.error
    assert refused.serving_job != v3_dev.job_name and refused.serves
    info = world.prod.get_endpoint(refused.endpoint or "")
    assert info is not None and info.traffic == {refused.deployment: 100}  # prod serves what it served before


def test_cleanup_and_the_watch_judge_each_workspace_by_its_own_records(world: World) -> None:
    """The dev endpoint by dev's record, prod's by prod's: neither is an orphan of the other's workspace."""
    from gitops.cleanup.run import cleanup_everywhere
    from gitops.watch.scan import scan

    lc = world.lifecycle
    verdicts = cleanup_everywhere("local", lc.backend_for, lc.backend_in, lc.ledger, world.policy, {"envs"}, True, repo=lc.repo)
    dev, prod = world.record(), world.record("envs.prod")
    assert {v.endpoint: (v.action, v.run) for v in verdicts} == {dev.endpoint: ("keep", "envs"), prod.endpoint: ("keep", "envs")}
    result = scan([], lc.ledger, lc.backend_for, time.time(), repo=lc.repo, backend_of=lc.backend_of)
    assert result.runs == 2 and [f.what for f in result.findings] == []


def test_lineage_is_the_same_in_every_environment_and_on_the_registry_model(world: World) -> None:
    """The report of each environment's version, and the registry model's own tags, name its commit, pull request,
    data and content digest: the same digest wherever the version serves."""
    from gitops.report.build import build_report
    from gitops.report.metrics import MlflowMetricsReader
    from gitops.spec import naming

    prod = world.record("envs.prod")
    dev_of_it = prod.job_name  # the version prod serves was trained (once) in dev
    metrics = MlflowMetricsReader(world.dev.ws.tracking_uri).job_metrics(dev_of_it)
    seen = build_report(prod, metrics).lineage
    assert seen["environment"] == "prod" and seen["commit"] == "c0ffee" and seen["pull request"] == "7"
    assert seen["content digest"] == prod.model_digest and str(world.data["train_sft"]) in seen["data"]
    assert world.policy.registry is not None
    shared = world.prod.registry_model(world.policy.registry, prod.model_name or "", prod.model_version or "")
    tags = shared.tags
    assert tags[naming.TAG_CONTENT] == prod.model_digest and tags[naming.TAG_JOB] == dev_of_it
    assert (tags[naming.TAG_COMMIT], tags[naming.TAG_PR], tags[naming.TAG_REPO]) == ("c0ffee", "7", "acme/models")
    assert tags[naming.TAG_DATA] == str(world.data["train_sft"])
