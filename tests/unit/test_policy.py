"""Pass two: the repo policy in gitops.yaml (errors and warnings)."""

from pathlib import Path

import pytest

from gitops.spec.findings import Severity
from gitops.spec.policy import Policy, load_policy
from gitops.spec.validate import validate_text

POLICY = Policy.model_validate(
    {
        "allowed_backends": ["azureml"],
        "compute": {
            "allowed_clusters": ["gpu-cluster-big"],
            "allowed_instance_types": ["Standard_NC24ads_A100_v4"],
            "allowed_deploy_instance_types": ["Standard_NC48ads_A100_v4"],
        },
        "caps": {"max_nodes": 1, "max_instance_count": 1, "max_epochs": 3},
        "required": ["owner", "description"],
    }
)


def _policy_findings(text: str, policy: Policy = POLICY) -> dict[str, tuple[Severity, str, str | None]]:
    result = validate_text(text, "s.yaml", policy)
    return {f.path: (f.severity, f.message, f.hint) for f in result.findings if f.source == "policy"}


@pytest.mark.parametrize(
    ("old", "new", "path", "needle"),
    [
        ("cluster: gpu-cluster-big", "cluster: cpu-cluster", "compute.cluster", "cluster 'cpu-cluster' is not allowed"),
        (
            "instance_type: Standard_NC24ads_A100_v4",
            "instance_type: Standard_ND96asr_v4",
            "compute.instance_type",
            "SKU 'Standard_ND96asr_v4' is not allowed",
        ),
        ("instance_type: Standard_NC48ads_A100_v4", "instance_type: Standard_NC24s_v3", "deploy.instance_type", "not allowed for serving"),
        ("nodes: 1", "nodes: 2", "compute.nodes", "2 nodes exceeds the cap of 1"),
        ("num_train_epochs: 3", "num_train_epochs: 4", "finetune.params.num_train_epochs", "4 epochs exceeds the cap of 3"),
        ("owner: team-a\n", "", "owner", "is required by gitops.yaml"),
    ],
)
def test_policy_errors(azure_spec_text, old: str, new: str, path: str, needle: str) -> None:
    deploy_sku = "instance_type: Standard_NC48ads_A100_v4"
    text = azure_spec_text().replace(deploy_sku, f"{deploy_sku}\n  instance_count: 1")
    text = text.replace("owner: team-a", "owner: team-a\ndescription: d")
    assert old in text
    findings = _policy_findings(text.replace(old, new))
    assert path in findings, findings
    severity, message, hint = findings[path]
    assert severity is Severity.ERROR and needle in message and hint


def test_sku_check_is_case_insensitive(azure_spec_text) -> None:
    text = azure_spec_text().replace("Standard_NC24ads_A100_v4", "standard_nc24ads_a100_v4") + "description: d\n"
    assert _policy_findings(text) == {}


def test_backend_not_allowed(local_spec_text) -> None:
    findings = _policy_findings(local_spec_text() + "description: d\n")
    assert "backend" in findings and "use one of: azureml" in str(findings["backend"][2])


def test_label_warns_by_default_and_errors_when_strict(azure_spec_text) -> None:
    text = azure_spec_text().replace('version: "8"', "label: latest") + "description: d\n"
    result = validate_text(text, "s.yaml", POLICY)
    assert result.ok
    (label,) = [f for f in result.findings if f.path == "model.label"]
    assert label.severity is Severity.WARNING and label.hint == "pin model.version"
    strict = POLICY.model_copy(update={"model_labels": "error"})
    assert not validate_text(text, "s.yaml", strict).ok


def test_broken_policy_file_is_located(tmp_path: Path) -> None:
    (tmp_path / "gitops.yaml").write_text("caps:\n  max_node: 3\n")
    _, findings = load_policy(tmp_path)
    (finding,) = findings
    assert finding.format().startswith(f"{tmp_path / 'gitops.yaml'}:2: caps.max_node: unknown field")
    assert finding.hint == "did you mean 'max_nodes'?"


def test_absent_policy_is_the_default(tmp_path: Path) -> None:
    policy, findings = load_policy(tmp_path)
    assert findings == [] and policy == Policy()


def test_backend_capabilities_are_checked(local_spec_text) -> None:
    text = local_spec_text().replace("apply_lora: true", "apply_lora: true, apply_deepspeed: true")
    text = text.replace("owner: team-a", "owner: team-a\ncompute: {nodes: 2}")
    result = validate_text(text, "s.yaml")
    messages = {f.path: f.message for f in result.findings}
    assert "does not support deepspeed" in messages["finetune.params.apply_deepspeed"]
    assert "does not support multi_node" in messages["compute.nodes"]


def test_ignored_settings_warn_with_the_reason(local_spec_text) -> None:
    text = local_spec_text().replace("apply_lora: true", "apply_lora: true, merge_lora_weights: false")
    result = validate_text(text, "s.yaml")
    assert result.ok
    (finding,) = result.findings
    assert finding.severity is Severity.WARNING and finding.path == "finetune.params.merge_lora_weights"
    assert "LoRA weights are always merged" in finding.message


def test_schema_and_policy_errors_come_in_one_pass(azure_spec_text) -> None:
    """A cap violation shows with the typos, not after they are fixed; a rule about a field that is itself
    invalid says nothing (its schema error stands for it)."""
    policy = Policy.model_validate({"caps": {"max_nodes": 2}, "required": ["owner", "deploy.endpoint"]})
    text = (
        azure_spec_text("one-pass")
        .replace("nodes: 1", "nodes: 5, nodez: 1")
        .replace("owner: team-a\n", "")
        .replace("endpoint: one-pass-ep", "endpoint: 'bad name!'")
    )
    result = validate_text(text, "runs/one-pass.yaml", policy)
    assert result.spec is None
    got = {(f.path, f.source) for f in result.findings}
    assert ("compute.nodez", "schema") in got and ("deploy.endpoint", "schema") in got
    assert ("compute.nodes", "policy") in got and ("owner", "policy") in got
    assert not [f for f in result.findings if f.path == "deploy.endpoint" and f.source == "policy"]
    assert [f.line for f in result.findings] == sorted(f.line or 0 for f in result.findings)


def test_no_policy_pass_when_too_little_of_the_spec_is_left(azure_spec_text) -> None:
    text = azure_spec_text("gone").replace("name: gone\n", "").replace("nodes: 1", "nodes: 5")
    result = validate_text(text, "runs/gone.yaml", Policy())
    assert [f.path for f in result.findings] == ["name"]  # the name is missing: nothing to judge the rest by
