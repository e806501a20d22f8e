"""The Event Grid function and the timers, through their registrations, on the Azure backend (fake REST)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from gitops.events import build_event
from gitops.spec.validate import validate_text
from tests.conftest import REFERENCE_ON_ASSETS, REPO_ROOT

SPEC = REFERENCE_ON_ASSETS.replace("expire_after: 7d", "expire_after: 1d")


def grid_event(body: dict) -> func.EventGridEvent | func.CloudEvent:
    """The event as the Functions worker hands it over: the body decoded by azure-functions' own converter."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    return EventGridEventInConverter.decode(meta.Datum(json.dumps(body), "json"), trigger_metadata={})


def cloud_event(body: dict) -> dict:
    """The same event in the CloudEvents v1.0 schema (tests/contracts/eventgrid/run_completed.cloud-events.json)."""
    return {
        "id": body["id"],
        "source": body["topic"],
        "subject": body["subject"],
        "type": body["eventType"],
        "time": body["eventTime"],
        "data": body["data"],
        "specversion": "1.0",
    }


def submitted(app_services, azure_fake, status: str = "Completed"):
    validated = validate_text(SPEC, "runs/phi4-ultrachat.yaml")
    assert validated.ok, validated.findings
    record = app_services.lifecycle.submit(validated, commit="c0ffee", pr="5")
    azure_fake.set_job_status(record.job_name, status)
    return record


def test_a_completed_job_event_deploys_once(app_services, azure_fake, function_app, drain) -> None:
    record = submitted(app_services, azure_fake)
    tags = azure_fake.job(record.job_name)["properties"]["tags"]
    event = grid_event(
        build_event(topic=azure_fake.ws_path, experiment="chat_completion_Phi-4", run_id=record.job_name, status="completed", tags=tags)
    )
    handler = function_app["on_job_event"].get_user_function()
    handler(event)
    handler(event)  # Event Grid delivers at least once
    assert app_services.lifecycle.ledger.get(record.run)[0].cursor.step == "check_job"  # recorded and scheduled, nothing more
    # The steps taken until the run is live (the fake provisions at once); the gate's online evaluation asks a few
    # held-out conversations per message, each next slice in a new message.
    done = drain()
    assert done[-1] == "live" and set(done[:-1]) <= {"continues"} and len(done) <= 8
    live = app_services.lifecycle.ledger.get("phi4-ultrachat")[0]
    assert live.status == "live" and live.endpoint is not None
    assert azure_fake.deployments(live.endpoint) == [live.deployment]
    assert azure_fake.endpoint(live.endpoint)["properties"]["traffic"] == {live.deployment: 100}
    assert len(azure_fake.model_versions("Phi-4-ultrachat-200k")) == 1


