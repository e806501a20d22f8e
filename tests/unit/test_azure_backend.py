"""The Azure ML backend on the real azure-ai-ml SDK, against the fake REST API (tests/fakes)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitops.backends.azureml import errors as azerrors
from gitops.backends.azureml.models import read_facts
from gitops.backends.base import PreparedData, Provisioning, RegisteredModel
from gitops.errors import (
    AuthError,
    BackendError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    SpecError,
    TransientBackendError,
)
from gitops.spec.validate import validate_file, validate_text
from tests.conftest import REPO_ROOT
from tests.fakes import azureml_seed as seed
from tests.fakes.azureml_api import start_deployment

REFERENCE = REPO_ROOT / "runs" / "phi4-ultrachat.yaml"


def spec_with(**changes: object):
    base = validate_file(REFERENCE).require()
    return base.model_copy(update=changes)


def compute(**fields: object):
    base = validate_file(REFERENCE).require()
    return base.model_copy(update={"compute": base.compute.model_copy(update=fields)})


# -- foundation model -------------------------------------------------------------------------------
def test_current_model_metadata_from_system_metadata(azure_backend) -> None:
    """Phi-4 v8 as azureml-assets published it in 2026: no allow-list tags, SKUs in systemMetadata."""
    model = azure_backend.resolve_model(spec_with())
    assert model.version == "8" and model.uri == "azureml://registries/azureml/models/Phi-4/versions/8"
    assert model.finetune_allow_list is not None and len(model.finetune_allow_list) == 8
    assert {"Standard_NC24ads_A100_v4", "Standard_NC40ads_H100_v5"} <= set(model.finetune_allow_list)
    assert model.inference_allow_list is not None and "Standard_NC24ads_A100_v4" in model.inference_allow_list
    assert model.defaults["deepspeed_stage"] == 3 and model.defaults["precision"] == 16
    assert model.findings == ()


def test_older_versions_still_read_their_tags(azure_fake, azure_backend) -> None:
    azure_fake.add_model(seed.foundation_model())  # allow lists and defaults as tags, as before the 2026 migration
    model = azure_backend.resolve_model(spec_with())
    assert model.finetune_allow_list == tuple(seed.A100_ALLOW) and model.inference_allow_list == tuple(seed.INFERENCE_ALLOW)
    assert model.defaults["apply_deepspeed"] == "true" and model.defaults["learning_rate_min"] == 1e-6


def test_properties_win_over_tags_and_archived_or_retired_models_are_errors(azure_fake, azure_backend) -> None:
    azure_fake.add_model(
        seed.foundation_model(
            stage="Archived",
            tags={"FinetuneRetirementDate": "2025-08-30", "finetune_compute_allow_list": "['Standard_NC6s_v3']"},
            properties={"finetune_compute_allow_list": "['Standard_NC24ads_A100_v4']"},
        )
    )
    model = azure_backend.resolve_model(spec_with())
    assert model.finetune_allow_list == ("Standard_NC24ads_A100_v4",)
    messages = {(f.path, f.severity.value): f.message for f in model.findings}
    assert "archived" in messages[("model.version", "error")]
    assert "2025-08-30" in messages[("model.name", "error")]


def test_metadata_reads_strings_lists_and_dicts() -> None:
    """Values stored as text (Python literals in older tags, JSON in system metadata) are read as what they hold."""
    body = {
        "properties": {
            "tags": {"finetune_compute_allow_list": "['x', 'y']", "model_specific_defaults": "{'k': 1}"},
            "systemMetadata": {"SKU": '{"inferenceRecommendedSkus": ["z"]}'},
        }
    }
    facts = read_facts(body)
    assert facts.finetune_skus == ("x", "y") and facts.defaults == {"k": 1} and facts.inference_skus == ("z",)


def test_missing_model_version_is_not_found(azure_backend) -> None:
    base = spec_with()
    spec = base.model_copy(update={"model": base.model.model_copy(update={"version": "99"})})
    with pytest.raises(NotFoundError, match="Phi-4"):
        azure_backend.resolve_model(spec)


# -- compute ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setup", "spec_fields", "path", "needle"),
    [
        (None, {"cluster": "nope-cluster"}, "compute.cluster", "does not exist"),
        (("broken", "Standard_NC24ads_A100_v4", 2, "Failed"), {"cluster": "broken"}, "compute.cluster", "failed provisioning"),
        (("small", "Standard_NC6s_v3", 2, "Succeeded"), {"cluster": "small"}, "compute.instance_type", "Standard_NC24ads_A100_v4"),
        (None, {"cluster": "gpu-cluster-big", "nodes": 3}, "compute.nodes", "at most 2"),
        (None, {"cluster": None, "instance_type": "Standard_DS3_v2"}, "compute.instance_type", "not among Phi-4's fine-tune SKUs"),
    ],
)
def test_compute_findings_name_the_field_and_the_fix(azure_fake, azure_backend, setup, spec_fields, path, needle) -> None:
    if setup:
        azure_fake.add_cluster(*setup)
    spec = compute(**spec_fields)
    findings = azure_backend.check_compute(spec, azure_backend.resolve_model(spec))
    errors = [f for f in findings if f.is_error]
    assert any(f.path == path and (needle in f.message or needle in (f.hint or "")) for f in errors), findings


def test_good_compute_has_no_errors_and_gpus_come_from_the_region(azure_backend) -> None:
    spec = compute(cluster="gpu-cluster-big")
    model = azure_backend.resolve_model(spec)
    findings, gpus = azure_backend.compute.check(spec, model)
    assert not [f for f in findings if f.is_error] and gpus == 1


def test_without_allow_list_old_sizes_are_refused_and_deploy_sku_checked(azure_fake, azure_backend) -> None:
    azure_fake.add_model(seed.foundation_model(tags={"inference_compute_allow_list": "['Standard_NC24ads_A100_v4']"}))
    azure_fake.add_cluster("old", "Standard_NC6", 2)
    base = compute(cluster="old")
    spec = base.model_copy(update={"deploy": base.deploy.model_copy(update={"instance_type": "Standard_NC6s_v3"})})
    findings = azure_backend.check_compute(spec, azure_backend.resolve_model(spec))
    assert {f.path for f in findings if f.is_error} == {"compute.instance_type", "deploy.instance_type"}


# -- submit -----------------------------------------------------------------------------------------
def _submit(azure_fake, azure_backend, job: str = "gitops-phi4-ultrachat-0123456789ab"):
    validated = validate_file(REFERENCE)
    spec = validated.require()
    model = azure_backend.resolve_model(spec)
    tags = {"gitops_run": spec.name, "gitops_digest": "0123456789abcdef", "gitops_commit": "c0ffee", "gitops_pr": "7"}
    data = PreparedData("azureml:ultrachat-train:1", "azureml:ultrachat-test:1")
    return azure_backend.submit(spec, validated.params, job, tags, model, data)


def test_submit_sends_the_reference_pipeline_job(azure_fake, azure_backend) -> None:
    status = _submit(azure_fake, azure_backend)
    assert status.name == "gitops-phi4-ultrachat-0123456789ab" and status.portal_url
    body = azure_fake.job(status.name)["properties"]
    step = body["jobs"]["finetune"]
    assert step["componentId"] == "azureml://registries/azureml/components/chat_completion_pipeline/versions/0.0.82"
    inputs = {k: v.get("value", v.get("uri")) if isinstance(v, dict) else v for k, v in step["inputs"].items()}
    assert inputs["number_of_gpu_to_use_finetuning"] in ("1", 1)
    assert inputs["mlflow_model_path"] == "azureml://registries/azureml/models/Phi-4/versions/8"
    assert inputs["compute_finetune"] == "gpu-cluster-big" and inputs["apply_deepspeed"] == "true"
    assert "learning_rate_min" not in inputs  # model defaults are filtered to declared inputs
    assert body["tags"]["gitops_run"] == "phi4-ultrachat" and body["tags"]["gitops_commit"] == "c0ffee"
    assert all("." not in key for key in body["tags"])  # Event Grid filters cannot address dotted keys
    assert body["experimentName"] == "chat_completion_Phi-4"
    assert body["displayName"].startswith("Phi-4-ultrachat")
    assert body["settings"]["force_rerun"] is True and body["settings"]["continue_on_step_failure"] is False
    # The reference run names a hub dataset: the pipeline's first step prepares it on the cluster; submit downloads nothing.
    assert inputs["train_file_path"] == "${{parent.jobs.prepare_data.outputs.train_file}}"
    assert inputs["test_file_path"] == "${{parent.jobs.prepare_data.outputs.test_file}}"
    prepare = body["jobs"]["prepare_data"]
    assert prepare["type"] == "command" and prepare["computeId"].endswith("/computes/gpu-cluster-big")
    uploaded = {path.rsplit("/", 1)[-1] for path in azure_fake.blobs if "/LocalUpload/" in path}
    assert {"prepare_data.py", "chat_format.py"} <= uploaded and "local_finetune.py" not in uploaded  # pipelines/.amlignore


def test_given_data_is_bound_as_pipeline_inputs(azure_fake, azure_backend) -> None:
    given = "train_path: azureml:ultrachat-train:1\n  test_path: azureml:ultrachat-test:1\n  #"
    text = REFERENCE.read_text().replace("dataset: HuggingFaceH4/ultrachat_200k", given)
    validated = validate_text(text, "runs/phi4-ultrachat.yaml")
    spec = validated.require()
    data = azure_backend.prepare_data(spec, "gitops-phi4-ultrachat-0123456789ab")
    status = azure_backend.submit(
        spec,
        validated.params,
        "gitops-phi4-ultrachat-0123456789ab",
        {"gitops_run": spec.name, "gitops_digest": "0123456789abcdef"},
        azure_backend.resolve_model(spec),
        data,
    )
    body = azure_fake.job(status.name)["properties"]
    assert list(body["jobs"]) == ["finetune", "model_digest"]
    assert body["inputs"]["train_file"]["uri"].endswith("/data/ultrachat-train/versions/1")
    # The last step computes the trained model's content digest where the model is, into a path named after the job.
    step = body["jobs"]["model_digest"]
    assert step["inputs"]["model"]["value"] == "${{parent.jobs.finetune.outputs.mlflow_model_folder}}", step["inputs"]
    assert step["outputs"]["digest"]["uri"].endswith(f"/paths/gitops/{status.name}/content_digest.json"), step["outputs"]


def test_a_registered_model_carries_the_digest_its_job_computed_and_none_when_there_is_none(azure_fake, azure_backend) -> None:
    """#27: the controller reads the few bytes the model_digest step wrote (never the model) and tags the registered
    model with them; no file, or a file that holds no digest, tags nothing (a promotion of it then waits)."""
    from gitops.spec import naming

    status = _submit(azure_fake, azure_backend)
    azure_fake.set_job_status(status.name, "Completed")
    model = azure_backend.register_model(status.name, "phi4-chat", {naming.TAG_RUN: "phi4-ultrachat"})
    written = json.loads(azure_fake.digest_file(status.name))["content_digest"]
    assert model.tags[naming.TAG_CONTENT] == written and written.startswith("sha256:")
    path = f"/azureml-blobstore/gitops/{status.name}/content_digest.json"
    for broken in (None, b'{"content_digest": "md5:abc"}', b"not json"):
        if broken is None:
            del azure_fake.blobs[path]
        else:
            azure_fake.blobs[path] = broken
        assert azure_backend.jobs.content_digest(status.name) is None


def test_a_retried_submit_finds_the_job_instead_of_making_another(azure_fake, azure_backend) -> None:
    _submit(azure_fake, azure_backend)
    puts = [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]
    assert _submit(azure_fake, azure_backend).name == "gitops-phi4-ultrachat-0123456789ab"
    assert [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]] == puts


def test_submit_refuses_what_validate_would_refuse(azure_fake, azure_backend, tmp_path: Path) -> None:
    """Nothing reaches the GPU queue that validate would refuse: a spec not checked yet is checked by the one check
    (online included) before anything is submitted, and a checked one is not checked again."""
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle

    azure_fake.add_cluster("gpu-cluster-big", "Standard_NC6s_v3")
    lifecycle = Lifecycle(LocalLedger(tmp_path / "ledger"), lambda name: azure_backend, name_salt="acme/models")
    with pytest.raises(SpecError, match="(?i)Standard_NC6s_v3") as refused:  # the service answers vmSize upper-cased
        lifecycle.submit(validate_file(REFERENCE))
    assert refused.value.headline.startswith(f"{REFERENCE}:20: compute.instance_type:") and refused.value.findings
    assert not [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]
    azure_fake.add_cluster("gpu-cluster-big", "Standard_NC24ads_A100_v4")
    checked = lifecycle.check(validate_file(REFERENCE))
    azure_fake.add_cluster("gpu-cluster-big", "Standard_NC6s_v3")  # what the check would refuse now: not asked again
    record = lifecycle.submit(checked)
    assert record.job_name and [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]


@pytest.mark.parametrize("path", ["/proc/self/environ", "data/train.jsonl", "../../etc/passwd", "http://example.com/x.jsonl"])
def test_a_local_data_path_in_an_azure_spec_is_refused_and_nothing_is_read(azure_fake, azure_backend, path) -> None:
    """Hole: a merged spec with train_path /proc/self/environ uploaded the Function's environment to the datastore."""
    seeded = set(azure_fake.blobs)  # the workspace's own data assets
    given = f"train_path: {path}\n  test_path: azureml:held-out:3\n  #"
    text = REFERENCE.read_text().replace("dataset: HuggingFaceH4/ultrachat_200k", given)
    validated = validate_text(text, "runs/phi4-ultrachat.yaml")
    assert not validated.ok
    (finding,) = [f for f in validated.findings if f.is_error]
    assert finding.path == "data.train_path" and "does not support local_data_files" in finding.message
    assert finding.line == text.splitlines().index(f"  train_path: {path}") + 1
    with pytest.raises(SpecError, match="a local path cannot be used by the azureml backend"):  # and again where data is prepared
        azure_backend.prepare_data(validated.spec, "gitops-phi4-ultrachat-0123456789ab")
    assert set(azure_fake.blobs) == seeded  # nothing uploaded


