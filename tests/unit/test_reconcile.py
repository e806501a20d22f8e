"""reconcile runs on a timer: one run's failure is logged and the other runs carry on."""

import json
import logging

from gitops.backends.local.backend import LocalBackend
from gitops.backends.registry import get_backend
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import RunRecord
from gitops.ledger.transitions import Asker, RunStatus
from gitops.lifecycle.flow import Lifecycle


def test_one_broken_run_does_not_stop_the_others(tmp_path, caplog, monkeypatch) -> None:
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # and no config.json: the Azure run cannot be reconciled here
    backend = LocalBackend(tmp_path / "ws")
    ledger = LocalLedger(tmp_path / "ledger")
    for run, kind in (("azure-run", "azureml"), ("local-run", "local")):
        ledger.put(
            RunRecord(run=run, backend=kind, digest="d" * 64, job_name=f"job-{run}").moved(RunStatus.SUBMITTED, by=Asker.VERSION), None
        )
    # The local job ended in failure while nobody listened (no event came).
    job_dir = backend.ws.job_dir("job-local-run")
    job_dir.mkdir(parents=True)
    (job_dir / "status.json").write_text(json.dumps({"state": "failed", "error": "out of memory", "tags": {}}))

    lifecycle = Lifecycle(ledger, lambda name: backend if name == "local" else get_backend(name))
    with caplog.at_level(logging.WARNING, logger="gitops.lifecycle"):
        decisions = lifecycle.reconcile()

    # The Azure run is named as skipped, with why; the local one goes on.
    assert [(d.run, d.action) for d in decisions] == [("azure-run", "skipped"), ("local-run", "failed")]
    assert "not configured" in decisions[0].reason
    local, azure = ledger.get("local-run"), ledger.get("azure-run")
    assert local is not None and local[0].status == "failed"
    assert azure is not None and azure[0].status == "submitted"
    assert "reconcile azure-run: the Azure ML workspace is not configured" in caplog.text
