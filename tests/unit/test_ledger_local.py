"""The local ledger: compare-and-swap, and updates from many threads losing nothing."""

import threading

import pytest

from gitops.errors import ConflictError, NotFoundError
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import RunRecord, update


def _record() -> RunRecord:
    return RunRecord(run="r1", backend="local", digest="d" * 64, job_name="job-1").moved("submitted")


def test_put_requires_the_version_it_read(tmp_path) -> None:
    ledger = LocalLedger(tmp_path)
    v1 = ledger.put(_record(), None)
    with pytest.raises(ConflictError):
        ledger.put(_record(), None)  # must not exist
    v2 = ledger.put(_record().moved("running"), v1)
    with pytest.raises(ConflictError):
        ledger.put(_record().moved("failed"), v1)  # stale
    got = ledger.get("r1")
    assert got is not None and got[1] == v2 and got[0].status == "running"
    assert [h.status for h in got[0].history] == ["submitted", "running"]


def test_concurrent_updates_lose_nothing(tmp_path) -> None:
    ledger = LocalLedger(tmp_path)
    ledger.put(_record(), None)

    def add(i: int) -> None:
        update(ledger, "r1", lambda r: r.model_copy(update={"processed_events": [*r.processed_events, f"e{i}"]}), attempts=100)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = ledger.get("r1")
    assert got is not None and sorted(got[0].processed_events) == sorted(f"e{i}" for i in range(20))


def test_update_of_a_missing_run(tmp_path) -> None:
    with pytest.raises(NotFoundError):
        update(LocalLedger(tmp_path), "nope", lambda r: r)
