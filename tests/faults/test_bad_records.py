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

GOOD = RunRecord(run="good", backend="local", digest="d" * 64, job_name="job-good").moved("running")


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
    assert status.exit_code == 0 and "good" in status.out and "lost.json cannot be read" in status.err
    assert cli("reconcile").exit_code == 0
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
