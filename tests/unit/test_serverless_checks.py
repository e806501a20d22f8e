"""What a registry model says about serverless, read as the online checks read it: where it is fine-tuned serverless
(its maas-finetuning-deploy-regions tag, else the dated region table; no evidence holds), whether it is offered
serverless at all, and a marketplace subscription where its publisher is not Microsoft."""

from __future__ import annotations

from gitops.backends.azureml.models import SERVERLESS_REGIONS_TAG, read_facts, serverless_findings
from gitops.spec.findings import Code
from gitops.spec.model import RunSpec
from gitops.spec.validate import validate_file, validate_text
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "runs" / "phi4-mini-serverless.yaml"


def spec(name: str = "Phi-4-mini-instruct") -> RunSpec:
    text = EXAMPLE.read_text().replace("name: Phi-4-mini-instruct", f"name: {name}")
    return validate_text(text, "runs/phi4-mini-serverless.yaml").require()


def body(tags: dict[str, str] | None = None, system: dict[str, str] | None = None) -> dict[str, object]:
    return {"properties": {"tags": tags or {}, "properties": {}, "systemMetadata": system or {}}}


def test_the_example_run_is_fine_tuned_serverless_in_its_region_by_the_dated_table() -> None:
    facts = read_facts(body(system={"deploymentOptions": "['UnifiedEndpointMaaS', 'MaaP', 'ServerlessMaaS']", "publisher": "Microsoft"}))
    assert validate_file(EXAMPLE).ok
    assert serverless_findings(spec(), facts, "eastus") == []
    (outside,) = serverless_findings(spec(), facts, "westeurope")
    assert outside.is_error and outside.code == Code.MODEL and "the serverless region table of 2025-11-24" in outside.message


def test_the_models_own_tag_wins_over_the_table_in_any_of_its_spellings() -> None:
    for written in ('["westus3"]', "['westus3']", "westus3", "West US 3"):
        facts = read_facts(body(tags={SERVERLESS_REGIONS_TAG: written}))
        assert facts.serverless_regions == ("westus3",)
        (finding,) = serverless_findings(spec(), facts, "eastus")
        assert f"its {SERVERLESS_REGIONS_TAG} tag" in finding.message
        assert serverless_findings(spec(), facts, "westus3") == []


def test_no_evidence_of_serverless_fine_tuning_holds_never_passes() -> None:
    (finding,) = serverless_findings(spec("Some-Model"), read_facts(body()), "eastus")
    assert finding.is_error and finding.path == "finetune.kind" and "nothing says Some-Model is fine-tuned serverless" in finding.message


def test_a_model_not_offered_serverless_is_refused_for_serverless_serving() -> None:
    facts = read_facts(body(system={"deploymentOptions": "['MaaP']"}))
    (finding,) = serverless_findings(spec(), facts, "eastus")
    assert finding.is_error and finding.path == "deploy.kind" and "MaaP" in finding.message


def test_a_publisher_other_than_microsoft_needs_a_marketplace_subscription_and_the_check_says_whether_one_exists() -> None:
    facts = read_facts(body(system={"publisher": "Mistral AI"}))
    (none,) = serverless_findings(spec(), facts, "eastus", subscribed=False)
    assert not none.is_error and "marketplace subscription" in none.message and "created at the first deployment" in none.message
    (held,) = serverless_findings(spec(), facts, "eastus", subscribed=True)
    assert "one exists" in held.message
