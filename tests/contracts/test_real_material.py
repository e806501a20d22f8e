"""Contract tests over real material nobody here wrote (sources in tests/contracts/README.md).

Two kinds: the backend code runs against real bodies (azureml-assets model specs as the registry publishes them,
Event Grid examples), and the fake's answers are compared with real bodies' shape (keys, types, nesting), so the
fake cannot drift from the service again. Recorded exchanges are replayed by method and path, not api-version.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gitops.backends.azureml.models import read_facts
from gitops.events import EventFormatError, NotARunEvent, parse_each
from gitops.spec.validate import validate_file
from tests.conftest import REPO_ROOT
from tests.fakes import azureml_seed as seed
from tests.fakes.azureml_api import start_deployment

HERE = Path(__file__).resolve().parent
SEED_RUN = REPO_ROOT / "examples" / "phi3-mini-ultrachat.yaml"
REFERENCE_RUN = REPO_ROOT / "runs" / "phi4-ultrachat.yaml"


def load(rel: str) -> Any:
    return json.loads((HERE / rel).read_text())


def shape_gaps(real: Any, fake: Any, where: str = "$") -> list[str]:
    """Where ``fake`` lacks a key ``real`` has, or holds another kind of value (None in either matches anything)."""
    if real is None or fake is None:
        return []
    if isinstance(real, dict):
        if not isinstance(fake, dict):
            return [f"{where}: object expected, got {type(fake).__name__}"]
        return [
            gap for k, v in real.items() for gap in ([f"{where}.{k}: missing"] if k not in fake else shape_gaps(v, fake[k], f"{where}.{k}"))
        ]
    if isinstance(real, list):
        if not isinstance(fake, list):
            return [f"{where}: array expected"]
        return shape_gaps(real[0], fake[0], f"{where}[0]") if real and fake else []
    kinds = (bool,) if isinstance(real, bool) else (int, float) if isinstance(real, int | float) else (type(real),)
    return [] if isinstance(fake, kinds) else [f"{where}: {type(real).__name__} expected, got {type(fake).__name__}"]


# -- the registry's foundation models, as azureml-assets publishes them ---------------------------------
def test_the_seed_run_is_rejected_for_its_archived_retired_model_and_retired_sku(azure_backend) -> None:
    spec = validate_file(SEED_RUN).require()
    model = azure_backend.resolve_model(spec)
    findings = [*model.findings, *azure_backend.check_compute(spec, model)]
    errors = {(f.path, f.message) for f in findings if f.is_error}
    assert ("model.version", "Phi-3-mini-4k-instruct version 15 is archived in registry azureml") in errors
    assert ("model.name", "fine-tuning of Phi-3-mini-4k-instruct was retired on 2025-08-30") in errors
    assert ("model.name", "Phi-3-mini-4k-instruct can no longer be deployed: inference was retired on 2025-08-30") in errors
    assert ("deploy.instance_type", "Standard_NC6s_v3 was retired on 2025-09-30") in errors
    hints = " ".join(f.hint or "" for f in findings if f.path.startswith("model."))
    assert 'name: Phi-4, version: "8"' in hints  # each names the current successor in the same registry


def test_the_reference_run_passes_the_online_checks(azure_backend) -> None:
    spec = validate_file(REFERENCE_RUN).require()
    model = azure_backend.resolve_model(spec)
    findings = [*model.findings, *azure_backend.check_compute(spec, model)]
    assert [f for f in findings if f.is_error] == [] and model.defaults["deepspeed_stage"] == 3


@pytest.mark.parametrize(
    ("today", "severity", "needle"),
    [
        (date(2025, 6, 1), None, None),
        (date(2025, 7, 15), "warning", "fine-tuning of Phi-3-mini-4k-instruct is deprecated since 2025-06-30; it retires on 2025-08-30"),
        (date(2025, 9, 1), "error", "fine-tuning of Phi-3-mini-4k-instruct was retired on 2025-08-30"),
    ],
)
def test_dates_from_the_2025_tags_give_verdicts_for_an_injected_today(azure_fake, today, severity, needle) -> None:
    from tests.fakes.azureml_api import azure_backend_for

    azure_fake.add_model(seed.registry_model(seed.PHI3_2025_SPEC), "Phi-3-mini-4k-instruct", "15")
    backend = azure_backend_for(azure_fake)
    backend.today = lambda: today
    model = backend.resolve_model(validate_file(SEED_RUN).require())
    found = {(f.severity.value, f.message) for f in model.findings}
    if needle is None:
        assert found == set()
    else:
        assert (severity, needle) in found
    assert model.finetune_allow_list is not None and "Standard_NC24ads_A100_v4" in model.finetune_allow_list


def test_system_metadata_as_published_is_read_with_its_nested_json_strings() -> None:
    body = seed.registry_model(seed.PHI3_SPEC)
    system = body["properties"]["systemMetadata"]
    assert isinstance(system["deprecation"], str) and json.loads(system["deprecation"])["finetuneRetirementDate"]
    facts = read_facts(body)
    assert facts.archived and facts.finetune_retired == date(2025, 8, 30) and facts.inference_retired == date(2025, 8, 30)
    assert facts.inference_skus is not None and "Standard_NC6s_v3" in facts.inference_skus
    assert read_facts(seed.registry_model(seed.PHI4_SPEC)).archived is False


def test_the_sdk_still_drops_system_metadata_so_the_body_is_read_directly(azure_backend, azure_fake) -> None:
    """If azure-ai-ml starts carrying system metadata, this says so (and the private read can go)."""
    model = azure_backend.clients.registry("azureml").models.get("Phi-4", version="8")
    assert getattr(model, "_system_metadata", None) is None
    assert any("/registries/azureml/models/Phi-4/versions/8" in url for _, url in azure_fake.calls)


# -- recorded exchanges: the fake answers as the service did ---------------------------------------
def test_the_fakes_endpoint_create_answers_like_the_recording(azure_fake) -> None:
    import requests

    put, status = load("sdk-recordings/online_endpoint_create.json")["Entries"]
    path = urlsplit(put["RequestUri"]).path.replace(
        "/subscriptions/00000000-0000-0000-0000-000000000/resourceGroups/00000/"
        "providers/Microsoft.MachineLearningServices/workspaces/00000",
        azure_fake.ws_path,
    )
    azure_fake.provisioning_s["onlineendpoints"] = 90
    answer = requests.put(f"https://management.azure.com{path}?api-version=2023-04-01-preview", json=put["RequestBody"], timeout=5)
    assert answer.status_code == put["StatusCode"]
    assert "Retry-After" not in answer.headers and "Retry-After" not in put["ResponseHeaders"]
    assert "/mfeOperationsStatus/" in answer.headers["Azure-AsyncOperation"] and answer.headers["Location"]
    body = answer.json()
    assert shape_gaps(put["ResponseBody"], body) == [] and body["properties"]["provisioningState"] == "Creating"
    polled = requests.get(answer.headers["Azure-AsyncOperation"], timeout=5).json()
    assert shape_gaps(status["ResponseBody"], polled) == [] and polled["status"] == status["ResponseBody"]["status"]


def test_the_fakes_code_upload_slot_has_the_documented_shape(azure_fake) -> None:
    import requests

    url = f"https://management.azure.com{azure_fake.ws_path}/codes/c1/versions/1/startPendingUpload?api-version=2024-10-01"
    answer = requests.post(url, json={"pendingUploadType": "TemporaryBlobReference"}, timeout=5).json()
    assert shape_gaps(load("rest-api-specs/code_version_start_pending_upload.json")["body"], answer) == []


# -- Event Grid's published examples -----------------------------------------------------------------
def test_published_run_events_parse_in_both_schemas() -> None:
    (completed,) = parse_each(load("eventgrid/run_completed.cloud-events.json")["body"])
    assert not isinstance(completed, EventFormatError) and completed.outcome == "completed"
    assert completed.topic.endswith("/workspaces/{workspace-name}") and completed.run_type is None
    (failed,) = parse_each(load("eventgrid/run_status_changed.event-grid.json")["body"])
    assert not isinstance(failed, EventFormatError) and failed.outcome == "failed"  # runStatus is lower-case there


def test_a_foreign_event_in_an_array_is_ignored_in_words_and_the_others_handled(tmp_path, monkeypatch, cli) -> None:
    registered = load("eventgrid/model_registered.event-grid.json")["body"]
    completed = load("eventgrid/run_completed.cloud-events.json")["body"]
    first, second = parse_each([registered, completed])
    assert isinstance(first, NotARunEvent) and "ModelRegistered event is not about a job run" in str(first)
    assert not isinstance(second, EventFormatError)
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    path = tmp_path / "events.json"
    path.write_text(json.dumps([registered, completed]))
    for args in (("event", str(path)), ("event", str(path), "--dry-run")):
        result = cli(*args)
        lines = result.out.strip().splitlines()
        assert result.exit_code == 0 and len(lines) == 2 and "Traceback" not in result.err, result
        assert "ModelRegistered event is not about a job run" in lines[0] and "not a run of this repository" in lines[1]


def test_online_findings_are_placed_on_the_spec_lines_like_the_offline_ones(azure_backend) -> None:
    from gitops.review.check import online_findings

    text = SEED_RUN.read_text()
    findings = online_findings(validate_file(SEED_RUN).valid(), azure_backend)
    retired = next(f for f in findings if f.path == "deploy.instance_type")
    assert retired.line == text.splitlines().index("  instance_type: Standard_NC6s_v3") + 1
    assert retired.format().startswith(f"{SEED_RUN}:{retired.line}: deploy.instance_type: Standard_NC6s_v3 was retired")


def test_the_fakes_metrics_batch_has_the_documented_shape(azure_fake, azure_backend) -> None:
    import requests

    azure_backend.clients.remember_location("eastus")
    rid = azure_backend.metrics.resource_id("ep-1")
    url = (
        f"https://eastus.metrics.monitor.azure.com/subscriptions/{azure_fake.subscription}/metrics:getBatch?"
        "starttime=2026-11-24T00:00:00Z&endtime=2026-11-25T00:00:00Z&interval=PT1H&metricnamespace=x&metricnames=RequestsPerMinute"
    )
    azure_fake.add_requests("ep-1", datetime(2026, 11, 24, 1, tzinfo=UTC), 3)
    answer = requests.post(url, json={"resourceids": [rid]}, timeout=5).json()
    real = load("rest-api-specs/metrics_get_batch.json")["body"]
    real["values"][0]["value"][0]["timeseries"][0]["data"] = [{"timeStamp": "2023-02-01T20:00:00Z"}]  # aggregations differ
    real["values"][0]["value"][0]["timeseries"][0]["metadatavalues"] = []  # no dimension filter here
    assert shape_gaps(real, answer) == []


def test_a_metric_with_its_own_error_code_is_unknown_usage_never_idle(azure_fake, azure_backend) -> None:
    azure_backend.clients.remember_location("eastus")
    azure_fake.add_requests("busy-ep", datetime.now(UTC) - timedelta(minutes=5), 4)
    azure_fake.metric_errors["broken-ep"] = "InternalServerError"  # the call succeeds; this metric does not
    usage = azure_backend.usage(["busy-ep", "quiet-ep", "broken-ep"], timedelta(hours=1))
    assert usage["busy-ep"].known and usage["busy-ep"].requests == 4
    assert usage["quiet-ep"].known and usage["quiet-ep"].requests == 0
    assert not usage["broken-ep"].known and usage["broken-ep"].requests is None


def test_a_registered_model_version_is_shaped_like_the_recorded_one(azure_fake, azure_backend) -> None:
    (put,) = load("sdk-recordings/model_version_create.json")["Entries"]
    model = azure_backend.register_model("job-1", "phi4-chat", {"gitops_run": "r"})
    stored = azure_fake.get_resource(f"{azure_fake.ws_path}/models/phi4-chat/versions/{model.version}")
    assert shape_gaps(put["ResponseBody"], stored) == []
    assert stored["properties"]["isArchived"] is False and stored["properties"]["jobName"] is None


def test_the_fakes_vm_sizes_have_the_documented_shape(azure_fake) -> None:
    import requests

    url = (
        f"https://management.azure.com/subscriptions/{azure_fake.subscription}/providers/Microsoft.MachineLearningServices/"
        f"locations/{azure_fake.location}/vmSizes?api-version=2024-10-01"
    )
    answer = requests.get(url, timeout=5).json()
    assert shape_gaps(load("rest-api-specs/vm_sizes_list.json")["body"], answer) == []
    assert "standard_nc6s_v3" not in {s["name"].lower() for s in answer["value"]}  # retired: no longer offered


def test_the_fakes_cluster_is_shaped_like_the_recorded_one(azure_fake) -> None:
    (put,) = load("sdk-recordings/aml_compute_create.json")["Entries"]
    cluster = azure_fake.get_resource(f"{azure_fake.ws_path}/computes/gpu-cluster-big")
    assert shape_gaps(put["ResponseBody"], cluster) == []
    assert cluster["properties"]["properties"]["vmSize"].isupper() and put["ResponseBody"]["properties"]["properties"]["vmSize"].isupper()


def test_the_fakes_deployment_is_shaped_like_the_recorded_one(azure_fake, azure_backend) -> None:
    from gitops.backends.base import Provisioning, RegisteredModel

    (put,) = load("sdk-recordings/online_deployment_create.json")["Entries"]
    azure_fake.provisioning_s["deployments"] = 600
    azure_backend.begin_endpoint("shape-ep", {"managed_by": "finetune-gitops"})
    info = start_deployment(
        azure_backend, "shape-ep", "blue", RegisteredModel("m", "1", "azureml:m:1"), validate_file(REFERENCE_RUN).require()
    )
    stored = azure_fake.get_resource(f"{azure_fake.ws_path}/onlineEndpoints/shape-ep/deployments/blue")
    real = json.loads(json.dumps(put["ResponseBody"]))
    for key in ("codeConfiguration", "environmentId"):  # the recorded one ran a scoring script; ours is a no-code MLflow model
        del real["properties"][key]
    assert shape_gaps(real, stored) == []
    assert stored["properties"]["provisioningState"] == put["ResponseBody"]["properties"]["provisioningState"] == "Updating"
    assert info.state is Provisioning.CREATING and azure_backend.get_deployment("shape-ep", "blue").state is Provisioning.UPDATING


# -- quota: Usage/list, as the published example answers it ------------------------------------------
def test_the_fake_answers_quota_in_the_shape_of_the_published_example(azure_fake) -> None:
    from tests.fakes.azureml_seed import usages

    real = load("rest-api-specs/usages_list.json")["body"]
    fake = usages(azure_fake.subscription, seed.QUOTA, seed.REGIONAL_VCPUS)
    assert shape_gaps(real["value"][2], fake["value"][2]) == []  # a vmFamily line
    real_names = {line["name"]["value"] for line in real["value"]}
    assert "Total Cluster Dedicated Regional vCPUs" in real_names and "Standard DSv2 Family Cluster Dedicated vCPUs" in real_names
    assert {line["name"]["value"] for line in fake["value"]} >= {
        "Total Cluster Dedicated Regional vCPUs",
        "Standard DSv2 Family Cluster Dedicated vCPUs",
    }


def test_quota_is_read_from_the_real_example_subscription_lines_only(azure_fake, azure_backend) -> None:
    azure_fake.usages_body = load("rest-api-specs/usages_list.json")["body"]
    quota = azure_backend.compute.quota()
    # The NC line of the subscription (12 of 24), not the workspace's repetition of it (6 of 24).
    assert (quota["nc"].used, quota["nc"].limit) == (12, 24) and quota["ncv3"].limit == 0
    regional = quota["total cluster dedicated regional vcpus"]
    assert (regional.used, regional.limit) == (14, 24)
    # Standard_DS3_v2: 4 vCPUs of the DSv2 family (2 of 24 in use); the region has 10 of 24 free.
    (fits,) = azure_backend.compute.quota_findings("compute.nodes", "Standard_DS3_v2", 2, "training")
    assert fits.severity.value == "note" and "8 vCPUs" in fits.message and "10 of 24 free in 'Total Cluster" in fits.message
    (busy,) = azure_backend.compute.quota_findings("compute.nodes", "Standard_DS3_v2", 3, "training")
    assert not busy.is_error and "14 of the 24 of 'Total Cluster Dedicated Regional vCPUs' are in use" in busy.message
    (over,) = azure_backend.compute.quota_findings("compute.nodes", "Standard_DS3_v2", 7, "training")
    assert over.is_error and "needs 28 vCPUs" in over.message and "over the 24 of 'Standard DSv2 Family" in over.message


# -- prices: the Azure Retail Prices API, as documented ------------------------------------------------
def test_the_price_is_the_pay_as_you_go_linux_row_of_a_documented_answer() -> None:
    from gitops.backends.azureml.retail_prices import parse_page, pick_price

    material = load("retail-prices/vm_prices_nc24ads_eastus.json")
    page = parse_page(json.dumps(material["body"]).encode())  # the documented answer passes the schema whole
    assert len(page.Items) == len(material["body"]["Items"]) and page.NextPageLink is None
    price = pick_price(page.Items, "eastus", "standard_nc24ads_a100_v4", "2026-11-25")
    assert price is not None and price.usd_per_hour == 3.673 and price.sku == "Standard_NC24ads_A100_v4"
    assert len(material["body"]["Items"]) == 5  # Windows, Spot, Low Priority and Dev/Test rows are passed over


def test_the_deployment_traffic_query_names_the_documented_metrics_and_dimension() -> None:
    """What the rollout's hold reads is what Microsoft documents for onlineEndpoints/deployments."""
    from gitops.backends.azureml import usage

    doc = (HERE / "azure-docs" / "onlineendpoints_deployments_metrics.md").read_text()
    assert f"Resource type: {usage.DEPLOYMENT_NAMESPACE}" in doc
    rows = {line.split("`")[1]: line for line in doc.splitlines() if line.startswith("|**")}
    assert "Average" in rows[usage.METRIC] and f"`{usage.RESPONSE_CODE}`" in rows[usage.METRIC]
    assert "Average" in rows[usage.LATENCY_P95] and "Milliseconds" in rows[usage.LATENCY_P95]


