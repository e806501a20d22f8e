"""Training and serving kinds (finetune.kind, deploy.kind): what each asks of a spec, the combinations each backend
refuses (its capability table), the fine-tuning job's hyperparameters, what a serverless run costs, and the job
YAML `gitops render` prints, loaded by the real SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.cost.estimate import budget_findings, estimate
from gitops.cost.prices import committed_snapshot
from gitops.cost.tokens import read_token_snapshot
from gitops.ledger.model import RunRecord
from gitops.spec import naming
from gitops.spec.findings import Code
from gitops.spec.policy import Policy, parse_policy
from gitops.spec.validate import validate_file, validate_text
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "runs" / "phi4-mini-serverless.yaml"


def policy() -> Policy:
    found, problems = parse_policy((REPO_ROOT / "gitops.yaml").read_text())
    assert found is not None and not problems
    return found


def example(**replace: str) -> str:
    text = EXAMPLE.read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def problems(text: str, pol: Policy | None = None, file: str = "runs/phi4-mini-serverless.yaml") -> dict[str, Any]:
    """Each finding by field path: (severity, code, message, line); an error wins over a warning on the same path."""
    result = validate_text(text, file, pol)
    ordered = sorted(result.findings, key=lambda f: f.is_error)
    return {f.path: (f.severity.value, f.code, f.message, f.line) for f in ordered}


def test_the_serverless_example_is_valid_under_the_repository_policy() -> None:
    result = validate_file(EXAMPLE, policy())
    assert result.ok and not result.findings, result.findings
    spec = result.require()
    assert (spec.finetune.kind, spec.deploy.kind) == ("serverless", "serverless")
    assert result.params == {"num_train_epochs": 1, "per_device_train_batch_size": 4, "learning_rate": 2e-5}


def test_a_spec_written_before_the_kinds_keeps_its_digests() -> None:
    before = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text()
    spelled = before.replace("finetune:\n", "finetune:\n  kind: pipeline\n").replace("deploy:\n", "deploy:\n  kind: managed\n")
    a, b = validate_text(before, "runs/phi4-ultrachat.yaml"), validate_text(spelled, "runs/phi4-ultrachat.yaml")
    assert a.ok and b.ok and a.digests == b.digests  # the defaults spelled out change nothing: no retrain, no redeploy
    # A change of kind is a change like any other: pipeline -> serverless retrains, managed -> serverless redeploys.
    trained = validate_text(example(), "runs/phi4-mini-serverless.yaml")
    as_job = validate_text(example(**{"kind: serverless\n  params": "kind: job\n  params"}), "x.yaml")
    assert trained.digests and as_job.digests and trained.digests.change_to(as_job.digests) == "retrain"


def test_serverless_training_runs_on_no_compute_of_yours() -> None:
    text = example(**{"finetune:\n": "compute:\n  cluster: gpu-cluster-big\n  nodes: 2\nfinetune:\n"})
    found = problems(text, policy())
    assert found["compute.cluster"][:2] == ("error", Code.KIND) and "no compute of yours" in found["compute.cluster"][2]
    assert found["compute.nodes"][:2] == ("error", Code.KIND)
    assert found["compute.cluster"][3] == text.splitlines().index("  cluster: gpu-cluster-big") + 1


def test_a_fine_tuning_job_needs_a_vm_size_where_sizes_are_named_and_validation_data_always() -> None:
    job = example(**{"kind: serverless\n  params": "kind: job\n  params", "  kind: serverless\n  endpoint": "  endpoint"})
    found = problems(job)
    assert found["finetune.kind"][:2] == ("error", Code.KIND) and "compute.instance_type" not in found["finetune.kind"][2]
    assert problems(job.replace("finetune:\n", "compute:\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")) == {}
    files = example(
        **{
            "  dataset: HuggingFaceH4/ultrachat_200k\n  train_split: train_sft\n  test_split: test_sft\n  sample_percent: 5\n": (
                "  train_path: azureml:ultrachat-train:1\n"
            )
        }
    )
    found = problems(files)
    assert found["data.test_path"][:2] == ("error", Code.KIND)
    assert "validation data" in found["data.test_path"][2] and "UnboundLocalError" in found["data.test_path"][2]
    with_validation = files.replace("  train_path: azureml:ultrachat-train:1\n", "  train_path: azureml:t:1\n  test_path: azureml:v:1\n")
    assert problems(with_validation) == {}


@pytest.mark.parametrize(
    ("params", "path", "words"),
    [
        ("    per_device_train_batch_size: 64\n", "finetune.params.per_device_train_batch_size", "at most 32"),
        ("    num_train_epochs: 11\n", "finetune.params.num_train_epochs", "at most 10"),
        ("    learning_rate: 0\n", "finetune.params.learning_rate", "greater than 0"),
        ("    apply_lora: true\n", "finetune.params.apply_lora", "not a hyperparameter of the serverless fine-tuning job"),
        ("    num_train_epoch: 1\n", "finetune.params.num_train_epoch", "not a hyperparameter"),
    ],
)
def test_the_serverless_hyperparameters_have_names_and_bounds(params: str, path: str, words: str) -> None:
    text = example(**{"    num_train_epochs: 1\n    per_device_train_batch_size: 4\n    learning_rate: 2.0e-5\n": params})
    result = validate_text(text, "runs/phi4-mini-serverless.yaml")
    found = {f.path: f for f in result.findings}
    assert found[path].code == Code.PARAM and words in found[path].message, found
    assert found[path].line == text.splitlines().index(params.rstrip("\n")) + 1
    if path.endswith("num_train_epoch"):
        assert found[path].hint == "did you mean 'num_train_epochs'?"


def test_a_job_takes_larger_batches_than_serverless() -> None:
    text = example(**{"kind: serverless\n  params": "kind: job\n  params", "  kind: serverless\n  endpoint": "  endpoint"})
    text = text.replace("finetune:\n", "compute:\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")
    assert problems(text.replace("per_device_train_batch_size: 4", "per_device_train_batch_size: 64")) == {}


def test_a_serverless_endpoint_has_no_ramp_and_no_instances() -> None:
    text = example(**{"  keep_previous_for: 1d\n": "  keep_previous_for: 1d\n  instance_count: 2\n  rollout:\n    steps: [10, 100]\n"})
    found = problems(text)
    assert found["deploy.rollout"][:2] == ("error", Code.KIND) and "no traffic split" in found["deploy.rollout"][2]
    assert found["deploy.instance_count"][:2] == ("error", Code.KIND)


def test_each_backend_refuses_the_combinations_of_its_table() -> None:
    pipeline_to_serverless = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text().replace("deploy:\n", "deploy:\n  kind: serverless\n")
    found = problems(pipeline_to_serverless, file="runs/phi4-ultrachat.yaml")
    assert found["deploy.kind"][:2] == ("error", Code.CAPABILITY)
    assert "finetune.kind pipeline on a serverless endpoint" in found["deploy.kind"][2] and "full MLflow model" in found["deploy.kind"][2]
    serverless_to_managed = example(**{"  kind: serverless\n  endpoint": "  endpoint"})
    assert "inferred" in problems(serverless_to_managed)["deploy.kind"][2]
    # The local backend serves what it trains either way: the same combinations are fine there.
    local = (REPO_ROOT / "runs" / "local-tiny.yaml").read_text().replace("deploy:\n", "deploy:\n  kind: serverless\n")
    assert problems(local, file="runs/local-tiny.yaml") == {}


def test_a_serverless_run_has_one_environment_with_the_reason() -> None:
    with_envs = (REPO_ROOT / "gitops.yaml").read_text() + (
        "registry: {name: shared-models}\n"
        "environments:\n"
        "  - {name: dev, workspace: {subscription: s, resource_group: r, name: dev-ws}}\n"
        "  - {name: prod, workspace: {subscription: s, resource_group: r, name: prod-ws}}\n"
    )
    pol, bad = parse_policy(with_envs)
    assert pol is not None and not bad, bad
    found = problems(example(), pol)
    assert found["deploy.kind"][:2] == ("error", Code.CAPABILITY) and "serverless_promotion" in found["deploy.kind"][2]
    assert "/versions/" in found["deploy.kind"][2]
    assert problems(example(**{"deploy:\n": "environments: [dev]\ndeploy:\n"}), pol) == {}
    # A run trained by the fine-tuning job, served managed: no content digest is computed for its model on Azure.
    job = example(**{"kind: serverless\n  params": "kind: job\n  params", "  kind: serverless\n  endpoint": "  endpoint"})
    job = job.replace("finetune:\n", "compute:\n  cluster: gpu-cluster-big\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")
    severity, code, message, _ = problems(job, pol)["finetune.kind"]
    assert (severity, code) == ("error", Code.CAPABILITY) and "job_promotion" in message and "content digest" in message


def test_the_policy_can_narrow_the_kinds() -> None:
    text = (REPO_ROOT / "gitops.yaml").read_text().replace("compute:\n", "compute:\n  allowed_finetune_kinds: [pipeline, job]\n", 1)
    pol, bad = parse_policy(text)
    assert pol is not None and not bad, bad
    severity, code, _, _ = problems(example(), pol)["finetune.kind"]
    assert (severity, code) == ("error", Code.POLICY)
    assert any(f.hint and "allowed_finetune_kinds" in f.hint for f in validate_text(example(), "x", pol).findings)


# -- cost ---------------------------------------------------------------------------------------------------------
ASSUMED = """\
as_of: "2026-12-07"
source: the benchmark's assumptions
regions:
  eastus:
    Phi-4-mini-instruct:
      train_per_million: 0.8
      input_per_million: 0.075
      output_per_million: 0.3
      hosting_per_hour: 1.7
      assumed: [train_per_million]
