"""Golden scenarios: a ledger and job events in (tests/golden/*.json), decisions and records out.

Each file is readable on its own: what the ledger held, which events arrived, what the handler must
decide and what the run records must say afterwards. The handler only records and schedules (an event is
a hint: the job's own state is read by the first step), so the real local backend is never asked to act.
"""

import json
from pathlib import Path

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.ledger.model import RunRecord
from gitops.lifecycle.flow import Lifecycle

GOLDEN = sorted((Path(__file__).resolve().parents[1] / "golden").glob("*.json"))
TOPIC = "/subscriptions/0000/resourceGroups/ml/providers/Microsoft.MachineLearningServices/workspaces/ws"


@pytest.mark.parametrize("scenario", GOLDEN, ids=lambda p: p.stem)
def test_golden_scenario(scenario: Path, ledger, tmp_path: Path) -> None:
    doc = json.loads(scenario.read_text())
    for raw in doc["ledger"]:
        ledger.put(RunRecord.model_validate(raw), None)
    backend = LocalBackend(tmp_path / "ws")
    lifecycle = Lifecycle(ledger, lambda name: backend, topic=TOPIC)

    decisions = lifecycle.on_job_event(json.dumps(doc["events"]))

    expected = doc["expected"]
    assert [d.action for d in decisions] == [e["action"] for e in expected["decisions"]], decisions
    for got, want in zip(decisions, expected["decisions"], strict=True):
        assert want["reason_contains"] in got.reason, got
    for run, fields in expected["records"].items():
        stored = ledger.get(run)
        assert stored is not None
        record = stored[0].model_dump(mode="json")
        record["cursor_step"] = (record.get("cursor") or {}).get("step")  # where the run's rollout stands, if anywhere
        assert {k: record[k] for k in fields} == fields
    endpoints = tmp_path / "ws" / "endpoints"
    assert not endpoints.exists() or not list(endpoints.iterdir())  # nothing was deployed