def test_the_fakes_deployment_metrics_have_the_documented_batch_shape(azure_fake, azure_backend) -> None:
    import requests

    azure_backend.clients.remember_location("eastus")
    rid = f"{azure_backend.metrics.resource_id('ep-1')}/deployments/blue"
    azure_fake.clock = lambda: datetime(2026, 11, 24, 1, 2, 30, tzinfo=UTC).timestamp()
    azure_fake.record_request("ep-1", "blue", 200)
    url = (
        f"https://eastus.metrics.monitor.azure.com/subscriptions/{azure_fake.subscription}/metrics:getBatch?"
        "starttime=2026-11-24T00:00:00Z&endtime=2026-11-25T00:00:00Z&interval=PT1M"
        "&metricnamespace=Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
        "&metricnames=RequestsPerMinute&filter=envoy_response_code eq '*'"
    )
    answer = requests.post(url, json={"resourceids": [rid]}, timeout=5).json()
    real = load("rest-api-specs/metrics_get_batch.json")["body"]
    real["values"][0]["value"][0]["timeseries"][0]["data"] = [{"timeStamp": "2023-02-01T20:00:00Z", "average": 1.0}]
    assert shape_gaps(real, answer) == []
    (series,) = answer["values"][0]["value"][0]["timeseries"]
    assert series["metadatavalues"][0]["name"]["value"] == "envoy_response_code" and series["metadatavalues"][0]["value"] == "200"