def test_a_cloud_events_subscription_is_read_through_the_real_converter(app_services, azure_fake, function_app, drain) -> None:
    """azure-functions turns any body with ``specversion`` into a ``func.CloudEvent`` (no ``topic``): an Event Grid
    subscription with the CloudEvents v1.0 schema once failed every delivery with AttributeError."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    from tests.contracts.test_real_material import load

    published = load("eventgrid/run_completed.cloud-events.json")["body"]
    assert isinstance(grid_event(published), func.CloudEvent)  # the converter decides by the body, not the annotation
    record = submitted(app_services, azure_fake)
    tags = azure_fake.job(record.job_name)["properties"]["tags"]
    body = cloud_event(
        build_event(topic=azure_fake.ws_path, experiment="chat_completion", run_id=record.job_name, status="completed", tags=tags)
    )
    assert set(body) == set(published)  # the published example's fields, no more
    event = EventGridEventInConverter.decode(meta.Datum(json.dumps(body), "json"), trigger_metadata={})
    assert isinstance(event, func.CloudEvent)
    function_app["on_job_event"].get_user_function()(event)
    assert app_services.lifecycle.ledger.get(record.run)[0].cursor.step == "check_job"
    assert drain()[-1] == "live"


def test_an_event_from_another_workspace_changes_nothing(app_services, azure_fake, function_app) -> None:
    record = submitted(app_services, azure_fake)
    event = grid_event(
        build_event(
            topic="/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/z",
            experiment="e",
            run_id=record.job_name,
            status="completed",
            tags={"gitops_run": record.run},
        )
    )
    function_app["on_job_event"].get_user_function()(event)
    assert app_services.lifecycle.ledger.get(record.run)[0].status == "submitted"


def test_reconcile_timer_finishes_a_run_whose_event_never_came(app_services, azure_fake, function_app, drain) -> None:
    record = submitted(app_services, azure_fake)
    function_app["reconcile"].get_user_function()(TimerRequest())
    assert drain()[-1] == "live"
    assert app_services.lifecycle.ledger.get(record.run)[0].status == "live"


def test_cleanup_timer_tears_down_an_expired_endpoint(app_services, azure_fake, function_app, drain) -> None:
    record = submitted(app_services, azure_fake)
    function_app["reconcile"].get_user_function()(TimerRequest())
    drain()
    endpoint = app_services.lifecycle.ledger.get(record.run)[0].endpoint
    stale = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")
    azure_fake.endpoint(endpoint)["tags"]["gitops_deployed_at"] = stale  # deployed two days ago; expire_after is 1d
    function_app["cleanup"].get_user_function()(TimerRequest())
    assert azure_fake.endpoint(endpoint) is None
    assert app_services.lifecycle.ledger.get(record.run)[0].status == "retired"


def test_a_failing_timer_logs_and_returns(app_services, azurite, caplog, function_app) -> None:
    from azure.storage.blob import ContainerClient

    from gitops.ledger.blob import BlobLedger

    app_services.lifecycle.ledger = BlobLedger.from_connection_string(azurite, "vanishing-ledger")
    ContainerClient.from_connection_string(azurite, "vanishing-ledger").delete_container()  # the store goes away
    caplog.set_level(logging.INFO)
    function_app["reconcile"].get_user_function()(TimerRequest())  # does not raise
    function_app["cleanup"].get_user_function()(TimerRequest())
    assert "reconcile failed" in caplog.text and "cleanup on azureml failed" in caplog.text


def test_get_run_serves_the_attached_report_as_markdown(app_services, azure_fake, call, token) -> None:
    from gitops.ledger.model import update
    from tests.conftest import run_report

    record = submitted(app_services, azure_fake)
    report = run_report(
        run=record.run,
        job_name=record.job_name,
        params={"learning_rate": "5e-06"},
        duration_s=3600.0,
        final_train_loss=1.25,
        smoke_reply="Red, yellow and blue.",
    )
    github = {"Authorization": f"Bearer {token()}"}
    no_report = call("get_run", method="GET", route_params={"name": record.run}, params={"format": "markdown"}, headers=github)
    assert no_report.status_code == 404 and "no report yet" in no_report.get_body().decode()
    update(app_services.lifecycle.ledger, record.run, lambda r: r.model_copy(update={"report": report.summary()}))
    anonymous = call("get_run", method="GET", route_params={"name": record.run}, params={"format": "markdown"})
    assert anonymous.status_code == 401
    response = call("get_run", method="GET", route_params={"name": record.run}, params={"format": "markdown"}, headers=github)
    text = response.get_body().decode()
    assert response.status_code == 200 and response.mimetype == "text/markdown"
    assert record.job_name in text and "1.25" in text and "Red, yellow and blue." in text


def test_an_unconfigured_app_lets_event_grid_retry(function_app, monkeypatch) -> None:
    import pytest

    from function_app.services import use_services
    from gitops.errors import ConfigurationError

    use_services(None)
    monkeypatch.delenv("GITOPS_REPO", raising=False)
    monkeypatch.delenv("GITOPS_OIDC_AUDIENCE", raising=False)
    event = grid_event(build_event(topic="/t", experiment="e", run_id="j", status="completed", tags={"gitops_run": "r"}))
    with pytest.raises(ConfigurationError, match="GITOPS_REPO"):
        function_app["on_job_event"].get_user_function()(event)


def test_a_step_message_that_keeps_failing_is_given_up_with_the_reason_and_nothing_deleted(
    app_services, azure_fake, function_app, drain, step_queue
) -> None:
    from azure.functions.queue import QueueMessage

    from function_app.config import MAX_DEQUEUE_COUNT
    from function_app.step_queue import handle_step_message
    from gitops.errors import CorruptRecordError
    from gitops.ledger.model import update
    from gitops.lifecycle.queue import StepMessage

    record = submitted(app_services, azure_fake)
    function_app["reconcile"].get_user_function()(TimerRequest())
    assert drain()[-1] == "live"
    live = app_services.lifecycle.ledger.get(record.run)[0]
    # A cursor this version of the code cannot take (a step a newer version wrote, say): every delivery fails.
    update(
        app_services.lifecycle.ledger,
        record.run,
        lambda r: r.model_copy(update={"status": "deploying", "cursor": _cursor("hold_for_approval", live.endpoint)}),
    )
    body = StepMessage(record.run, "hold_for_approval", 0).to_json().encode()
    for attempt in range(1, MAX_DEQUEUE_COUNT):
        with pytest.raises(CorruptRecordError, match="hold_for_approval"):  # raised, so the host delivers it again
            handle_step_message(QueueMessage(id="m1", body=body, dequeue_count=attempt))
    assert handle_step_message(QueueMessage(id="m1", body=body, dequeue_count=MAX_DEQUEUE_COUNT)) == "given_up"
    failed = app_services.lifecycle.ledger.get(record.run)[0]
    assert failed.status == "failed" and failed.cursor is None
    assert "hold_for_approval" in (failed.error or "") and "nothing deleted" in (failed.error or "")
    assert azure_fake.deployments(live.endpoint) == [live.deployment]  # as the last step left it
    assert azure_fake.endpoint(live.endpoint)["properties"]["traffic"] == {live.deployment: 100}


def test_a_malformed_step_message_is_dropped_with_a_line(app_services, caplog) -> None:
    from azure.functions.queue import QueueMessage

    from function_app.step_queue import handle_step_message

    caplog.set_level(logging.INFO)
    for body in (b"not json", b"[]", b'{"step": "x"}', b"\xff\xfe"):
        assert handle_step_message(QueueMessage(id="bad", body=body, dequeue_count=1)) == "malformed"
    assert "step message bad dropped: not a step message" in caplog.text


def test_host_json_gives_up_where_the_handler_expects(app_services) -> None:
    import json

    from function_app.config import MAX_DEQUEUE_COUNT

    host = json.loads((REPO_ROOT / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == MAX_DEQUEUE_COUNT


def _cursor(step: str, endpoint: str | None):
    from gitops.ledger.model import Cursor

    return Cursor(step=step, entered_at=0, not_before=0, deadline_at=9e9, started_at=0, endpoint=endpoint)


def test_step_messages_are_base64_on_the_wire_as_the_queue_trigger_expects(
    app_services, azure_fake, function_app, step_queue, azurite_queue
) -> None:
    import base64
    import json

    from azure.storage.queue import QueueClient

    record = submitted(app_services, azure_fake)
    event = grid_event(
        build_event(
            topic=azure_fake.ws_path,
            experiment="e",
            run_id=record.job_name,
            status="completed",
            tags=azure_fake.job(record.job_name)["properties"]["tags"],
        )
    )
    function_app["on_job_event"].get_user_function()(event)
    raw = QueueClient.from_connection_string(azurite_queue, step_queue.client.queue_name)  # no decode policy: the bytes as stored
    (message,) = raw.peek_messages(max_messages=5)
    body = json.loads(base64.b64decode(message.content))
    assert body["run"] == record.run and body["step"] == "check_job" and isinstance(body["not_before"], float)


def test_the_cleanup_timer_applies_the_policy_the_runs_were_submitted_with(app_services, azure_fake, function_app, drain) -> None:
    """No GITOPS_POLICY copy: the run carries the policy it came with (here its idle default, 1h), and the timer uses it."""
    from datetime import UTC, datetime, timedelta

    from gitops.cleanup.run import newest_policy
    from gitops.spec.policy import parse_policy

    policy, _ = parse_policy("defaults: {idle_after: 1h, expire_after: 30d}\ncleanup: {max_deletions_per_run: 1}\n")
    assert policy is not None
    text = SPEC.replace("  idle_after: 24h\n", "")  # the spec leaves it to the policy
    validated = validate_text(text, "runs/phi4-ultrachat.yaml")
    assert validated.ok, validated.findings
    record = app_services.lifecycle.submit(validated, policy=policy)
    assert record.policy is not None and record.policy["defaults"]["idle_after"] == "1h"
    azure_fake.set_job_status(record.job_name, "Completed")
    function_app["reconcile"].get_user_function()(TimerRequest())
    drain()
    live = app_services.lifecycle.ledger.get(record.run)[0]
    assert live.status == "live"
    assert newest_policy(app_services.lifecycle.ledger).cleanup.max_deletions_per_run == 1
    from gitops.cleanup.run import run_cleanup

    assert app_services.policy is None  # what the timer passes: the runs' own policies decide
    three_hours_on = datetime.now(UTC) + timedelta(hours=3)  # deployed, then not called for three hours
    (verdict,) = run_cleanup(
        app_services.backend_for("azureml"), app_services.lifecycle.ledger, app_services.policy, now=three_hours_on, repo="acme/models"
    )
    assert verdict.action == "delete" and "(idle_after 1h)" in verdict.reasons[0]
    assert app_services.lifecycle.ledger.get(record.run)[0].status == "retired"


def test_the_function_lists_what_the_report_workflow_reads(app_services, azure_fake, call, token) -> None:
    import json

    record = submitted(app_services, azure_fake)
    assert call("list_runs", method="GET", headers={}).status_code == 401
    assert call("list_runs", method="GET", headers={"Authorization": f"Bearer {token(repository='globex/other')}"}).status_code == 403
    answer = call("list_runs", method="GET", headers={"Authorization": f"Bearer {token()}"})
    assert answer.status_code == 200
    (run,) = json.loads(answer.get_body())["runs"]
    assert {"run", "status", "pr", "report_job"} <= set(run) and run["run"] == record.run and "spec" not in run


def test_the_watch_timer_records_findings_that_get_watch_serves_to_a_github_token(
    app_services,
    azure_fake,
    call,
    token,
    function_app,
) -> None:
    import copy
    import json

    submitted(app_services, azure_fake)
    v8 = azure_fake.get_resource(f"{azure_fake.registry_path}/models/Phi-4/versions/8")
    azure_fake.add_model(copy.deepcopy(v8), "Phi-4", "9")  # published since the spec was merged
    before = call("get_watch", method="GET", headers={"Authorization": f"Bearer {token()}"})
    assert before.status_code == 404 and "has not run yet" in before.get_body().decode()
    function_app["watch"].get_user_function()(TimerRequest())
    anonymous = call("get_watch", method="GET", headers={})
    assert anonymous.status_code == 401  # the function key alone does not read what the endpoints run
    answer = call("get_watch", method="GET", headers={"Authorization": f"Bearer {token()}"})
    body = json.loads(answer.get_body())
    assert answer.status_code == 200 and body["specs"] == 1 and body["runs"] == 1
    (newer,) = [f for f in body["findings"] if f["subject"] == "model.version"]
    assert newer["fix"] == 'model.version: "9"' and newer["key"] == "phi4-ultrachat|model|model.version"
    assert body["markdown"].startswith("<!-- finetune-gitops:watch -->") and 'model.version: "9"' in body["markdown"]