def test_job_status_and_cancel(azure_fake, azure_backend) -> None:
    status = _submit(azure_fake, azure_backend)
    assert azure_backend.get_job(status.name).state.value == "queued"
    azure_fake.set_job_status(status.name, "Running")
    assert azure_backend.get_job(status.name).state.value == "running"
    calls = len(azure_fake.calls)
    azure_backend.cancel_job(status.name)  # the documented 202 + Location: started, never polled inside the call
    assert [m for m, u in azure_fake.calls[calls:] if "fake-operations" in u] == []
    assert [m for m, u in azure_fake.calls[calls:] if u.split("?")[0].endswith("/cancel")] == ["POST"]
    assert azure_backend.get_job(status.name).state.value == "canceled"
    assert azure_backend.get_job("no-such-job") is None


# -- register, endpoints ----------------------------------------------------------------------------
def test_register_reuses_the_version_made_from_the_same_job(azure_fake, azure_backend) -> None:
    first = azure_backend.register_model("job-1", "phi3-chat", {"gitops_run": "r"})
    again = azure_backend.register_model("job-1", "phi3-chat", {"gitops_run": "r"})
    assert first == again and len(azure_fake.model_versions("phi3-chat")) == 1
    body = azure_fake.model_versions("phi3-chat")[0]["properties"]
    assert body["modelUri"] == "azureml://jobs/job-1/outputs/trained_model" and body["modelType"] == "mlflow_model"