def test_a_deployment_window_counts_5xx_and_429_as_failures_and_reads_the_worst_minutes_p95(azure_fake, azure_backend) -> None:
    """The 400 is the caller's fault: no evidence about the deployment, so it is not among the window's requests."""
    azure_backend.clients.remember_location("eastus")
    t0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    for minute, status, latency in ((0, 200, 150.0), (0, 200, 150.0), (1, 503, 900.0), (1, 429, 900.0), (1, 400, 900.0)):
        azure_fake.clock = lambda m=minute: (t0 + timedelta(minutes=m)).timestamp()
        azure_fake.score_latency_ms = latency
        azure_fake.record_request("ep-1", "green", status)
    window = azure_backend.traffic_since("ep-1", "green", {"at": t0.timestamp()}, (t0 + timedelta(minutes=5)).timestamp())
    assert window.known and (window.requests, window.errors, window.p95_latency_ms) == (4, 2, 900.0)
    azure_fake.metric_errors["ep-1"] = "InsufficientPermissions"
    assert not azure_backend.traffic_since("ep-1", "green", {"at": t0.timestamp()}, (t0 + timedelta(minutes=5)).timestamp()).known


def test_archiving_and_restoring_a_model_version_reads_as_the_service_records_it(azure_fake, azure_backend) -> None:
    """The service lists versions ActiveOnly: an archived one drops out of the list and is still read by its GET,
    with ``isArchived``; restoring is a PUT of the same body with it false. The fake answers the same shapes."""
    import requests

    recording = load("sdk-recordings/model_archive_restore.json")["Entries"]
    archived_get, listed_while_archived, restore_put, listed_after = recording
    assert archived_get["ResponseBody"]["properties"]["isArchived"] is True
    assert [v["name"] for v in listed_while_archived["ResponseBody"]["value"]] == ["2"]
    assert [v["name"] for v in listed_after["ResponseBody"]["value"]] == ["2", "1"]
    base = f"https://management.azure.com{azure_fake.ws_path}/models/recorded/versions"
    for version, created in (("1", "2022-09-16T03:00:31Z"), ("2", "2022-09-16T03:00:34Z")):
        body = {
            **archived_get["ResponseBody"],
            "name": version,
            "properties": {**archived_get["ResponseBody"]["properties"], "isArchived": version == "1"},
        }
        system = {**archived_get["ResponseBody"]["systemData"], "createdAt": created}
        azure_fake.put_resource(f"{azure_fake.ws_path}/models/recorded/versions/{version}", body | {"systemData": system})
    fake_get = requests.get(f"{base}/1?api-version=2024-10-01", timeout=5).json()
    assert shape_gaps(archived_get["ResponseBody"], fake_get) == [] and fake_get["properties"]["isArchived"] is True
    active = requests.get(f"{base}?api-version=2024-10-01&listViewType=ActiveOnly", timeout=5).json()["value"]
    assert [v["name"] for v in active] == ["2"]  # the archived version drops out, as recorded
    assert [v["name"] for v in requests.get(f"{base}?api-version=2024-10-01", timeout=5).json()["value"]] == ["2"]  # the default view
    # The code reads archiving from the recorded body the way it reads a registry model's.
    assert read_facts(archived_get["ResponseBody"]).archived and not read_facts(restore_put["ResponseBody"]).archived


