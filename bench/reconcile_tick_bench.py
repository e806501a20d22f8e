"""Benchmark: what one reconcile tick reads, at 100, 1,000 and 10,000 runs, against reading every record.

A ledger in Blob Storage (Azurite, the emulator of the real Blob API) holds N records: 97% live and quiet, 2% rolling
out with their next look later, 1% whose step message never came (due). The tick lists the container with each blob's
metadata (the summary every write keeps beside its record), one call per page of 5,000 names, and reads only the due
records; the baseline reads every record, as the tick did before (``ledger.list()``). Requests are counted at the
transport (azure-core's request hook), and the tick's decisions are checked (every due run scheduled, no other).

Printed per size: requests of the tick, of the baseline, the ratio (target at 10,000: at most 1/20), and the time of
each. Run: ``.venv/bin/python bench/reconcile_tick_bench.py [sizes...]`` (default 100 1000 10000).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitops.ledger.blob import BlobLedger  # noqa: E402
from gitops.ledger.model import Cursor, HistoryEntry, RunRecord  # noqa: E402
from gitops.lifecycle.flow import Lifecycle  # noqa: E402
from gitops.lifecycle.queue import MemoryQueue  # noqa: E402
from tests import azurite  # noqa: E402

NOW = 1_800_000_000.0


def a_record(i: int) -> RunRecord:
    name = f"run-{i:05d}"
    kind = "overdue" if i % 100 == 0 else "waiting" if i % 100 in (1, 2) else "quiet"
    cursor = None
    if kind != "quiet":
        not_before = NOW - 5 if kind == "overdue" else NOW + 600
        cursor = Cursor(
            step="await_deployment",
            entered_at=NOW - 60,
            not_before=not_before,
            deadline_at=NOW + 3600,
            started_at=NOW - 600,
            deployment="v2",
        )
    return RunRecord(
        run=name,
        backend="azureml",
        job_name=f"{name}-job",
        digest="d",
        status="live" if kind == "quiet" else "deploying",  # type: ignore[arg-type]
        endpoint=f"{name}-ep",
        deployment="v1",
        cursor=cursor,
        history=[HistoryEntry(at=NOW - 3600, status="live")],
    )


def no_backend(name: str) -> Any:
    raise AssertionError(f"no backend is asked on this tick ({name})")


def measure(connection: str, n: int) -> tuple[int, int, float, float]:
    from azure.storage.blob import ContainerClient

    calls: list[str] = []
    client = ContainerClient.from_connection_string(
        connection, f"tick-{n}-{uuid.uuid4().hex[:8]}", raw_request_hook=lambda r: calls.append(r.http_request.method)
    )
    ledger = BlobLedger(client)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: ledger.put(a_record(i), None), range(n)))
    queue = MemoryQueue()
    lifecycle = Lifecycle(ledger, no_backend, queue=queue, clock=lambda: NOW)
    calls.clear()
    started = time.perf_counter()
    decisions = lifecycle.reconcile()
    tick_s, tick_calls = time.perf_counter() - started, len(calls)
    due = {f"run-{i:05d}" for i in range(0, n, 100)}
    assert {d.run for d in decisions} == due and all(d.action == "scheduled" for d in decisions), decisions[:3]
    calls.clear()
    started = time.perf_counter()
    assert len(ledger.list()) == n
    return tick_calls, len(calls), tick_s, time.perf_counter() - started


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = azurite.start("blob", Path(tmp) / "blob")
        try:
            connection = azurite.connection_string("blob", port)
            print(f"{'runs':>7} {'due':>5} {'tick reqs':>10} {'read-all reqs':>14} {'ratio':>7} {'tick s':>8} {'read-all s':>11}")
            ratio = 1.0
            for n in sizes:
                tick, everything, tick_s, all_s = measure(connection, n)
                ratio = tick / everything
                print(f"{n:>7} {len(range(0, n, 100)):>5} {tick:>10} {everything:>14} {ratio:>7.3f} {tick_s:>8.2f} {all_s:>11.2f}")
            verdict = "within" if ratio <= 1 / 20 else "OVER"
            print(f"tick at {max(sizes)} runs: {ratio:.3f} of the requests of reading every record ({verdict} the 1/20 target)")
        finally:
            azurite.stop(proc)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