def test_endpoint_rollout_and_invoke_one_deployment(azure_fake, azure_backend, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    spec = spec_with()
    model = RegisteredModel("phi3-chat", "1", "azureml:phi3-chat:1")
    azure_backend.begin_endpoint("phi3-ep", {"managed_by": "finetune-gitops", "gitops_run": "r"})
    info = azure_backend.get_endpoint("phi3-ep")
    assert info.scoring_uri.endswith("/score") and azure_fake.endpoint("phi3-ep")["properties"]["authMode"] == "Key"
    start_deployment(azure_backend, "phi3-ep", "blue", model, spec)
    dep = azure_fake.get_resource(f"{azure_fake.ws_path}/onlineEndpoints/phi3-ep/deployments/blue")["properties"]
    assert dep["model"].endswith("/models/phi3-chat/versions/1") and dep["requestSettings"]["requestTimeout"] == "PT1M30S"
    assert dep["livenessProbe"]["initialDelay"] == "PT10M"
    result = azure_backend.invoke("phi3-ep", {"input_data": {"input_string": []}}, deployment="blue")
    assert result.status_code == 200 and "blue" in result.body
    assert azure_fake.scored[-1][1] == "blue"
    azure_backend.begin_traffic("phi3-ep", {"blue": 100})
    info = azure_backend.get_endpoint("phi3-ep")
    assert info.traffic == {"blue": 100} and [d.name for d in info.deployments] == ["blue"]
    assert "gitops_pending" not in info.tags and "gitops_deployed_at" in info.tags  # promoted: not pending any more
    key = azure_fake.keys_issued[-1]
    assert key not in caplog.text  # the key is never logged
    azure_backend.delete_endpoint("phi3-ep")
    assert azure_backend.get_endpoint("phi3-ep") is None


def test_a_failed_deployment_reads_failed_with_where_to_look(azure_fake, azure_backend) -> None:
    azure_backend.begin_endpoint("phi3-ep", {"managed_by": "finetune-gitops"})
    azure_fake.deployment_state = "Failed"
    start_deployment(azure_backend, "phi3-ep", "blue", RegisteredModel("m", "1", "azureml:m:1"), spec_with())
    dep = azure_backend.get_deployment("phi3-ep", "blue")
    assert dep is not None and dep.state is Provisioning.FAILED and "get-logs" in (dep.error or "")


def test_begin_calls_start_operations_and_never_wait_or_poll(azure_fake, azure_backend) -> None:
    """Provisioning takes minutes of the fake's clock; the begin_* calls return at once, the state reads
    Creating until the clock has moved, no operation URL is polled and no poller thread is left behind."""
    import threading

    now = [1000.0]
    azure_fake.clock = lambda: now[0]
    azure_fake.provisioning_s.update(onlineendpoints=90, deployments=600)
    assert azure_backend.begin_endpoint("slow-ep", {"managed_by": "finetune-gitops"}).state is Provisioning.CREATING
    assert azure_backend.get_endpoint("slow-ep").state is Provisioning.CREATING
    now[0] += 90
    assert azure_backend.get_endpoint("slow-ep").state is Provisioning.SUCCEEDED
    model = RegisteredModel("m", "1", "azureml:m:1")
    # The pending mark is written first; Azure refuses a deployment into an endpoint that is Updating, so the
    # deployment is started by a later call, once the endpoint has settled (tests/contracts/reported).
    with pytest.raises(TransientBackendError, match="being marked"):
        azure_backend.begin_deployment("slow-ep", "blue", model, spec_with())
    assert azure_backend.get_endpoint("slow-ep").state is Provisioning.UPDATING
    with pytest.raises(TransientBackendError, match="is updating"):
        azure_backend.begin_deployment("slow-ep", "blue", model, spec_with())
    assert azure_backend.get_deployment("slow-ep", "blue") is None
    now[0] += 90
    azure_backend.begin_deployment("slow-ep", "blue", model, spec_with())
    assert azure_backend.get_deployment("slow-ep", "blue").state is Provisioning.UPDATING  # as the service answers (recorded)
    now[0] += 599
    assert not azure_backend.get_deployment("slow-ep", "blue").state.settled
    now[0] += 1
    assert azure_backend.get_deployment("slow-ep", "blue").state is Provisioning.SUCCEEDED
    assert not [u for _, u in azure_fake.calls if "mfeOperation" in u or "fake-operations" in u]
    assert not [t for t in threading.enumerate() if t.name.startswith("LROPoller")]


def test_an_endpoint_we_did_not_create_is_never_taken_over(azure_fake, azure_backend) -> None:
    azure_fake.put_resource(
        f"{azure_fake.ws_path}/onlineEndpoints/theirs",
        {
            "location": "eastus",
            "properties": {"authMode": "Key", "scoringUri": "https://x/score", "traffic": {}, "properties": {}},
            "identity": {"type": "SystemAssigned"},
            "tags": {},
        },
    )
    with pytest.raises(ConflictError, match="not managed by finetune-gitops"):
        azure_backend.begin_endpoint("theirs", {"managed_by": "finetune-gitops"})


# The service's answer when another workspace of the region holds the name (reported: azureml-examples #1931).
NAME_TAKEN_400 = {
    "code": "BadRequest",
    "message": "One or more validation errors occurred",
    "details": [
        {
            "code": "Invalid",
            "message": "There is already an endpoint with this name taken in region eastus. Endpoint names must be unique within a region.",
        }
    ],
}


@pytest.mark.parametrize("answer", [(409, None), (400, NAME_TAKEN_400)])
def test_a_name_taken_in_the_region_is_reported_clearly(azure_fake, azure_backend, answer) -> None:
    status, body = answer
    azure_fake.fail_next.append((r"^PUT .*onlineEndpoints/taken\?", status, {}, *([body] if body else [])))
    with pytest.raises(ConflictError, match="taken in region eastus") as caught:
        azure_backend.begin_endpoint("taken", {"managed_by": "finetune-gitops"})
    assert "deploy.endpoint" in (caught.value.hint or "")


def test_a_name_deleted_moments_ago_is_a_wait_not_a_failure(azure_fake, azure_backend) -> None:
    """Re-creating a name soon after deleting it (reported: azure-cli-extensions #7660, #7107)."""
    body = {
        "code": "NotFound",
        "message": "Resource not found",
        "details": [{"code": "InferencingClientCallFailed", "message": "The endpoint could not be created"}],
    }
    azure_fake.fail_next.append((r"^PUT .*onlineEndpoints/again\?", 404, {}, body))
    with pytest.raises(TransientBackendError, match="deleted recently") as caught:
        azure_backend.begin_endpoint("again", {"managed_by": "finetune-gitops"})
    assert "tried again" in (caught.value.hint or "")
    assert azure_backend.begin_endpoint("again", {"managed_by": "finetune-gitops"}).name == "again"  # released: it works


def test_defaultazurecredentials_chain_of_failures_reads_as_one_line() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    text = (Path(__file__).resolve().parents[1] / "contracts" / "azure-identity" / "default_credential_failure.txt").read_text()
    error = azerrors.translate(ClientAuthenticationError(message=text), "getting model Phi-4")
    assert isinstance(error, AuthError) and "\n" not in error.headline and len(error.headline) < 200
    assert error.headline.startswith("Azure rejected our credentials while getting model Phi-4: DefaultAzureCredential failed")
    assert "az login" in (error.hint or "")


# -- usage ------------------------------------------------------------------------------------------
def test_usage_is_batched_fifty_endpoints_per_call(azure_fake, azure_backend) -> None:
    names = [f"ep-{i:03d}" for i in range(120)]
    now = datetime.now(UTC)
    azure_fake.add_requests("ep-007", now - timedelta(minutes=30), 4)
    azure_fake.add_requests("ep-007", now - timedelta(minutes=10), 2)
    azure_fake.add_requests("ep-100", now - timedelta(days=3), 9)  # outside the window
    azure_backend.clients.remember_location("eastus")
    usage = azure_backend.usage(names, timedelta(hours=24))
    assert len([c for c in azure_fake.calls if "metrics:getBatch" in c[1]]) == 3
    assert usage["ep-007"].known and usage["ep-007"].requests == 6
    assert usage["ep-007"].last_request_at is not None and usage["ep-007"].last_request_at > now - timedelta(minutes=11)
    assert usage["ep-100"].known and usage["ep-100"].requests == 0


def test_usage_unknown_when_metrics_fail(azure_fake, azure_backend) -> None:
    azure_backend.clients.remember_location("eastus")
    azure_backend.metrics_sleep = None
    azure_fake.fail_next.extend([("metrics:getBatch", 403, {})])
    usage = azure_backend.usage(["a", "b"], timedelta(hours=1))
    assert not usage["a"].known and not usage["b"].known


# -- error translation and retries ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error_type"), [(401, AuthError), (403, ForbiddenError), (404, NotFoundError), (409, ConflictError), (400, SpecError)]
)
def test_sdk_errors_become_project_errors(azure_fake, azure_backend, status, error_type) -> None:
    azure_fake.fail_next.append((r"/computes/gpu-cluster-big", status, {}))
    ws = azure_backend.clients.workspace
    with pytest.raises(error_type) as caught:
        azerrors.call("getting compute gpu-cluster-big", lambda: ws.compute.get("gpu-cluster-big"))
    assert "\n" not in caught.value.headline and "getting compute gpu-cluster-big" in caught.value.headline