def test_the_pipeline_job_names_registry_models_and_components_as_the_recorded_job_does(
    azure_fake,
    azure_backend,
    tmp_path,
) -> None:
    import re

    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle
    from gitops.spec.validate import validate_text

    (put,) = load("sdk-recordings/pipeline_job_registry_inputs.json")["Entries"]
    recorded = put["RequestBody"]["properties"]["jobs"]
    recorded_model = recorded["score_job_duplicate"]["inputs"]["model_input"]
    recorded_component = recorded["score_job_with_registry_component"]
    reference = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text()
    life = Lifecycle(LocalLedger(tmp_path), lambda _: azure_backend, topic=azure_backend.topic)
    record = life.submit(validate_text(reference, "runs/phi4-ultrachat.yaml"))
    ours = azure_fake.job(record.job_name)["properties"]["jobs"]["finetune"]
    model = ours["inputs"]["mlflow_model_path"]
    assert set(model) == set(recorded_model) and model["job_input_type"] == recorded_model["job_input_type"]
    registry_uri = r"^azureml://registries/[\w.-]+/{kind}/[\w.-]+/versions/[\w.-]+$"
    assert re.match(registry_uri.format(kind="models"), recorded_model["uri"])
    assert re.match(registry_uri.format(kind="models"), model["uri"])
    assert re.match(registry_uri.format(kind="components"), recorded_component["componentId"])
    assert re.match(registry_uri.format(kind="components"), ours["componentId"])
    assert ours["_source"] == recorded_component["_source"] == "REMOTE.REGISTRY"


