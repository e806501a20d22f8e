"""Pass one: the strict schema. Every message a user can get, from real YAML files."""

from pathlib import Path

import pytest

from gitops.spec.validate import validate_file, validate_text

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example", sorted((REPO / "runs").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(example: Path) -> None:
    from gitops.spec.policy import load_policy

    policy, findings = load_policy(REPO)
    assert findings == []
    result = validate_file(example, policy)
    assert result.ok, [f.format() for f in result.findings]


def _messages(text: str, file: str = "spec.yaml") -> list[str]:
    return [f.format() for f in validate_text(text, file).findings]


def test_unknown_field_suggests_the_close_one(azure_spec_text) -> None:
    text = azure_spec_text().replace("lifecycle:", "lifecyle:")
    messages = _messages(text)
    assert any("lifecyle: unknown field (hint: did you mean 'lifecycle'?)" in m for m in messages), messages


def test_unknown_nested_field_names_its_path_and_line(azure_spec_text) -> None:
    text = azure_spec_text().replace("  instance_type: Standard_NC48ads_A100_v4", "  instance_typ: Standard_NC48ads_A100_v4")
    (finding,) = validate_text(text, "s.yaml").findings
    assert finding.path == "deploy.instance_typ"
    assert finding.hint == "did you mean 'instance_type'?"
    assert finding.line == text.splitlines().index("  instance_typ: Standard_NC48ads_A100_v4") + 1


def test_all_problems_in_a_file_are_reported_at_once(azure_spec_text) -> None:
    text = (
        azure_spec_text()
        .replace("nodes: 1", "nodes: zero")
        .replace("apply_lora: true", "apply_lora: maybe")
        .replace("lifecycle: {idle_after: 24h", "lifecycle: {idle_after: soon")
    )
    result = validate_text(text, "s.yaml")
    paths = {f.path for f in result.findings}
    assert {"compute.nodes", "finetune.params.apply_lora", "lifecycle.idle_after"} <= paths


@pytest.mark.parametrize(
    ("old", "new", "path", "needle"),
    [
        ("name: azure-run", "name: Azure_Run", "name", "does not match the required pattern"),
        ("name: azure-run", "name: ab", "name", "at least 3 characters"),
        ("name: azure-run", "name: a-very-long-run-name-indeed", "name", "at most 24 characters"),
        ("name: azure-run", "name: double--dash", "name", "single '-'"),
        ("name: azure-run", "name: 9lives", "name", "does not match"),
        ("backend: azureml", "backend: gcp", "backend", "'azureml' or 'local'"),
        ('version: "8"}', 'version: "8", label: latest}', "model", "give one of version, label or path"),
        ("nodes: 1", "nodes: 0", "compute.nodes", "greater than or equal to 1"),
        ("sample_percent: 5", "sample_percent: 0", "data.sample_percent", "greater than 0"),
        ("sample_percent: 5", "sample_percent: 101", "data.sample_percent", "less than or equal to 100"),
        ("endpoint: azure-run-ep", "endpoint: 1bad", "deploy.endpoint", "does not match"),
        ("endpoint: azure-run-ep", "endpoint: bad-", "deploy.endpoint", "does not match"),
        (
            "instance_type: Standard_NC48ads_A100_v4",
            "instance_type: Standard_NC48ads_A100_v4\n  request_timeout_ms: 200000",
            "deploy.request_timeout_ms",
            "less than or equal to 180000",
        ),
        ("expire_after: 7d", "expire_after: 7 days", "lifecycle.expire_after", "does not match"),
    ],
)
def test_field_errors(azure_spec_text, old: str, new: str, path: str, needle: str) -> None:
    text = azure_spec_text()
    assert old in text
    result = validate_text(text.replace(old, new), "s.yaml")
    hits = [f for f in result.findings if f.path == path and needle in f.message]
    assert hits, [f.format() for f in result.findings]


def test_missing_required_sections(tmp_path) -> None:
    result = validate_text("name: abc\n", "s.yaml")
    missing = {f.path: f for f in result.findings}
    assert missing["model"].message == "is required"
    assert missing["model"].hint == "add 'model:' to the spec"
    assert "data" in missing