"""


def _valid() -> Any:
    result = validate_file(EXAMPLE, policy())
    return result.require(), result.params


def test_serverless_cost_is_the_rate_until_a_version_has_trained_then_tokens_times_rate(tmp_path: Path) -> None:
    spec, params = _valid()
    committed = estimate(spec, params, policy(), committed_snapshot())
    assert committed.training_line().startswith("price unknown: no serverless fine-tuning price for Phi-4-mini-instruct in eastus")
    assert committed.deploy_hourly == 1.70 and "hosting $1.7/h, called or not" in committed.serving_line()
    assert committed.deploy_bound_usd == pytest.approx(1.70 * 24 * 7)  # bounded by expire_after 7d as VM serving is
    assert not budget_findings(committed, policy(), spec)  # the repository's hourly cap covers the hosting fee: $1.70 < $20
    (tmp_path / "assumed.yaml").write_text(ASSUMED)
    assumed = read_token_snapshot(tmp_path / "assumed.yaml")
    first = estimate(spec, params, policy(), committed_snapshot(), token_prices=assumed)
    assert first.training_usd is None
    assert first.training_line() == "$0.8/1M tokens (assumed) x epochs; tokens unknown until a version of this run has trained"
    # The previous version saw 3M tokens on the same data and epochs; this one asks for twice the data.
    previous = RunRecord(
        run=spec.name,
        backend="azureml",
        job_name="j",
        digest="d",
        spec=spec.model_dump(mode="json"),
        params=params,
        report={"tokens_seen": 3_000_000},
    )
    doubled = spec.model_copy(update={"data": spec.data.model_copy(update={"sample_percent": 10.0})})
    later = estimate(doubled, params, policy(), committed_snapshot(), previous, token_prices=assumed)
    assert later.training_tokens == pytest.approx(6_000_000) and later.training_usd == pytest.approx(4.8)
    assert "~$4.80 (~6,000,000 tokens x epochs at $0.8/1M tokens (assumed)" in later.training_line()


def test_an_unknown_hosting_fee_under_an_hourly_cap_is_an_error_never_a_pass(tmp_path: Path) -> None:
    spec, params = _valid()
    other = spec.model_copy(update={"model": spec.model.model_copy(update={"name": "Phi-4"})})
    cost = estimate(other, params, policy(), committed_snapshot())
    assert cost.deploy_hourly is None and "hosting fee: price unknown" in cost.serving_line()
    found = budget_findings(cost, policy(), other)
    assert [(f.path, f.code) for f in found] == [("deploy.kind", Code.PRICE_UNKNOWN)]
    capped = Policy.model_validate({**policy().model_dump(), "budget": {"region": "eastus", "max_training_usd": 10}})
    assert [(f.path, f.code) for f in budget_findings(cost, capped, other)] == [("finetune.kind", Code.PRICE_UNKNOWN)]


def test_a_snapshot_with_a_rate_that_is_not_a_price_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(ASSUMED.replace("hosting_per_hour: 1.7", "hosting_per_hour: .nan"))
    with pytest.raises(ValueError, match="hosting_per_hour is not a price"):
        read_token_snapshot(tmp_path / "bad.yaml")


# -- render -------------------------------------------------------------------------------------------------------
def test_render_prints_the_data_job_then_the_fine_tuning_job(cli) -> None:
    result = cli("render", str(EXAMPLE))
    assert result.exit_code == 0, result.err
    prepare, job = list(yaml.safe_load_all(result.out))
    assert prepare["type"] == "command" and prepare["name"] == f"{job['name']}-data"
    assert prepare["outputs"]["train_file"]["path"] == job["training_data"]["path"]
    assert prepare["outputs"]["test_file"]["path"] == job["validation_data"]["path"]  # validation data, always given
    assert job["type"] == "finetuning" and job["task"] == "chat_completion" and "resources" not in job and "compute" not in job
    assert job["hyperparameters"] == {"num_train_epochs": "1", "per_device_train_batch_size": "4", "learning_rate": "2e-05"}
    assert job["outputs"] == {"registered_model": {"name": "Phi-4-mini-ultrachat", "type": "mlflow_model"}}
    assert job["display_name"] == "Phi-4-mini-instruct-ultrachat_200k-bs4-serverless"
    assert job["tags"][naming.TAG_RUN] == "phi4-mini-serverless"


def test_render_of_a_fine_tuning_job_loads_with_the_sdk_offline(cli, tmp_path: Path, write) -> None:
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job

    result = cli("render", str(EXAMPLE))
    prepare_doc, job_doc = list(yaml.safe_load_all(result.out))
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job_doc))
    job: Any = load_job(tmp_path / "job.yaml")
    assert type(job).__name__ == "CustomModelFineTuningJob" and job.task == "chatCompletion"
    assert job.validation_data.path == job_doc["validation_data"]["path"]
    assert job.outputs["registered_model"].name == "Phi-4-mini-ultrachat" and job.resources is None
    (tmp_path / "prepare.yaml").write_text(yaml.safe_dump(prepare_doc))
    prepare: Any = load_job(tmp_path / "prepare.yaml")
    assert prepare.type == "command" and prepare.resources.instance_type == "Standard_E4s_v3"
    # On a size you name: instance types, as the REST body's resources.instanceTypes.
    sized = example(**{"kind: serverless\n  params": "kind: job\n  params", "  kind: serverless\n  endpoint": "  endpoint"})
    sized = sized.replace("finetune:\n", "compute:\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")
    path = write("runs/phi4-mini-serverless.yaml", sized)
    on_vm = list(yaml.safe_load_all(cli("render", str(path)).out))[-1]
    (tmp_path / "vm.yaml").write_text(yaml.safe_dump(on_vm))
    vm_job: Any = load_job(tmp_path / "vm.yaml")
    assert vm_job.resources.instance_types == ["Standard_NC24ads_A100_v4"]


def test_the_plan_comment_of_a_run_moving_off_its_gpus_matches_its_golden_file(git_repo) -> None:
    """What a reviewer reads when a run moves from a fine-tuning job on A100s and a managed endpoint to serverless
    training and serving (regenerate with GITOPS_UPDATE_GOLDEN=1): it retrains, its serving moves kind (the old
    endpoint serves until the new one is promoted), per-token cost with the rate unknown, no vCPU quota."""
    from gitops.review.plan import build_plan
    from gitops.review.plan_render import render_markdown, render_text
    from tests.conftest import assert_golden

    git_repo.write("gitops.yaml", (REPO_ROOT / "gitops.yaml").read_text())
    on_gpus = example(**{"kind: serverless\n  params": "kind: job\n  params", "  kind: serverless\n  endpoint": "  endpoint"})
    on_gpus = on_gpus.replace("finetune:\n", "compute:\n  cluster: gpu-cluster-big\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")
    git_repo.write("runs/phi4-mini-serverless.yaml", on_gpus)
    base = git_repo.commit("base")
    git_repo.write("runs/phi4-mini-serverless.yaml", example())
    git_repo.commit("head")
    plan = build_plan(git_repo.root, base)
    assert plan.ok, render_text(plan)
    text = render_markdown(plan).replace(plan.base[:10], "BASE").replace(plan.head[:10], "HEAD")
    assert "trained anew by serverless fine-tuning (was job)" in text and "the old endpoint serves until the new one is promoted" in text
    assert_golden("plan-comment-serverless.md", text)
