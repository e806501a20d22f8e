"""A reconcile tick reads the records it must act on, not the whole ledger: each blob carries its record's summary as
metadata (status, the cursor's next look, the claim's lease, whether it serves...), the tick lists the container
(one call per page of 5,000 names, metadata included) and reads only the due records. Counted on Azurite's real
Blob API at the transport (azure-core's request hook), never assumed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gitops.ledger.blob import RUNS_PREFIX, BlobLedger
from gitops.ledger.model import Cursor, HistoryEntry, RecordSummary, RunRecord
from gitops.lifecycle.flow import Lifecycle
from gitops.lifecycle.queue import MemoryQueue
from gitops.lifecycle.reconcile import needs_a_look

NOW = 1_800_000_000.0


def record(name: str, status: str = "live", **fields: Any) -> RunRecord:
    base: dict[str, Any] = dict(
        run=name,
        backend="azureml",
        job_name=f"{name}-job",
        digest="d",
        status=status,
        endpoint=f"{name}-ep",
        deployment="v1",
        history=[HistoryEntry(at=NOW - 3600, status=status)],
    )
    return RunRecord.model_validate({**base, **fields})


def cursor(not_before: float) -> Cursor:
    return Cursor(
        step="await_deployment", entered_at=NOW - 60, not_before=not_before, deadline_at=NOW + 3600, started_at=NOW - 600, deployment="v2"
    )


@pytest.fixture
def counted(azurite: str) -> tuple[BlobLedger, list[str]]:
    from azure.storage.blob import ContainerClient

    calls: list[str] = []

    def hook(request: Any) -> None:
        calls.append(f"{request.http_request.method} {request.http_request.url.split('?')[0].rsplit('/', 2)[-2:]}")

    client = ContainerClient.from_connection_string(azurite, f"tick-{uuid.uuid4().hex[:12]}", raw_request_hook=hook)
    return BlobLedger(client), calls


def test_a_tick_reads_only_the_due_records(counted: tuple[BlobLedger, list[str]], tmp_path: Any) -> None:
    from gitops.backends.local.backend import LocalBackend

    ledger, calls = counted
    local = LocalBackend(tmp_path / "ws")  # where the training run's job is looked for (it knows none: still running)
    for i in range(40):
        ledger.put(record(f"quiet-{i:02d}"), None)  # live on Azure, no environments: nothing to look at
    ledger.put(record("waiting", "deploying", cursor=cursor(NOW + 600)), None)  # its next look is later
    ledger.put(record("overdue", "deploying", cursor=cursor(NOW - 5)), None)  # its message never came: due
    ledger.put(record("training", "running", deployment=None, backend="local"), None)  # its job's end is looked for
    ledger.put(record("leased", "deploying", cursor=cursor(NOW - 5), claim="tok", claimed_until=NOW + 30), None)  # a process holds it
    legacy = ledger.container.get_blob_client(f"{RUNS_PREFIX}legacy.json")  # written before summaries: no metadata
    legacy.upload_blob(record("legacy", backend="local").model_dump_json().encode())
    queue = MemoryQueue()
    lifecycle = Lifecycle(ledger, lambda name: local if name == "local" else pytest.fail(f"{name} asked"), queue=queue, clock=lambda: NOW)
    calls.clear()
    decisions = lifecycle.reconcile()
    reads = sorted(c for c in calls if c.startswith("GET") and "runs" in c)
    listings = [c for c in calls if c.startswith("GET") and "runs" not in c]
    assert len(listings) == 1, calls  # one page of the listing
    assert reads == ["GET ['runs', 'legacy.json']", "GET ['runs', 'overdue.json']", "GET ['runs', 'training.json']"], reads
    assert [(d.run, d.action) for d in decisions] == [("overdue", "scheduled")]
    assert [m.run for m in queue.due(NOW)] == ["overdue"]


def test_the_summary_round_trips_and_unknown_or_odd_metadata_means_read_it() -> None:
    r = record("a", "deploying", cursor=cursor(NOW + 1.5), claim="t", claimed_until=NOW + 30, policy={"environments": [{"name": "dev"}]})
    summary = RecordSummary.of(r)
    assert RecordSummary.from_metadata("a", summary.to_metadata()) == summary
    assert summary.staged and summary.not_before == NOW + 1.5 and summary.claimed_until == NOW + 30
    for metadata in (None, {}, {"gitops_summary": "0", "gitops_status": "live"}, {"gitops_summary": "1"}):
        assert not RecordSummary.from_metadata("a", metadata).known
        assert needs_a_look(RecordSummary.from_metadata("a", metadata), NOW)
    odd = RecordSummary.from_metadata("a", {**summary.to_metadata(), "gitops_not_before": "soon"})
    assert odd.not_before is None  # not a number: as if there were no cursor, and the status decides (deploying: read)
    assert needs_a_look(odd, NOW)


@pytest.mark.parametrize(
    ("fields", "due"),
    [
        ({"status": "live"}, False),
        ({"status": "live", "backend": "local"}, True),  # its server may have died: reconcile starts it again
        ({"status": "live", "policy": {"environments": [{"name": "dev"}, {"name": "prod"}]}}, True),  # a promotion may be due
        ({"status": "retired", "deployment": None}, False),
        ({"status": "failed", "deployment": None}, False),
        ({"status": "submitted", "deployment": None}, True),
        ({"status": "deploying"}, True),  # rolling without a cursor: a record from before cursors
        ({"status": "deploying", "cursor": cursor(NOW - 1)}, True),
        ({"status": "deploying", "cursor": cursor(NOW + 1)}, False),
        ({"status": "held", "cursor": cursor(NOW + 86400)}, False),
    ],
)
def test_what_a_tick_looks_at(fields: dict[str, Any], due: bool) -> None:
    r = record("a", **fields)
    assert needs_a_look(RecordSummary.of(r), NOW) is due