def test_wrong_type_says_what_it_got(azure_spec_text) -> None:
    text = azure_spec_text().replace("nodes: 1", "nodes: [1, 2]")
    (finding,) = [f for f in validate_text(text, "s.yaml").findings if f.path == "compute.nodes"]
    assert "valid integer" in finding.message


def test_yaml_integer_version_is_accepted_as_string(azure_spec_text) -> None:
    result = validate_text(azure_spec_text().replace('version: "8"', "version: 8"), "s.yaml")
    assert result.ok and result.spec is not None and result.spec.model.version == "8"


def test_file_name_must_match_run_name(tmp_path, azure_spec_text) -> None:
    path = tmp_path / "runs" / "other-name.yaml"
    path.parent.mkdir()
    path.write_text(azure_spec_text())
    result = validate_file(path)
    assert any(f.path == "name" and "differs from the file name" in f.message for f in result.findings)


def test_unreadable_file_is_a_finding(tmp_path) -> None:
    result = validate_file(tmp_path / "missing.yaml")
    assert not result.ok and "cannot read the file" in result.findings[0].message


def test_data_needs_exactly_one_source(azure_spec_text) -> None:
    text = azure_spec_text().replace("sample_percent: 5}", "sample_percent: 5, train_path: a.jsonl}")
    assert any("either dataset or train_path" in f.message for f in validate_text(text, "s.yaml").findings)


def test_a_specs_timeouts_and_the_policys_rollout_name_the_same_phases_and_the_steps_use_them() -> None:
    """Once, spec.md named `gate`, README `register`, a spec refused `deploy.timeouts.register` and gitops.yaml took
    `rollout.gate` unlisted: one list, strict in both files, and every rollout step's phase is on it."""
    from gitops.lifecycle import steps
    from gitops.spec.model import RolloutTimeouts
    from gitops.spec.policy import Policy, RolloutPolicy
    from gitops.spec.validate import validate_text
    from tests.conftest import REPO_ROOT

    phases = set(RolloutTimeouts.model_fields)
    assert phases == set(RolloutPolicy.model_fields) == {s.phase for s in steps.ROLLOUT if s.phase != "ramp"}
    for phase in phases:
        assert f".{phase}`" in (REPO_ROOT / "docs" / "spec.md").read_text() and f"{phase}: " in (REPO_ROOT / "gitops.yaml").read_text()
    assert Policy.model_validate({"rollout": {"register": "1h"}}).rollout.register == "1h"
    for refused in ({"rollout": {"hold": "1h"}},):
        try:
            Policy.model_validate(refused)
        except ValueError:
            continue
        raise AssertionError(f"{refused} was accepted")
    text = (REPO_ROOT / "runs" / "local-tiny.yaml").read_text().replace("deploy:\n", "deploy:\n  timeouts: {register: 1h}\n", 1)
    assert validate_text(text, "runs/local-tiny.yaml").ok


def test_a_spec_with_timeouts_keeps_the_digest_it_had_before_register_was_a_phase() -> None:
    """`deploy.timeouts.register` came later: left unset it is no part of the digest, so no run reads as changed."""
    from gitops.spec.validate import validate_text

    text = "name: timed-run\nbackend: local\nmodel: {registry: local, name: tiny-phi3}\ndata: {train_path: t.jsonl}\n"
    text += "deploy:\n  timeouts: {gate: 1h, smoke: 20m}\n"
    # the digest the version before this field computed for the same text
    assert validate_text(text, "runs/timed-run.yaml").digest == "08888d490a5afee9cf705cf7a834646c612027a05411fbd49b0e5beada7f13f6"
    with_register = validate_text(text.replace("smoke: 20m}", "smoke: 20m, register: 1h}"), "runs/timed-run.yaml")
    assert with_register.ok and with_register.digest != "08888d490a5afee9cf705cf7a834646c612027a05411fbd49b0e5beada7f13f6"
