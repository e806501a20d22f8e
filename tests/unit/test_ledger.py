"""Both ledgers (files, and Azure Blob on a real Azurite): compare-and-swap, concurrent updates losing
nothing, exactly one claim among racing threads, and the processed-event index."""

import json
import threading

import pytest

from gitops.errors import ConflictError, NotFoundError
from gitops.ledger.model import RunRecord, update
from gitops.ledger.transitions import Asker, RunStatus


def _record() -> RunRecord:
    return RunRecord(run="r1", backend="local", digest="d" * 64, job_name="job-1").moved(RunStatus.SUBMITTED, by=Asker.VERSION)


def test_put_requires_the_version_it_read(ledger) -> None:
    v1 = ledger.put(_record(), None)
    with pytest.raises(ConflictError):
        ledger.put(_record(), None)  # must not exist
    v2 = ledger.put(_record().moved(RunStatus.RUNNING, by=Asker.STEP), v1)
    with pytest.raises(ConflictError):
        ledger.put(_record().moved(RunStatus.FAILED, by=Asker.STEP), v1)  # stale
    got = ledger.get("r1")
    assert got is not None and got[1] == v2 and got[0].status == "running"
    assert [h.status for h in got[0].history] == ["submitted", "running"]
    assert [r.run for r in ledger.list()] == ["r1"]
    assert ledger.get("nope") is None


def test_concurrent_updates_lose_nothing(ledger) -> None:
    ledger.put(_record(), None)

    def add(i: int) -> None:
        update(ledger, "r1", lambda r: r.model_copy(update={"processed_events": [*r.processed_events, f"e{i}"]}), attempts=200)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = ledger.get("r1")
    assert got is not None and sorted(got[0].processed_events) == sorted(f"e{i}" for i in range(12))


def test_exactly_one_racing_claim_wins(ledger) -> None:
    ledger.put(_record(), None)
    winners: list[int] = []
    barrier = threading.Barrier(6)

    def claim(i: int) -> None:
        barrier.wait()
        try:
            got = update(
                ledger, "r1", lambda r: r.moved(RunStatus.DEPLOYING, f"claim {i}", by=Asker.STEP) if r.status == "submitted" else None
            )
        except ConflictError:
            got = None
        if got is not None:
            winners.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    record = ledger.get("r1")[0]
    assert [h.note for h in record.history if h.status == "deploying"] == [f"claim {winners[0]}"]


def test_processed_event_index(ledger) -> None:
    assert ledger.remember_event("evt-1", {"action": "deployed"}) is True
    assert ledger.remember_event("evt-1", {"action": "deployed"}) is False
    assert ledger.remember_event("evt-2", {"action": "ignored"}) is True


def test_update_of_a_missing_run(ledger) -> None:
    with pytest.raises(NotFoundError):
        update(ledger, "nope", lambda r: r)


def test_settings_choose_the_ledger(azurite, tmp_path) -> None:
    from gitops.ledger.blob import BlobLedger
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.wiring import ledger_from
    from gitops.settings import Settings

    assert isinstance(ledger_from(Settings.load({}), tmp_path), LocalLedger)
    chosen = ledger_from(Settings.load({"GITOPS_LEDGER_CONNECTION_STRING": azurite, "GITOPS_LEDGER_CONTAINER": "chosen"}), tmp_path)
    assert isinstance(chosen, BlobLedger)
    chosen.put(_record(), None)
    assert chosen.get("r1") is not None


def test_a_run_is_retired_one_way_wherever_that_is_decided() -> None:
    """Cleanup, the watch and `gitops delete` each retired a run their own way (one kept the deployment it no longer
    has); #26 asks for one owner of a run's status: this is the first transition given one."""
    import ast

    from gitops.ledger.model import RunRecord
    from tests.conftest import REPO_ROOT

    live = RunRecord(run="r1", backend="local", digest="d", job_name="j", endpoint="e", deployment="v1", status="live")
    retired = live.retired("endpoint e deleted", at=5.0)
    assert (retired.status, retired.deployment, retired.history[-1].note, retired.serves) == ("retired", None, "endpoint e deleted", False)
    writers = []
    for path in (REPO_ROOT / "gitops").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "moved" and node.args:
                first = node.args[0]
                if getattr(first, "attr", getattr(first, "value", None)) in ("RETIRED", "retired"):
                    writers.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert len(writers) == 1 and writers[0].startswith("gitops/ledger/model.py:"), writers  # RunRecord.retired alone


def test_a_run_moves_only_as_the_transition_table_allows_and_nothing_else_writes_a_status() -> None:
    """#26: one owner of a run's status. Every status has its moves; an illegal one names the run and both statuses;
    no module of gitops/ but the ledger's model writes a status (model_copy's update, or a constructor's status=)."""
    import ast

    from gitops.errors import TransitionError
    from gitops.ledger.model import RunRecord
    from gitops.ledger.transitions import TRANSITIONS
    from tests.conftest import REPO_ROOT

    assert set(TRANSITIONS) == set(RunStatus) and all(set(moves) <= set(RunStatus) for moves in TRANSITIONS.values())
    live = RunRecord(run="r1", backend="local", digest="d", job_name="j", status="live")
    with pytest.raises(TransitionError, match="run r1: live -> held is not a move a run makes") as refused:
        live.moved(RunStatus.HELD, by=Asker.STEP)
    assert "rolling_back" in (refused.value.hint or "")
    # who asks matters: the step machine never rolls back a live run, a person does
    with pytest.raises(TransitionError, match="run r1: live -> rolling_back is not the step machine's to ask") as refused:
        live.moved(RunStatus.ROLLING_BACK, by=Asker.STEP)
    assert refused.value.hint == "only a person moves a run that way"
    back = live.moved(RunStatus.ROLLING_BACK, by=Asker.PERSON).moved(RunStatus.ROLLED_BACK, by=Asker.STEP)
    assert back.moved(RunStatus.SUBMITTED, by=Asker.VERSION).status == "submitted"
    assert json.loads(back.model_dump_json())["status"] == "rolled_back"  # stored as the plain string it always was
    writers = []
    for path in (REPO_ROOT / "gitops").rglob("*.py"):
        if path == REPO_ROOT / "gitops" / "ledger" / "model.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
            updates = [k.value for k in node.keywords if k.arg == "update" and getattr(node.func, "attr", "") == "model_copy"]
            if any(isinstance(u, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "status" for k in u.keys) for u in updates):
                writers.append(f"{where} (model_copy(update={{'status': ...}}))")
            if getattr(node.func, "id", "") == "RunRecord" and any(k.arg == "status" for k in node.keywords):
                writers.append(f"{where} (RunRecord(status=...))")
    assert writers == [], writers
