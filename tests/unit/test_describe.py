"""``gitops status NAME``: one run described whole, from fixed records on the local backend (its endpoint's config
written as the backend writes it, no server running), kept as a golden file; and what to type next, by state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.cli.describe_cmds import describe, next_command
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import Cursor, HistoryEntry, RunRecord
from gitops.lifecycle.flow import Lifecycle
from tests.conftest import assert_golden

NOW = 1_765_000_000.0


def _held(**more: object) -> RunRecord:
    history = [
        HistoryEntry(at=NOW - 86400, status="submitted", note="job gitops-local-tiny-1111aaaa2222"),
        HistoryEntry(at=NOW - 86000, status="live", note="v1-aaaa1111 takes 100% on local-tiny-chat"),
        HistoryEntry(at=NOW - 3600, status="submitted", note="job gitops-local-tiny-3333bbbb4444"),
        HistoryEntry(at=NOW - 1800, status="deploying", note="rollout starts"),
        HistoryEntry(at=NOW - 1500, status="deploying", note="smoke test passed in 412 ms"),
        HistoryEntry(at=NOW - 1200, status="held", note="gate failed: eval loss 2.4600 -> 4.4900 (rise 2.0300 > 0.1000)"),
    ]
    cursor = Cursor(
        plan="hold",
        step="hold_for_approval",
        entered_at=NOW - 1200,
        not_before=NOW + 3600,
        deadline_at=NOW + 86400 - 1200,
        started_at=NOW - 1800,
        endpoint="local-tiny-chat",
        deployment="v3-bbbb3333",
        previous="v1-aaaa1111",
        model_version="3",
    )
    gate = {
        "ok": False,
        "reasons": ["eval loss 2.4600 -> 4.4900 (rise 2.0300 > 0.1000)"],
        "notes": ["held-out ROUGE-L 0.412 -> 0.398 (within the 0.02 margin)"],
        "numbers": {},
    }
    fields: dict[str, object] = {
        "run": "local-tiny",
        "backend": "local",
        "digest": "d" * 64,
        "job_name": "gitops-local-tiny-3333bbbb4444",
        "status": "held",
        "model_name": "local-tiny-chat",
        "model_version": "3",
        "serving_model_version": "1",
        "endpoint": "local-tiny-chat",
        "deployment": "v1-aaaa1111",
        "history": history,
        "cursor": cursor,
        "gate": gate,
    }
    return RunRecord.model_validate({**fields, **more})


@pytest.fixture
def lifecycle(tmp_path: Path) -> Lifecycle:
    backend = LocalBackend(tmp_path / "ws")
    ep = backend.ws.endpoint_dir("local-tiny-chat")
    ep.mkdir(parents=True)
    deployments = {
        d: {"model_uri": f"models:/local-tiny-chat/{v}", "model_dir": "-", "created_at": NOW - 3600, "ready_at": 0}
        for d, v in (("v1-aaaa1111", 1), ("v3-bbbb3333", 3))
    }
    config = {"name": "local-tiny-chat", "tags": {}, "deployments": deployments, "traffic": {"v1-aaaa1111": 100, "v3-bbbb3333": 0}}
    (ep / "endpoint.json").write_text(json.dumps({**config, "port": 47001, "created_at": NOW - 86400}))
    return Lifecycle(LocalLedger(tmp_path / "ledger"), lambda name: backend)


def test_a_held_run_shows_what_serves_the_candidate_its_gate_the_deadline_and_what_to_type(lifecycle: Lifecycle, tmp_path: Path) -> None:
    text = describe(lifecycle, _held(), now=NOW).replace(str(tmp_path), "<tmp>")
    assert_golden("status-describe-held.txt", text)
    assert "deadline in 23h40m" in text and "1420m" not in text  # readable units


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "gitops promote local-tiny --reason ...  or  gitops rollback local-tiny --reason ..."),
        ({"status": "live", "cursor": None, "gate": None}, "gitops invoke local-tiny --message '...'"),
        ({"status": "live", "cursor": None, "stopped_at": NOW}, "gitops start local-tiny"),
        ({"status": "running", "cursor": None}, "gitops logs local-tiny (the training)"),
        ({"status": "retired", "cursor": None}, "merge runs/local-tiny.yaml again"),
    ],
)
def test_the_next_command_follows_where_the_run_stands(changes: dict[str, object], expected: str) -> None:
    assert next_command(_held(**changes)).startswith(expected)


def test_a_rejected_candidate_is_named_beside_what_serves(lifecycle: Lifecycle) -> None:
    text = describe(lifecycle, _held(status="rejected", cursor=None, gate=None), now=NOW)
    assert "serves     v1-aaaa1111 · local-tiny-chat v1 · 100% · DOWN · http://127.0.0.1:47001/score" in text
    assert "candidate  local-tiny-chat v3: rejected (not deployed now)" in text
