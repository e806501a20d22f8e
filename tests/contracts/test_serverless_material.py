"""Contract tests of the serverless path over the published REST examples (tests/contracts/rest-api-specs): what our
code sends for a serverless endpoint, a marketplace subscription and a fine-tuning job is what the examples send; the
fake answers in the examples' shape; the adapter reads the example's own bodies (``endpointState``, the inference URI)
through the pinned SDK's models, as it reads the service's."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.backends.base import EndpointState, Provisioning, RegisteredModel
from gitops.spec import naming
from tests.contracts.test_real_material import load, shape_gaps

pytest.importorskip("azure.ai.ml")

CREATE = load("rest-api-specs/serverless_endpoint_create.json")
GET = load("rest-api-specs/serverless_endpoint_get.json")
KEYS_DELETE = load("rest-api-specs/serverless_endpoint_keys_delete.json")
SUBSCRIBE = load("rest-api-specs/marketplace_subscription_create.json")
FINE_TUNING = load("rest-api-specs/finetuning_job_create.json")


def keys_beyond(sent: Any, documented: Any, where: str = "$") -> list[str]:
    """Keys of what we send that the documented request body does not have (a key we made up)."""
    if not isinstance(sent, dict) or not isinstance(documented, dict):
        return []
    out = []
    for k, v in sent.items():
        if k not in documented:
            out.append(f"{where}.{k}")
        elif not (k in ("outputs", "tags", "hyperParameters") or (where == "$.properties" and k == "properties")):  # maps of our names
            out += keys_beyond(v, documented[k], f"{where}.{k}")
    return out


def sent_to(fake: Any, method: str, fragment: str) -> Any:
    bodies = [b for m, url, b in fake.sent if m == method and fragment in url]
    assert bodies, f"no {method} to {fragment}"
    return bodies[-1]


def test_a_serverless_endpoint_is_created_with_the_documented_body_and_answered_in_the_documented_shape(azure_fake, azure_backend) -> None:
    model = RegisteredModel("ft-model", "2", "azureml:ft-model:2")
    started = azure_backend.begin_serverless("ft-model-v2-abcdef", model, {naming.TAG_RUN: "r"})
    body = sent_to(azure_fake, "PUT", "/serverlessEndpoints/ft-model-v2-abcdef")
    assert keys_beyond(body, CREATE["request"]["body"]) == []
    assert body["sku"] == {"name": "Consumption"} and body["location"] == "eastus"  # what the SDK sends (the reference)
    assert (
        body["properties"]["modelSettings"]["modelId"].endswith("/models/ft-model/versions/2")
        and "/workspaces/" in body["properties"]["modelSettings"]["modelId"]
    )
    stored = azure_fake.get_resource(f"{azure_fake.ws_path}/serverlessEndpoints/ft-model-v2-abcdef")
    for documented in (CREATE["response"]["body"], GET["response"]["body"]):
        shape = {**documented, "properties": {**documented["properties"], "inferenceEndpoint": {"uri": "https://x", "headers": {}}}}
        assert shape_gaps(shape, stored) == []  # (the headers are a map of any names: compared as a map)
    assert started.state is Provisioning.SUCCEEDED and started.endpoint_state is EndpointState.ONLINE
    keys = azure_backend.serverless._ops.get_keys("ft-model-v2-abcdef")
    assert (
        keys.primary_key
        and shape_gaps(KEYS_DELETE["listKeys"]["body"], {"primaryKey": keys.primary_key, "secondaryKey": keys.secondary_key}) == []
    )


def test_the_adapter_reads_the_documented_get_body_with_its_endpoint_state(azure_fake, azure_backend) -> None:
    """The SDK's entity drops endpointState; the adapter reads the REST model, which keeps it: here on the published
    body itself, whose endpoint is Suspending (it does not serve)."""
    documented = dict(GET["response"]["body"], name="documented")
    azure_fake.put_resource(f"{azure_fake.ws_path}/serverlessEndpoints/documented", documented)
    found = azure_backend.get_serverless("documented")
    assert found is not None and found.endpoint_state is EndpointState.SUSPENDING and found.endpoint_state.failed
    assert found.state is Provisioning.SUCCEEDED and not found.serving
    assert found.scoring_uri == "https://www.contoso.com/example" and found.model_id == "string"


def test_a_delete_answers_as_documented_and_is_not_waited_for(azure_fake, azure_backend) -> None:
    azure_backend.begin_serverless("going", RegisteredModel("m", "1", "azureml:m:1"), {})
    azure_fake.provisioning_s["delete"] = 120
    azure_backend.delete_serverless("going")
    deletes = [url for m, url in azure_fake.calls if m == "DELETE" and "/serverlessEndpoints/going" in url]
    assert len(deletes) == 1 and not [url for m, url in azure_fake.calls if "operation" in url.lower() and m == "GET"]
    azure_backend.delete_serverless("absent")  # absent is fine


def test_a_marketplace_subscription_is_created_once_with_the_documented_body(azure_fake, azure_backend) -> None:
    base = "azureml://registries/azureml-mistral/models/Ministral-3B"
    azure_backend.begin_serverless("first", RegisteredModel("m", "1", "azureml:m:1"), {}, base)
    body = sent_to(azure_fake, "PUT", "/marketplaceSubscriptions/")
    assert keys_beyond(body, SUBSCRIBE["request"]["body"]) == [] and body["properties"]["modelId"] == base
    (stored,) = azure_fake.children(f"{azure_fake.ws_path}/marketplaceSubscriptions")
    assert shape_gaps(SUBSCRIBE["response"]["body"], stored) == []
    azure_backend.begin_serverless("second", RegisteredModel("m", "2", "azureml:m:2"), {}, base)
    assert len([u for m, u, _ in azure_fake.sent if m == "PUT" and "/marketplaceSubscriptions/" in u]) == 1  # once
    azure_backend.begin_serverless("third", RegisteredModel("m", "3", "azureml:m:3"), {}, "azureml://registries/azureml/models/Phi-4")
    assert len(azure_fake.children(f"{azure_fake.ws_path}/marketplaceSubscriptions")) == 1  # none for a Microsoft model
    azure_backend.delete_serverless("first")
    assert len(azure_fake.children(f"{azure_fake.ws_path}/marketplaceSubscriptions")) == 1  # never deleted here


def test_the_fine_tuning_job_is_submitted_with_the_documented_body(azure_fake, azure_backend) -> None:
    from gitops.backends.base import FoundationModel, PreparedData
    from gitops.spec.validate import validate_text
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "runs" / "phi4-mini-serverless.yaml").read_text()
    text = text.replace("kind: serverless\n  params", "kind: job\n  params").replace("  kind: serverless\n  endpoint", "  endpoint")
    text = text.replace("finetune:\n", "compute:\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")
    text = text.replace(
        "  dataset: HuggingFaceH4/ultrachat_200k\n  train_split: train_sft\n  test_split: test_sft\n  sample_percent: 5\n",
        "  train_path: azureml:ultrachat-train:1\n  test_path: azureml:ultrachat-test:1\n",
    )
    valid = validate_text(text, "runs/phi4-mini-serverless.yaml").valid()
    model = FoundationModel("Phi-4-mini-instruct", "3", "azureml://registries/azureml/models/Phi-4-mini-instruct/versions/3")
    data = PreparedData("azureml:ultrachat-train:1", "azureml:ultrachat-test:1")
    azure_backend.submit(valid.spec, valid.params, "ft-job", {naming.TAG_RUN: "phi4-mini-serverless"}, model, data)
    body = sent_to(azure_fake, "PUT", "/jobs/ft-job")
    documented = FINE_TUNING["request"]["body"]["properties"]
    # The example leaves out what the API's fine-tuning details also define (and the SDK sends): validation data and
    # hyperparameters; and the job fields every job type has (tags, display name, description, properties).
    details = documented["fineTuningDetails"] | {"validationData": documented["fineTuningDetails"]["trainingData"], "hyperParameters": {}}
    common = {"tags": {}, "displayName": "", "description": "", "properties": {}, "isArchived": False}
    assert keys_beyond(body, {"properties": documented | common | {"fineTuningDetails": details}}) == []
    props = body["properties"]
    assert props["jobType"] == "FineTuning" and props["fineTuningDetails"]["modelProvider"] == "Custom"
    assert props["resources"]["instanceTypes"] == ["Standard_NC24ads_A100_v4"]  # the size named: model as a platform
    assert props["fineTuningDetails"]["validationData"]["jobInputType"] == "uri_file"  # always given (the SDK's defect)
    assert props["outputs"]["registered_model"]["jobOutputType"] == "mlflow_model"
    # The SDK sends the task as chatCompletion where the example writes TextCompletion's casing: the service's enum
    # is matched case-insensitively (serverless_2026.md); the example's own casing is kept by the fake.
    assert props["fineTuningDetails"]["taskType"].lower() == "chatcompletion"
    stored = azure_fake.job("ft-job")["properties"]
    answer = FINE_TUNING["response"]["body"]["properties"]
    # Maps of any names (tags, properties, outputs) compared as maps; the compute named by resources, not computeId; no
    # job tier asked (queueSettings is the example's choice).
    maps: dict[str, Any] = {"tags": {}, "properties": {}, "outputs": {}}
    skip = ("computeId", "status", "description", "displayName", "queueSettings")
    gaps = shape_gaps({k: v for k, v in answer.items() if k not in skip} | maps, stored)
    assert gaps == []