def test_a_registry_that_does_not_serve_the_workspaces_region_is_one_clear_line(
    azure_fake,
    azure_backend,
    tmp_path,
) -> None:
    from gitops.errors import SpecError
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle
    from gitops.spec.validate import validate_text

    (put,) = load("sdk-recordings/pipeline_job_registry_inputs.json")["Entries"]
    azure_fake.fail_next.append((r"PUT .*/jobs/", put["StatusCode"], {}, put["ResponseBody"]["error"]))
    life = Lifecycle(LocalLedger(tmp_path), lambda _: azure_backend, topic=azure_backend.topic)
    with pytest.raises(SpecError) as raised:
        life.submit(validate_text((REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text(), "runs/phi4-ultrachat.yaml"))
    assert "registry sdk-test does not serve region eastus2, the workspace's" in raised.value.headline
    assert "replicated" in (raised.value.hint or "") and "\n" not in raised.value.headline


def test_the_fakes_endpoint_read_score_and_delete_answer_as_recorded(azure_fake, azure_backend) -> None:
    """An endpoint read (traffic, scoring URI), a scoring answer naming the deployment that answered, and the
    endpoint DELETE (202, ``Azure-AsyncOperation`` and ``Location``, a body of ``null``) with its operation's poll."""
    import requests

    read, score, delete, poll = load("sdk-recordings/online_endpoint_score_delete.json")["Entries"]
    azure_backend.begin_endpoint("ep-rec", {"managed_by": "finetune-gitops"})
    url = f"https://management.azure.com{azure_fake.ws_path}/onlineEndpoints/ep-rec?api-version=2024-10-01"
    ours = requests.get(url, timeout=5).json()
    recorded = read["ResponseBody"]
    recorded["properties"]["traffic"] = {}  # keyed by deployment names: data, not shape
    assert shape_gaps(recorded, ours) == []
    assert ours["properties"]["scoringUri"].endswith(".inference.ml.azure.com/score")

    key = requests.post(url.replace("?", "/listKeys?"), timeout=5).json()["primaryKey"]
    azure_fake.endpoint("ep-rec")["properties"]["traffic"] = {"blue": 100}
    azure_fake.put_resource(f"{azure_fake.ws_path}/onlineEndpoints/ep-rec/deployments/blue", {"name": "blue", "properties": {}})
    answered = requests.post(
        ours["properties"]["scoringUri"], json={"input_data": {"input_string": []}}, timeout=5, headers={"Authorization": f"Bearer {key}"}
    )
    assert answered.status_code == score["StatusCode"] and answered.headers.get("azureml-model-deployment") == "blue"
    assert "azureml-model-deployment" in score["ResponseHeaders"]

    gone = requests.delete(url, timeout=5)
    assert gone.status_code == delete["StatusCode"] and gone.text == delete["ResponseBody"]
    assert {"Azure-AsyncOperation", "Location", "x-ms-async-operation-timeout"} <= set(gone.headers)
    assert "/mfeOperationsStatus/" in gone.headers["Azure-AsyncOperation"] and "/mfeOperationResults/" in gone.headers["Location"]
    ours_poll = requests.get(gone.headers["Azure-AsyncOperation"], timeout=5).json()
    assert shape_gaps(poll["ResponseBody"], ours_poll) == []


# What changed between the published 0.0.57 and 0.0.82 (the version the reference documents and runs pin).
CHANGED_SINCE_0_0_57 = {"optim": "adamw_hf left the choices; adamw_torch is the default", "evaluation_strategy": "'disable' was added"}


def test_the_component_interface_agrees_with_the_published_pipeline_spec() -> None:
    """Every input of azureml-assets' chat_completion_pipeline (0.0.57) is in the committed 0.0.82 interface with the
    same type, and the same choices and default unless named as changed since; the outputs are the same; and the step
    that logs the evaluation's metrics is the one the metrics reader looks for."""
    import yaml

    from gitops.report.metrics import EVALUATION_STEPS

    real = yaml.safe_load((HERE / "azureml-assets" / "chat_completion_pipeline.0.0.57.interface.yaml").read_text())
    ours = yaml.safe_load((REPO_ROOT / "pipelines" / "components" / "chat_completion_pipeline-0.0.82.yaml").read_text())
    assert [name for name in real["inputs"] if name not in ours["inputs"]] == []
    for name, decl in real["inputs"].items():
        mine = ours["inputs"][name]
        assert mine["type"] == decl["type"], name
        if name in CHANGED_SINCE_0_0_57:
            continue
        assert [str(x) for x in mine.get("enum") or []] == [str(x) for x in decl.get("enum") or []], name
        assert str(mine.get("default")) == str(decl.get("default")), name
    assert {k: v["type"] for k, v in ours["outputs"].items()} == {k: v["type"] for k, v in real["outputs"].items()}
    assert set(EVALUATION_STEPS) <= set(real["jobs"]) and "model_prediction" in real["jobs"]


def test_the_fakes_cluster_read_has_the_recorded_shape_and_the_code_reads_it(azure_fake, azure_backend) -> None:
    import requests

    (read,) = load("sdk-recordings/aml_compute_get.json")["Entries"]
    url = f"https://management.azure.com{azure_fake.ws_path}/computes/gpu-cluster-big?api-version=2024-10-01"
    assert shape_gaps(read["ResponseBody"], requests.get(url, timeout=5).json()) == []
    azure_fake.put_resource(f"{azure_fake.ws_path}/computes/cpu-cluster", read["ResponseBody"])  # the recorded body itself
    cluster = azure_backend.clients.workspace.compute.get("cpu-cluster")
    assert cluster.size.lower() == "standard_ds2_v2" and cluster.max_instances == 4  # upper-cased by the service


def test_sharing_a_model_into_a_registry_answers_as_the_recorded_share(azure_fake, azure_backend) -> None:
    """#27: a workspace model shared into a registry (sdk-recordings/model_share_to_registry.json): the import the
    SDK sends, answered 202 with an operation that reads 202 until the copy is done and 204 after; the registry's
    version is not there before (404) and carries the workspace model's tags after. The controller starts the import
    and does not wait; a later look finds the version."""
    import re

    import requests

    from gitops.errors import NotFoundError
    from gitops.spec import naming
    from gitops.spec.policy import RegistryRef

    discovery, missing, post, running, finished, shared = load("sdk-recordings/model_share_to_registry.json")["Entries"]
    now = [1_000.0]
    azure_fake.clock = lambda: now[0]
    azure_fake.provisioning_s["import"] = 300.0
    azure_fake.add_registry("acme-models")
    registry = RegistryRef(name="acme-models")
    model = azure_backend.register_model("job-1", "phi4-chat", {naming.TAG_RUN: "phi4", naming.TAG_COMMIT: "c0ffee"})
    model = model.__class__(model.name, model.version, model.uri, {**model.tags, naming.TAG_CONTENT: "sha256:" + "a" * 64})
    azure_fake.resources[f"{azure_fake.ws_path}/models/phi4-chat/versions/{model.version}".lower()]["properties"]["tags"] = model.tags
    with pytest.raises(NotFoundError):
        azure_backend.registry_model(registry, "phi4-chat-1a2b3c", model.version)
    assert azure_backend.share_model(model, registry, "phi4-chat-1a2b3c", {}) is None  # started, not awaited
    (body,) = azure_fake.import_requests
    assert set(body["properties"]) == set(post["RequestBody"]["properties"])
    assert re.fullmatch(
        rf"azureml://locations/eastus/workspaces/{azure_fake.workspace_id}/models/phi4-chat/versions/{model.version}",
        body["properties"]["sourceAssetId"],
    )
    assert (body["properties"]["destinationName"], body["properties"]["destinationVersion"]) == ("phi4-chat-1a2b3c", model.version)
    operation = next(iter(azure_fake.imports))
    poll = f"https://eastus.api.azureml.ms/assetstore/v1.0/operations/{operation}"
    assert requests.get(poll, timeout=5).status_code == running["StatusCode"]
    with pytest.raises(NotFoundError):  # still copying: not there yet (the promotion waits, sharing)
        azure_backend.registry_model(registry, "phi4-chat-1a2b3c", model.version)
    now[0] += 301
    assert requests.get(poll, timeout=5).status_code == finished["StatusCode"]
    there = azure_backend.registry_model(registry, "phi4-chat-1a2b3c", model.version)
    assert there.uri == f"azureml://registries/acme-models/models/phi4-chat-1a2b3c/versions/{model.version}"
    assert there.tags == model.tags  # carried over, as the recorded import carries foo/abc
    stored = azure_fake.get_resource(f"{azure_fake.registry_path_of('acme-models')}/models/phi4-chat-1a2b3c/versions/{model.version}")
    recorded = shared["ResponseBody"]
    assert shape_gaps({**recorded, "properties": {**recorded["properties"], "tags": {}, "flavors": {}}}, stored) == []
    assert azure_backend.share_model(model, registry, "phi4-chat-1a2b3c", {}) == there
    assert len(azure_fake.import_requests) == 1
    assert discovery["ResponseBody"]["registryName"] == "testFeed" and missing["StatusCode"] == 404
    # ... and the published example of a registry model version's GET (rest-api-specs Registry/ModelVersion/get).
    example = load("rest-api-specs/registry_model_version_get.json")["responses"]["200"]["body"]
    wildcard = {**example, "properties": {**example["properties"], "tags": {}, "properties": {}, "flavors": {}}}
    assert shape_gaps(wildcard, stored) == []
    foundation = azure_fake.get_resource(f"{azure_fake.registry_path}/models/Phi-4/versions/8")
    assert shape_gaps(wildcard, foundation) == []
