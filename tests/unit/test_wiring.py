"""The one wiring of the lifecycle: what the CLI and the Function App are built from, and what they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.errors import ConfigurationError
from gitops.events import build_event
from gitops.ledger.model import RunRecord
from gitops.ledger.transitions import Asker, RunStatus
from gitops.lifecycle.wiring import function_lifecycle, local_lifecycle
from gitops.settings import Settings

AZURE = {"AZURE_SUBSCRIPTION_ID": "sub", "AZURE_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE_NAME": "ws"}
TOPIC = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


def test_the_function_app_needs_a_ledger_and_a_queue_and_names_the_setting(azurite) -> None:
    with pytest.raises(ConfigurationError, match="GITOPS_LEDGER_ACCOUNT_URL"):  # never a ledger in a temporary directory
        function_lifecycle(Settings.load({}))
    with pytest.raises(ConfigurationError, match="GITOPS_QUEUE"):
        function_lifecycle(Settings.load({"GITOPS_LEDGER_CONNECTION_STRING": azurite}))


def test_the_function_app_sends_steps_to_the_configured_queue(azurite, azurite_queue) -> None:
    from gitops.lifecycle.storage_queue import StorageQueue

    lifecycle = function_lifecycle(
        Settings.load(
            {"GITOPS_LEDGER_CONNECTION_STRING": azurite, "GITOPS_QUEUE": azurite_queue, "GITOPS_QUEUE_NAME": "wiring-steps", **AZURE}
        )
    )
    assert isinstance(lifecycle.queue, StorageQueue) and lifecycle.queue.client.queue_name == "wiring-steps"
    assert lifecycle.topics == {TOPIC.lower()}


def test_a_shell_pointed_at_a_workspace_replays_its_dead_lettered_events(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("GITOPS_LEDGER_ACCOUNT_URL", raising=False)
    for name, value in AZURE.items():
        monkeypatch.setenv(name, value)
    lifecycle = local_lifecycle()
    lifecycle.ledger.put(
        RunRecord(run="chat", backend="azureml", digest="d" * 64, job_name="gitops-chat-1", endpoint="chat-ep").moved(
            RunStatus.RUNNING, by=Asker.STEP
        ),
        None,
    )
    event = build_event(topic=TOPIC, experiment="e", run_id="gitops-chat-1", status="completed", tags={"gitops_run": "chat"})
    (decision,) = lifecycle.on_job_event(event)
    assert decision.action == "scheduled"  # an Azure event, not "another workspace"
    other = build_event(
        topic=TOPIC.replace("/ws", "/other"), experiment="e", run_id="gitops-chat-1", status="completed", tags={"gitops_run": "chat"}
    )
    assert lifecycle.on_job_event(other)[0].reason.endswith("is not a workspace of ours")
