"""Retrain only when training changes: what each kind of spec change takes, the job name, and old records."""

from __future__ import annotations

import pytest

from gitops.ledger.model import RunRecord, parse_record
from gitops.spec import naming
from gitops.spec.validate import SpecValidation, validate_text
from tests.conftest import REPO_ROOT

REFERENCE = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text()


def validated(text: str = REFERENCE) -> SpecValidation:
    result = validate_text(text, "runs/phi4-ultrachat.yaml")
    assert result.ok and result.digests is not None, result.findings
    return result


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("learning_rate: 5.0e-6", "learning_rate: 6.0e-6", "retrain"),
        ("sample_percent: 5", "sample_percent: 10", "retrain"),
        ("nodes: 1", "nodes: 2", "retrain"),
        ('version: "8"', 'version: "9"', "retrain"),
        ("deepspeed_stage: 3", "deepspeed_stage: 2", "retrain"),
        (
            "instance_type: Standard_NC24ads_A100_v4\n  instance_count",
            "instance_type: Standard_NC48ads_A100_v4\n  instance_count",
            "redeploy",
        ),
        ("request_timeout_ms: 90000", "request_timeout_ms: 60000", "redeploy"),
        ("name: Phi-4-ultrachat-200k", "name: Phi-4-ultrachat-v2", "redeploy"),
        ("max_new_tokens: 200}", "max_new_tokens: 100}", "redeploy"),
        ("idle_after: 24h", "idle_after: 12h", "settings"),
        ("keep: false", "keep: true", "settings"),
        ("owner: ml-platform", "owner: team-b", "settings"),
        ("request_timeout_ms: 90000", "request_timeout_ms: 90000\n  timeouts: {deployment: 90m}", "settings"),
        ("owner: ml-platform", "owner: ml-platform", "unchanged"),
    ],
)
def test_each_change_takes_what_it_needs(old: str, new: str, kind: str) -> None:
    assert old in REFERENCE, old
    before, after = validated(), validated(REFERENCE.replace(old, new, 1))
    assert before.digests is not None and after.digests is not None
    assert before.digests.change_to(after.digests) == kind
    same_job = naming.job_name("r", before.training_digest) == naming.job_name("r", after.training_digest)
    assert same_job == (kind != "retrain")


def test_the_job_is_named_by_the_training_digest_and_yaml_spelling_does_not_matter() -> None:
    spelled = validated(REFERENCE.replace("apply_lora: true", "apply_lora: 'true'"))
    assert spelled.digests == validated().digests


def test_a_record_with_one_digest_gets_its_training_and_deployment_digests_from_its_spec() -> None:
    current = validated()
    old = {
        "run": "phi4-ultrachat",
        "backend": "azureml",
        "digest": "d" * 64,
        "job_name": "gitops-phi4-ultrachat-aaaa",
        "status": "live",
        "spec": current.require().model_dump(mode="json"),
        "params": current.params,
    }
    record = parse_record(old, "runs/phi4-ultrachat.json")
    assert current.digests is not None
    assert record.training_digest == current.digests.training and record.deployment_digest == current.digests.deployment
    assert record.digests().change_to(current.digests) == "settings"  # only the whole digest differs: no new job
    assert record.job_name == "gitops-phi4-ultrachat-aaaa"  # the job it ran keeps its name


def test_a_record_whose_spec_cannot_be_read_any_more_compares_as_a_new_training() -> None:
    record = RunRecord(run="x", backend="azureml", digest="d" * 64, job_name="j", spec={"name": "x", "nonsense": 1})
    assert record.training_digest == "" and record.digests().training == "d" * 64
    assert record.digests().change_to(validated().digests or naming.Digests("", "", "")) == "retrain"
