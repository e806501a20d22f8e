"""One bad record must not take the rest down: each is reported (file and reason) and skipped, the others carry
on, and cleanup never deletes on a record it could not read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitops.cleanup.policy import keep_tag_says_keep
from gitops.errors import CorruptRecordError
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import RunRecord
from gitops.ledger.transitions import Asker, RunStatus

GOOD = RunRecord(run="good", backend="local", digest="d" * 64, job_name="job-good").moved(RunStatus.RUNNING, by=Asker.STEP)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated", '{"version": "1", "record": {"run": "trunc'),
        ("empty", ""),
        ("junk", "[1, 2, 3]"),
        (
            "unknown-status",
            '{"version": "1", "record": {"run": "x", "backend": "local", "digest": "d", "job_name": "j", "status": "zombie"}}',
        ),
        ("binary", "\udcff\udcfe"),
        ("dir", None),
    ],
)
def test_a_bad_ledger_file_is_reported_and_skipped(tmp_path: Path, name: str, content: str | None) -> None:
    ledger = LocalLedger(tmp_path)
    ledger.put(GOOD, None)
    path = tmp_path / f"{name}.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content.encode("utf-8", errors="surrogateescape"))
    assert [r.run for r in ledger.list()] == ["good"]
    ((where, why),) = ledger.damaged
    assert where == str(path) and why.startswith(f"ledger record {path} cannot be read")
    with pytest.raises(CorruptRecordError):
        ledger.get(name)


def test_a_corrupt_blob_is_reported_and_skipped(azurite) -> None:
    import uuid

    from gitops.ledger.blob import RUNS_PREFIX, BlobLedger

    ledger = BlobLedger.from_connection_string(azurite, f"bad-{uuid.uuid4().hex[:10]}")
    ledger.put(GOOD, None)
    ledger.container.upload_blob(f"{RUNS_PREFIX}broken.json", b'{"run": ')
    assert [r.run for r in ledger.list()] == ["good"] and ledger.damaged[0][0] == f"{RUNS_PREFIX}broken.json"


def test_reconcile_status_and_cleanup_carry_on_past_a_bad_record(tmp_path: Path, cli, monkeypatch) -> None:
    from gitops.backends.local.backend import LocalBackend
    from gitops.cleanup.run import run_cleanup
    from gitops.spec.policy import Policy

    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    backend = LocalBackend(tmp_path / "ws")
    ledger = LocalLedger(backend.ws.root / "ledger")
    ledger.put(GOOD, None)
    (backend.ws.root / "ledger" / "lost.json").write_text("{")
    # An endpoint of the unreadable run, idle and expired by every rule, with its config written as ensure() would.
    ep = backend.ws.endpoint_dir("lost-ep")
    ep.mkdir(parents=True)
    old = (datetime.now(UTC) - timedelta(days=30)).timestamp()
    (ep / "endpoint.json").write_text(
        '{"name": "lost-ep", "tags": {"managed_by": "finetune-gitops", "gitops_repo": "acme/models", "gitops_run": "lost"}, '
        f'"deployments": {{}}, "traffic": {{}}, "created_at": {old}}}'
    )
    (backend.ws.endpoint_dir("bad-ep")).mkdir(parents=True)
    (backend.ws.endpoint_dir("bad-ep") / "endpoint.json").write_text("not json")
    status = cli("status")
    # Each command shows the rest, names the bad one, and says in its exit code that something was skipped.
    assert status.exit_code == 1 and "good" in status.out and "lost.json cannot be read" in status.err
    reconciled = cli("reconcile")
    assert reconciled.exit_code == 1 and "lost: skipped" in reconciled.err
    verdicts = run_cleanup(backend, ledger, Policy(), now=datetime.now(UTC) + timedelta(days=30), repo="acme/models")
    (verdict,) = [v for v in verdicts if v.endpoint == "lost-ep"]
    assert verdict.action == "skip" and "cannot be read" in verdict.reasons[0]
    assert backend.get_endpoint("lost-ep") is not None and not [v for v in verdicts if v.endpoint == "bad-ep"]


@pytest.mark.parametrize(
    ("value", "keep"),
    [
        ("true", True),
        ("on", True),
        ("YES", True),
        ("1", True),
        ("maybe?", True),
        ("garbage\x00", True),
        ("false", False),
        ("off", False),
        ("", False),
        (None, False),
    ],
)
def test_keep_tags_accept_the_usual_words_and_keep_what_they_cannot_read(value: str | None, keep: bool) -> None:
    assert keep_tag_says_keep(value) is keep


@pytest.mark.parametrize("value", ["garbage", ";;;", "AccountKey=abc"])
def test_a_malformed_ledger_connection_string_is_one_line_without_the_secret(value: str) -> None:
    from gitops.errors import ConfigurationError
    from gitops.ledger.blob import BlobLedger

    with pytest.raises(ConfigurationError) as caught:
        BlobLedger.from_connection_string(value, "ledger")
    assert "not a valid Azure Storage connection string" in caught.value.headline and value not in str(caught.value)


def _expired_endpoint(backend, name: str, run: str) -> None:
    """An endpoint of ``run``, idle and expired by every rule, with its config written as ensure() would."""
    ep = backend.ws.endpoint_dir(name)
    ep.mkdir(parents=True)
    old = (datetime.now(UTC) - timedelta(days=30)).timestamp()
    (ep / "endpoint.json").write_text(
        f'{{"name": "{name}", "tags": {{"managed_by": "finetune-gitops", "gitops_repo": "acme/models", "gitops_run": "{run}"}}, '
        f'"deployments": {{}}, "traffic": {{}}, "created_at": {old}}}'
    )


def test_a_stored_spec_todays_schema_refuses_is_named_and_skipped_and_the_rest_cleaned(tmp_path: Path, cli, monkeypatch) -> None:
    """``lifecycle.expire_after: 1000000000d`` was accepted once; today it fails the schema. Cleanup once raised a
    ValidationError before any endpoint was processed, on every timer tick."""
    from gitops.backends.local.backend import LocalBackend
    from gitops.cleanup.run import run_cleanup
    from gitops.spec.policy import Policy
    from gitops.spec.validate import validate_file
    from tests.conftest import REPO_ROOT

    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    backend = LocalBackend(tmp_path / "ws")
    ledger = LocalLedger(backend.ws.root / "ledger")
    spec = validate_file(REPO_ROOT / "runs/local-tiny.yaml").require().model_dump(mode="json")
    spec["lifecycle"]["expire_after"] = "1000000000d"
    old = RunRecord(run="old", backend="local", digest="o" * 64, job_name="job-old", endpoint="old-ep", spec=spec, status="live")
    ledger.put(old, None)
    ledger.put(GOOD.model_copy(update={"endpoint": "good-ep", "status": "live"}), None)
    _expired_endpoint(backend, "old-ep", "old")
    _expired_endpoint(backend, "good-ep", "good")
    later = datetime.now(UTC) + timedelta(days=30)
    verdicts = {v.endpoint: v for v in run_cleanup(backend, ledger, Policy(), now=later, repo="acme/models")}
    assert verdicts["good-ep"].action == "delete" and backend.get_endpoint("good-ep") is None  # the rest goes on
    skipped = verdicts["old-ep"]
    assert skipped.action == "skip" and skipped.unreadable and backend.get_endpoint("old-ep") is not None
    assert "run old" in skipped.reasons[0] and "spec.lifecycle.expire_after" in skipped.reasons[0]
    _expired_endpoint(backend, "good2-ep", "good")
    result = cli("cleanup", "--repo", str(REPO_ROOT))
    assert result.exit_code == 1 and "old-ep" in result.out and "cannot be read" in result.err  # the exit code says so


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda entry: entry["record"]["cursor"].update(step="a_step_of_another_version"), "a_step_of_another_version"),
        (lambda entry: entry.update(version="abc"), "version: not a whole number"),
    ],
    ids=["unknown-cursor-step", "version-abc"],
)
def test_reconcile_names_a_record_it_cannot_act_on_and_drives_the_others(tmp_path: Path, cli, monkeypatch, damage, reason) -> None:
    """A cursor step this version lacks once raised KeyError out of `gitops reconcile` (the next run, its job
    completed, stayed submitted); ``"version": "abc"`` a ValueError traceback."""
    import json

    from gitops.backends.local.backend import LocalBackend
    from gitops.ledger.model import Cursor

    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    backend = LocalBackend(tmp_path / "ws")
    ledger = LocalLedger(backend.ws.root / "ledger")
    now = datetime.now(UTC).timestamp()
    cursor = Cursor(plan="rollout", step="check_job", entered_at=now, deadline_at=now + 3600, started_at=now, not_before=now)
    ledger.put(
        RunRecord(run="aaa-broken", backend="local", digest="a" * 64, job_name="job-a", cursor=cursor).moved(
            RunStatus.DEPLOYING, by=Asker.STEP
        ),
        None,
    )
    path = backend.ws.root / "ledger" / "aaa-broken.json"
    entry = json.loads(path.read_text())
    damage(entry)
    path.write_text(json.dumps(entry))
    # The next run, walked after the broken one.
    ledger.put(
        RunRecord(run="zzz-next", backend="local", digest="z" * 64, job_name="job-never-ran").moved(RunStatus.SUBMITTED, by=Asker.VERSION),
        None,
    )
    result = cli("reconcile")
    assert result.exit_code == 1, result.out + result.err
    assert "aaa-broken: skipped" in result.err and reason in result.err and "Traceback" not in result.err + result.out
    assert "1 run(s) skipped" in result.err


def test_a_corrupt_stats_file_never_stops_the_server_and_never_makes_an_endpoint_idle(tmp_path: Path) -> None:
    """A corrupt ``stats.json`` once killed the local endpoint server at start. The server starts with fresh
    counters, keeps the bad file for a person, and the reset counts as a request, so cleanup never reads it as idle."""
    import json

    from gitops.backends.local.backend import LocalBackend
    from gitops.backends.local.server import EndpointState

    backend = LocalBackend(tmp_path / "ws")
    _expired_endpoint(backend, "ep", "good")
    ep = backend.ws.endpoint_dir("ep")
    (ep / "key").write_text("k")
    for bad in ('{"deployments": ', '{"deployments": [1]}', '{"deployments": {"blue": {"requests": "many"}}}'):
        (ep / "stats.json").write_text(bad)
        state = EndpointState(ep)  # once: JSONDecodeError / AttributeError, and no server
        assert state.stats == {} and (ep / "stats.json.unreadable").read_text() == bad
        state.record("blue", 200, 0.0)
        state.flush()
        written = json.loads((ep / "stats.json").read_text())
        assert written["deployments"]["blue"]["requests"] == 1 and written["reset_at"] == state.reset_at
    (ep / "stats.json").write_text(json.dumps({"deployments": {}, "reset_at": datetime.now(UTC).timestamp()}))
    usage = backend.endpoints.usage("ep")
    assert usage.known and usage.last_request_at is not None and datetime.now(UTC) - usage.last_request_at < timedelta(minutes=1)


def test_a_corrupt_tracking_store_is_one_error_naming_it_never_a_traceback(tmp_path: Path, cli, monkeypatch) -> None:
    from gitops.errors import BackendError
    from gitops.report.metrics import MlflowMetricsReader

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendError, match=r"cannot be read from sqlite:///.*mlflow\.db"):
        MlflowMetricsReader(f"sqlite:///{db}").job_metrics("job-good")
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    LocalLedger(tmp_path / "ws" / "ledger").put(GOOD, None)
    (tmp_path / "ws" / "mlflow.db").write_bytes(b"this is not a database" * 100)
    result = cli("report", "good")
    assert result.exit_code == 6 and result.err.startswith("error: the metrics of job job-good cannot be read")
    assert "Traceback" not in result.err
