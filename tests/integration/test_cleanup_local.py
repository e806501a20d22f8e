"""Cleanup against real local endpoints: dry run equals the real run, unmanaged ones are untouched,
deleted ones really stop (process gone, port closed), the run is retired and can be brought back."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.backends.local.processes import is_running
from gitops.cleanup.run import run_cleanup
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import RunRecord
from gitops.lifecycle.flow import Lifecycle
from gitops.spec.policy import Policy
from gitops.spec.validate import validate_text
from gitops.util.files import read_json

pytestmark = pytest.mark.slow

SPEC = "name: idle-run\nbackend: local\nmodel: {registry: local, name: tiny-phi3}\ndata: {train_path: x.jsonl}\n"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_cleanup_of_real_local_endpoints(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "ws")
    ledger = LocalLedger(tmp_path / "ledger")
    validated = validate_text(SPEC, "idle-run.yaml")
    spec = validated.require()
    managed = {"managed_by": "finetune-gitops", "gitops_repo": "acme/models"}
    backend.begin_endpoint("idle-ep", {**managed, "gitops_run": "idle-run"})
    backend.begin_endpoint("kept-ep", {**managed, "gitops_run": "kept-run", "gitops_keep": "true"})
    backend.begin_endpoint("foreign-ep", {"team": "someone-else"})
    assert validated.digest is not None
    ledger.put(
        RunRecord(
            run="idle-run",
            backend="local",
            digest=validated.digest,
            job_name="gitops-idle-run-x",
            status="live",
            spec=spec.model_dump(mode="json"),
            endpoint="idle-ep",
            deployment="v1-x",
        ),
        None,
    )
    pid_of = {name: read_json(backend.ws.endpoint_dir(name) / "endpoint.json")["pid"] for name in ("idle-ep", "kept-ep", "foreign-ep")}
    port_of = {name: read_json(backend.ws.endpoint_dir(name) / "endpoint.json")["port"] for name in pid_of}

    later = datetime.now(UTC) + timedelta(days=2)  # two days with no request
    dry = run_cleanup(backend, ledger, Policy(), dry_run=True, now=later, repo="acme/models")
    assert {v.endpoint: v.action for v in dry} == {"idle-ep": "delete", "kept-ep": "keep", "foreign-ep": "skip"}
    assert all(_port_open(p) for p in port_of.values())  # a dry run touches nothing
    assert ledger.get("idle-run")[0].status == "live"  # type: ignore[index]

    real = run_cleanup(backend, ledger, Policy(), now=later, repo="acme/models")
    assert [(v.endpoint, v.action, v.reasons) for v in real] == [(v.endpoint, v.action, v.reasons) for v in dry]
    assert not is_running(pid_of["idle-ep"], str(backend.ws.endpoint_dir("idle-ep")))
    assert not _port_open(port_of["idle-ep"])
    assert backend.get_endpoint("idle-ep") is None
    for name in ("kept-ep", "foreign-ep"):
        assert _port_open(port_of[name]) and backend.get_endpoint(name) is not None
    record = ledger.get("idle-run")[0]  # type: ignore[index]
    assert record.status == "retired" and record.history[-1].note.startswith("idle: no requests for")
    assert record.last_cleanup is not None and record.last_cleanup["action"] == "delete"

    # A later run of the same spec brings it back without a new job: reconcile redeploys the trained model.
    revived = Lifecycle(ledger, lambda name: backend).submit(validated)
    assert revived.status == "completed" and revived.job_name == "gitops-idle-run-x"
    assert not (backend.ws.root / "jobs").exists() or not any((backend.ws.root / "jobs").iterdir())

    for name in ("kept-ep", "foreign-ep"):
        backend.delete_endpoint(name)


def test_cli_dry_run_json(cli, monkeypatch, tmp_path: Path) -> None:
    import json

    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("GITOPS_REPO", "acme/models")
    backend = LocalBackend(tmp_path / "ws")
    backend.begin_endpoint("busy-ep", {"managed_by": "finetune-gitops", "gitops_repo": "acme/models", "gitops_run": "busy"})
    try:
        result = cli("cleanup", "--dry-run", "--json", "--repo", str(tmp_path))
        assert result.exit_code == 0, result.err
        assert json.loads(result.out) == [
            {"endpoint": "busy-ep", "run": "busy", "action": "keep", "reasons": ["in use and within its lifetime"], "deployments": []}
        ]
        text = cli("cleanup", "--dry-run", "--repo", str(tmp_path))
        assert text.out.startswith("[dry run] would keep") and backend.get_endpoint("busy-ep") is not None
    finally:
        backend.delete_endpoint("busy-ep")