def test_one_retry_layer_a_blip_is_absorbed_inside_the_sdk(azure_fake, azure_backend) -> None:
    azure_fake.fail_next.extend([(r"/computes/", 429, {"Retry-After": "0.01"}), (r"/computes/", 503, {"Retry-After": "0.01"})])
    before = len(azure_fake.calls)
    cluster = azure_backend.compute.cluster("gpu-cluster-big")
    assert cluster is not None and cluster.name == "gpu-cluster-big"
    assert len(azure_fake.calls) - before == 3  # the SDK's RetryPolicy: two retries, honouring Retry-After


@pytest.mark.parametrize("status", [429, 503])
def test_a_persistent_throttle_costs_three_requests_then_a_transient_error(azure_fake, azure_backend, status) -> None:
    """Measured against the fake: one retry layer, so a persistent 429 is 1 + 2 requests, never attempts x retries."""
    azure_fake.fail_next.extend([(r"/computes/", status, {"Retry-After": "0.01"})] * 20)
    ws = azure_backend.clients.workspace
    before = len(azure_fake.calls)
    with pytest.raises(TransientBackendError):
        azerrors.call("getting compute", lambda: ws.compute.get("gpu-cluster-big"))
    assert len(azure_fake.calls) - before == 3


def test_quota_and_secrets_in_messages() -> None:
    from azure.core.exceptions import HttpResponseError

    quota = azerrors.translate(HttpResponseError(message="QuotaExceeded: not enough quota for NCADSA100v4"), "creating deployment")
    assert isinstance(quota, BackendError) and "quota" in (quota.hint or "")
    leaky = azerrors.translate(HttpResponseError(message="bad header Authorization: Bearer abc.def.ghi and sig=SECRET123&x"), "x")
    assert "abc.def.ghi" not in str(leaky) and "SECRET123" not in str(leaky)


