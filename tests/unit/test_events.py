"""Job events: both envelopes, arrays, PascalCase, and the outcome each status means."""

import json
from typing import Any

import pytest

from gitops.events import RUN_COMPLETED, RUN_STATUS_CHANGED, EventFormatError, build_event, parse_events

EVENT_GRID = {
    "id": "e1",
    "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
    "subject": "experiments/x/runs/job-1",
    "eventType": RUN_COMPLETED,
    "eventTime": "2026-11-24T00:00:00Z",
    "data": {
        "experimentId": "x",
        "experimentName": "exp",
        "runId": "job-1",
        "runType": "azureml.PipelineRun",
        "runTags": {"gitops_run": "r1"},
        "runProperties": {},
        "runStatus": "Completed",
    },
    "dataVersion": "2",
    "metadataVersion": "1",
}
CLOUD_EVENT = {
    "id": "e2",
    "source": EVENT_GRID["topic"],
    "subject": "experiments/x/runs/job-1",
    "type": RUN_STATUS_CHANGED,
    "time": "2026-11-24T00:00:00Z",
    "specversion": "1.0",
    "data": {"RunId": "job-1", "RunTags": {"gitops_run": "r1"}, "RunStatus": "Failed", "ExperimentName": "exp"},
}


def test_both_envelopes_and_arrays() -> None:
    grid, cloud = parse_events(json.dumps([EVENT_GRID, CLOUD_EVENT]))
    assert (grid.run_id, grid.tags, grid.outcome, grid.topic) == ("job-1", {"gitops_run": "r1"}, "completed", EVENT_GRID["topic"])
    assert (cloud.run_id, cloud.tags, cloud.outcome, cloud.topic) == ("job-1", {"gitops_run": "r1"}, "failed", EVENT_GRID["topic"])
    assert parse_events(EVENT_GRID)[0].id == "e1"


@pytest.mark.parametrize(
    ("status", "outcome"), [("Canceled", "canceled"), ("Running", None), ("Completed", "completed"), ("Failed", "failed")]
)
def test_status_changed_outcomes(status: str, outcome: str | None) -> None:
    data: dict[str, Any] = dict(CLOUD_EVENT["data"])  # type: ignore[arg-type]
    event = {**CLOUD_EVENT, "data": {**data, "RunStatus": status}}
    assert parse_events(event)[0].outcome == outcome


@pytest.mark.parametrize("bad", [{"id": "x"}, {"eventType": RUN_COMPLETED, "data": {}}, [1], "nope"])
def test_malformed_events_are_refused(bad: object) -> None:
    with pytest.raises((EventFormatError, ValueError)):
        parse_events(bad if not isinstance(bad, str) else bad)


def test_built_events_round_trip() -> None:
    raw = build_event(topic="/local/x", experiment="exp", run_id="job-9", status="Canceled", tags={"gitops_run": "r"})
    assert raw["eventType"] == RUN_STATUS_CHANGED and raw["subject"] == "experiments/exp/runs/job-9"
    (event,) = parse_events(raw)
    assert event.outcome == "canceled" and event.tags == {"gitops_run": "r"}
    done = build_event(topic="/local/x", experiment="exp", run_id="job-9", status="Completed", tags={})
    assert done["eventType"] == RUN_COMPLETED
