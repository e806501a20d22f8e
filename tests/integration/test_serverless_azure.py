"""Serverless on Azure ML, through the real SDK against the fake REST API on a virtual clock: a merged serverless run
prepares its dataset slice with a command job, then runs the standalone fine-tuning job (billed per token, no
compute), which registers its model itself; the register step reads that version and tags it; the version goes live
on a serverless endpoint of its own, smoke-tested on the serverless contract. The fine-tuning job's completion is
found by its own event and, since no source says it emits one, by the reconcile timer too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitops.spec import naming
from gitops.spec.validate import SpecValidation, validate_text
from tests.conftest import REPO_ROOT
from tests.fakes import azureml_seed as seed
from tests.virtual_azure import World, virtual_world

RUN = "phi4-mini-serverless"
EXAMPLE = (REPO_ROOT / "runs" / f"{RUN}.yaml").read_text()
# The same run on the workspace's data assets: no data to prepare first.
ON_ASSETS = EXAMPLE.replace(
    "  dataset: HuggingFaceH4/ultrachat_200k\n  train_split: train_sft\n  test_split: test_sft\n  sample_percent: 5\n",
    "  train_path: azureml:ultrachat-train:1\n  test_path: azureml:ultrachat-test:1\n",
)


def spec(text: str = EXAMPLE, **replace: str) -> SpecValidation:
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    result = validate_text(text, f"runs/{RUN}.yaml")
    assert result.ok, result.findings
    return result


@pytest.fixture
def world(tmp_path: Path):
    with virtual_world(tmp_path) as w:
        # Phi-4-mini-instruct as the registry serves it (the fake's copy of the Phi-4 spec's metadata, renamed).
        w.fake.add_model(seed.registry_model(seed.PHI4_SPEC), "Phi-4-mini-instruct", "3")
        w.fake.provisioning_s["serverlessendpoints"] = 120  # creating a serverless endpoint: minutes, not seconds
        yield w


def record(w: World) -> Any:
    got = w.lifecycle.ledger.get(RUN)
    assert got is not None
    return got[0]


def test_a_dataset_run_prepares_its_data_then_fine_tunes_serverless_and_goes_live_on_its_own_endpoint(world: World) -> None:
    w = world
    submitted = w.lifecycle.submit(spec(), commit="c0ffee", pr="7")
    job = submitted.job_name
    prepare = w.fake.job(f"{job}-data")  # the slice is made in Azure, by a command job: never in the Function
    assert prepare["properties"]["jobType"] == "Command" and prepare["properties"]["tags"][naming.TAG_PREPARES] == job
    assert w.fake.get_resource(f"{w.fake.ws_path}/jobs/{job}") is None  # the fine-tuning job waits for its data
    from gitops.cli.describe_cmds import describe

    assert f"data     {job}-data, the job that prepares its dataset: preparing" in describe(w.lifecycle, record(w))
    w.fake.set_job_status(f"{job}-data", "Completed")
    assert "the fine-tuning job is submitted next" in describe(w.lifecycle, record(w))  # gitops status NAME shows both
    decisions = w.lifecycle.on_job_event(w.fake.job_event(f"{job}-data"))  # the command job's own event
    assert [d.action for d in decisions] == ["scheduled"]
    w.deliver()
    fine_tuning = w.fake.job(job)["properties"]
    assert fine_tuning["jobType"] == "FineTuning" and "computeId" not in fine_tuning and not fine_tuning.get("resources")
    details = fine_tuning["fineTuningDetails"]
    assert details["validationData"]["uri"].endswith("/test_sft.jsonl") and details["hyperParameters"]["per_device_train_batch_size"] == "4"
    assert fine_tuning["outputs"]["registered_model"]["assetName"] == "Phi-4-mini-ultrachat"
    assert record(w).status == "running"
    # The model name already has a version: the job's is the next one, read from the service, never assumed to be 1.
    w.fake.put_resource(f"{w.fake.ws_path}/models/Phi-4-mini-ultrachat/versions/1", {"properties": {"modelType": "mlflow_model"}})
    w.fake.set_job_status(job, "Completed")
    assert [d.action for d in w.lifecycle.on_job_event(w.fake.job_event(job))] == ["scheduled"]  # the job's own event
    w.deliver()
    live = record(w)
    assert live.status == "live" and live.serving_kind == "serverless" and live.model_version == "2", live.history[-3:]
    registered = w.fake.get_resource(f"{w.fake.ws_path}/models/Phi-4-mini-ultrachat/versions/2")
    assert registered is not None and registered["properties"]["tags"][naming.TAG_JOB] == job
    assert registered["properties"]["tags"][naming.TAG_COMMIT] == "c0ffee"  # the lineage tags, added to the job's model
    assert len(w.fake.model_versions("Phi-4-mini-ultrachat")) == 2  # registered by the job, never again by us
    endpoint = w.fake.get_resource(f"{w.fake.ws_path}/serverlessEndpoints/{live.deployment}")
    assert endpoint is not None and endpoint["sku"]["name"] == "Consumption"
    model_id = endpoint["properties"]["modelSettings"]["modelId"]
    assert "/workspaces/" in model_id and model_id.endswith("/models/Phi-4-mini-ultrachat/versions/2")  # no registry id
    assert live.scoring_uri == f"https://{live.deployment}.eastus.models.ai.azure.com"
    (smoke,) = [p for e, _, p in w.fake.scored if e == live.deployment][:1]
    assert smoke["messages"] and "max_tokens" in smoke  # the serverless contract's body
    assert live.smoke is not None and live.smoke.ok and live.smoke.reply_excerpt == f"Hello from {live.deployment}."
    assert w.fake.get_resource(f"{w.fake.ws_path}/onlineEndpoints/phi4-mini-chat") is None  # no VM serves it
    longest = max(seconds for _, _, seconds in w.invocations)
    assert longest <= 2.0  # no invocation waits on Azure (the virtual clock moves only between them)


def test_the_reconcile_timer_finds_a_fine_tuning_job_done_when_no_event_comes(world: World) -> None:
    w = world
    job = w.lifecycle.submit(spec(ON_ASSETS)).job_name
    assert w.fake.job(job)["properties"]["jobType"] == "FineTuning"  # data assets: nothing to prepare first
    w.fake.set_job_status(job, "Completed")  # and no event is delivered
    w.lifecycle.reconcile()
    w.deliver()
    assert record(w).status == "live" and record(w).serving_kind == "serverless"


def test_a_failed_fine_tuning_job_fails_the_run_and_deploys_nothing(world: World) -> None:
    w = world
    job = w.lifecycle.submit(spec(ON_ASSETS)).job_name
    w.fake.set_job_status(job, "Failed")
    w.lifecycle.on_job_event(w.fake.job_event(job, "failed"))
    w.deliver()
    assert record(w).status == "failed" and w.fake.children(f"{w.fake.ws_path}/serverlessEndpoints") == []


def test_an_endpoint_that_stays_creating_past_its_deadline_rolls_back_and_is_deleted(world: World) -> None:
    w = world
    w.fake.provisioning_s["serverlessendpoints"] = 10 * 3600  # longer than the deployment phase's 45 minutes
    job = w.lifecycle.submit(spec(ON_ASSETS)).job_name
    w.fake.set_job_status(job, "Completed")
    w.lifecycle.on_job_event(w.fake.job_event(job))
    w.deliver()
    after = record(w)
    assert after.status == "rolled_back" and "did not finish within" in (after.error or "")
    (going,) = w.fake.children(f"{w.fake.ws_path}/serverlessEndpoints")  # the candidate's endpoint is being deleted
    assert going["properties"]["provisioningState"] == "Deleting"
    w.clock.advance(300)
    assert w.fake.children(f"{w.fake.ws_path}/serverlessEndpoints") == []


def test_a_serverless_endpoint_whose_creation_failed_rolls_back(world: World) -> None:
    w = world
    w.fake.serverless_state = "Failed"
    job = w.lifecycle.submit(spec(ON_ASSETS)).job_name
    w.fake.set_job_status(job, "Completed")
    w.lifecycle.on_job_event(w.fake.job_event(job))
    w.deliver()
    after = record(w)
    assert after.status == "rolled_back" and "creationfailed" in (after.error or "").lower()


def _live(w: World, text: str) -> Any:
    job = w.lifecycle.submit(spec(text)).job_name
    w.fake.set_job_status(job, "Completed")
    w.lifecycle.on_job_event(w.fake.job_event(job))
    w.deliver()
    return record(w)


def _answers(bad: set[str]) -> Any:
    """A sound model answers on topic; the endpoints in ``bad`` with noise (their model is worse)."""

    def chat(endpoint: str, body: dict[str, Any]) -> tuple[int, str]:
        if endpoint in bad:
            return 200, "zzz qqq xxx"
        question = str(body["messages"][-1]["content"])
        return 200, f"{question.rstrip('?')} is why it matters, because life on Earth depends on it."

    return chat


def test_a_worse_model_is_held_on_its_own_endpoint_while_the_serving_one_keeps_serving(world: World) -> None:
    w = world
    bad: set[str] = set()
    w.fake.chat_scorer = _answers(bad)
    gated = ON_ASSETS.replace("  keep_previous_for: 1d\n", "  keep_previous_for: 1d\n  gate: {conversations: 8}\n")
    first = _live(w, gated)
    assert first.status == "live" and first.gate and first.gate["ok"]
    worse = gated.replace("learning_rate: 2.0e-5", "learning_rate: 9.0e-5")
    candidate = naming.serverless_endpoint_name("phi4-mini-chat", "2", validate_text(worse, f"runs/{RUN}.yaml").digests.deployment)  # type: ignore[union-attr]
    bad.add(candidate)
    w.fake.mlflow.eval_loss = 3.6  # and its training went worse too
    job = w.lifecycle.submit(spec(worse)).job_name
    w.fake.set_job_status(job, "Completed")
    w.lifecycle.on_job_event(w.fake.job_event(job))
    for _ in range(400):  # the queue's messages, each when due, until the run is held (its hold would run out later)
        if record(w).status == "held":
            break
        due = w.queue.due(w.clock.now())
        if not due:
            w.clock.advance(max(0.0, (w.queue.next_at() or w.clock.now()) - w.clock.now()))
        for message in due:
            w.lifecycle.advance(message.run)
    held = record(w)
    assert held.status == "held" and held.deployment == first.deployment and held.serving_endpoint == first.deployment
    assert held.gate is not None and not held.gate["ok"] and w.fake.get_resource(f"{w.fake.ws_path}/serverlessEndpoints/{candidate}")
    assert w.lifecycle.rollback(RUN, "alice", "worse answers").status == "rolling_back"
    w.deliver()
    rejected = record(w)
    assert rejected.status == "rejected" and rejected.serving_endpoint == first.deployment
    w.clock.advance(300)  # the candidate's endpoint is deleted (the fake takes its minutes to)
    assert [e["name"] for e in w.fake.children(f"{w.fake.ws_path}/serverlessEndpoints")] == [first.deployment]


def test_a_rollback_within_keep_previous_for_returns_to_the_endpoint_kept(world: World) -> None:
    w = world
    first = _live(w, ON_ASSETS)
    second = _live(w, ON_ASSETS.replace("learning_rate: 2.0e-5", "learning_rate: 3.0e-5"))
    assert second.status == "live" and second.serving_endpoint != first.serving_endpoint
    assert second.previous_deployment == first.deployment and second.previous_kept_until is not None
    assert {e["name"] for e in w.fake.children(f"{w.fake.ws_path}/serverlessEndpoints")} == {first.deployment, second.deployment}
    w.lifecycle.rollback(RUN, "bob", "the old one answered better")
    w.deliver()
    back = record(w)
    assert back.status == "rolled_back" and back.serving_endpoint == first.deployment and back.scoring_uri == first.scoring_uri
    w.clock.advance(300)
    assert [e["name"] for e in w.fake.children(f"{w.fake.ws_path}/serverlessEndpoints")] == [first.deployment]


def test_a_version_deployed_again_while_its_last_endpoint_is_being_deleted_gets_a_name_of_its_own(world: World) -> None:
    """The name a version's endpoint takes is still held by its last endpoint, being deleted (a rollback, then the
    same model and settings deployed again): the rollout takes a name of its own rather than wait on the deletion."""
    w = world
    second = ON_ASSETS.replace("learning_rate: 2.0e-5", "learning_rate: 3.0e-5")
    name = naming.serverless_endpoint_name("phi4-mini-chat", "1", validate_text(second, f"runs/{RUN}.yaml").digests.deployment)  # type: ignore[union-attr]
    w.fake.put_resource(
        f"{w.fake.ws_path}/serverlessEndpoints/{name}",
        {
            "location": "eastus",
            "tags": {"managed_by": "finetune-gitops", "gitops_run": RUN, "gitops_repo": w.lifecycle.repo},
            "properties": {
                "modelSettings": {"modelId": "azureml://locations/eastus/workspaces/x/models/m/versions/1"},
                "provisioningState": "Deleting",
                "endpointState": "Deleting",
            },
        },
    )
    live = _live(w, second)
    assert live.status == "live" and live.serving_endpoint != name, live.history[-4:]
    assert live.serving_endpoint is not None and live.serving_endpoint.startswith(name[:40]) and len(live.serving_endpoint) <= 52