def test_validate_text_still_offline_for_azure_specs(azure_spec_text) -> None:
    assert validate_text(azure_spec_text("offline-run"), "runs/offline-run.yaml").ok


def test_a_label_resolves_to_the_newest_version_with_a_warning(azure_fake, azure_backend) -> None:
    azure_fake.add_model(seed.foundation_model(version="16"), version="16")
    base = spec_with()
    spec = base.model_copy(update={"model": base.model.model_copy(update={"version": None, "label": "latest"})})
    model = azure_backend.resolve_model(spec)
    assert model.version == "16" and model.uri.endswith("/versions/16")
    (finding,) = model.findings
    assert not finding.is_error and "not reproducible" in finding.message and 'version: "16"' in (finding.hint or "")


def test_submit_records_the_endpoint_name_the_plan_showed(azure_fake, azure_backend, tmp_path: Path) -> None:
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle
    from gitops.review.derive import derive
    from gitops.spec.policy import Policy

    text = (
        REFERENCE.read_text()
        .replace("  endpoint: ultrachat-completion\n", "")
        .replace("dataset: HuggingFaceH4/ultrachat_200k", "train_path: azureml:t:1\n  test_path: azureml:v:1\n  # was dataset")
    )
    validated = validate_text(text, "runs/phi4-ultrachat.yaml")
    assert validated.ok, validated.findings
    planned = derive(validated.require(), validated.params, validated.digest or "", Policy(), salt="acme/models").endpoint
    lifecycle = Lifecycle(LocalLedger(tmp_path / "ledger"), lambda name: azure_backend, name_salt="acme/models")
    record = lifecycle.submit(validated)
    assert record.endpoint == planned and planned.startswith("phi4-ultrachat-")
    other = Lifecycle(LocalLedger(tmp_path / "other"), lambda name: azure_backend, name_salt="other/repo")
    # Their own version of the run (the same training sections would be the same job, which is ours: refused).
    theirs = validate_text(text.replace("learning_rate: 5.0e-6", "learning_rate: 6.0e-6"), "runs/phi4-ultrachat.yaml")
    assert "learning_rate: 5.0e-6" in text and theirs.ok
    assert other.submit(theirs).endpoint != planned  # two repos' runs of one name never share an endpoint


def test_the_sdks_own_validation_errors_read_as_one_clear_line(azure_backend) -> None:
    with pytest.raises(SpecError) as caught:
        azure_backend.begin_endpoint("ep", {"managed_by": "finetune-gitops"})  # names need 3-32 characters
    assert caught.value.headline == (
        "Azure refused the request while creating endpoint ep: The name for an endpoint must be "
        "at least 3 and at most 32 characters long (inclusive of both limits)."
    )


def test_cleanup_removes_a_stuck_zero_percent_deployment_on_azure(azure_fake, azure_backend, tmp_path: Path) -> None:
    from gitops.cleanup.run import run_cleanup
    from gitops.ledger.local import LocalLedger
    from gitops.spec.policy import Policy

    spec = spec_with()
    azure_backend.begin_endpoint("phi3-ep", {"managed_by": "finetune-gitops", "gitops_repo": "acme/models", "gitops_run": "phi3"})
    for name in ("blue", "green"):
        start_deployment(azure_backend, "phi3-ep", name, RegisteredModel("m", "1", "azureml:m:1"), spec)
    azure_backend.begin_traffic("phi3-ep", {"blue": 100})  # green was left at 0% by a rollout that died
    azure_backend.clients.remember_location("eastus")
    later = datetime.now(UTC) + timedelta(hours=3)
    verdicts = run_cleanup(azure_backend, LocalLedger(tmp_path / "ledger"), Policy(), now=later, repo="acme/models")
    assert [(v.action, v.deployments) for v in verdicts] == [("delete_deployments", ("green",))]
    assert azure_fake.deployments("phi3-ep") == ["blue"]
    assert "gitops_pending" not in azure_fake.endpoint("phi3-ep")["tags"]  # nothing is left pending
