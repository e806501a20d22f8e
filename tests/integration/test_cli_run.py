"""The CLI a user runs: `gitops run` through the worker's own job event, then status, invoke, event --dry-run."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from pipelines.synth import write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ws = tmp_path / "ws"
    monkeypatch.setenv("GITOPS_WORKSPACE", str(ws))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    yield ws
    from gitops.backends.local.backend import LocalBackend

    backend = LocalBackend(ws)
    for info in backend.list_endpoints():
        backend.delete_endpoint(info.name)


def test_run_status_invoke_and_event_replay(cli, write, workspace: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", rows=80, test_rows=8)
    spec = write(
        "runs/cli-run.yaml",
        f"""
        name: cli-run
        backend: local
        model: {{registry: local, name: tiny-phi3}}
        data: {{train_path: {data["train_sft"]}, test_path: {data["test_sft"]}}}
        finetune:
          params: {{max_steps: 8, per_device_train_batch_size: 8, learning_rate: 3.0e-3, apply_lora: true, max_seq_length: 128}}
        deploy:
          endpoint: cli-run-ep
          smoke_test: {{parameters: {{max_new_tokens: 4}}}}
        """,
    )
    result = cli("run", str(spec), "--timeout", "600")
    assert result.exit_code == 0, result.out + result.err
    assert "run cli-run: live" in result.out
    assert "smoke test: passed" in result.out
    assert "curl -s http://127.0.0.1:" in result.out and "$GITOPS_KEY" in result.out
    key = (workspace / "endpoints" / "cli-run-ep" / "key").read_text().strip()
    assert key not in result.out + result.err  # the key is never printed

    status = cli("status", "--json")
    (record,) = json.loads(status.out)
    assert record["status"] == "live" and record["smoke"]["ok"] is True
    statuses = [h["status"] for h in record["history"]]
    assert statuses[0] == "submitted" and "deploying" in statuses and statuses[-1] == "live"
    assert record["cursor"] is None and record["updated_at"].endswith("+00:00")  # ISO 8601, UTC
    assert all(h["at"].endswith("+00:00") for h in record["history"])

    reply = cli("invoke", "cli-run", "--message", "Tell me about rain.", "--max-new-tokens", "4")
    assert reply.exit_code == 0 and reply.out.strip() and not reply.out.startswith("error")

    (event_file,) = (workspace / "events").glob("*-completed.json")
    assert record["processed_events"] == [json.loads(event_file.read_text())["id"]]  # the worker's event did it
    dry = cli("event", str(event_file), "--dry-run")
    assert dry.exit_code == 0 and "outcome=completed (run is live)" in dry.out
    replay = cli("event", str(event_file))
    assert replay.exit_code == 0 and "duplicate" in replay.out

    missing = cli("invoke", "no-such-run", "--message", "hi")
    assert missing.exit_code == 4 and "no run or endpoint named 'no-such-run'" in missing.err

    # The endpoint's server outlives the command: it is listed, stopped, started and deleted by name.
    listed = cli("endpoints")
    assert listed.exit_code == 0 and "cli-run-ep" in listed.out and " up " in listed.out and "MiB" in listed.out
    assert cli("stop", "cli-run").exit_code == 0
    assert "DOWN (gitops start NAME)" in cli("endpoints").out
    down = cli("invoke", "cli-run", "--message", "hi", "--max-new-tokens", "2")
    assert down.exit_code != 0 and "`gitops start cli-run` starts it" in down.err
    started = cli("start", "cli-run")
    assert started.exit_code == 0 and "up at http://127.0.0.1:" in started.out
    assert cli("invoke", "cli-run", "--message", "hi", "--max-new-tokens", "2").exit_code == 0

    # A server that runs and answers nobody (stopped by a signal here; a wedge, in life) is stuck: shown as such,
    # and reconcile replaces it.
    import os
    import signal

    config = workspace / "endpoints" / "cli-run-ep" / "endpoint.json"
    stuck_pid = json.loads(config.read_text())["pid"]
    os.kill(stuck_pid, signal.SIGSTOP)
    try:
        assert "STUCK (running, not answering" in cli("endpoints").out
        assert "DOWN (gitops reconcile starts it again)" in cli("status").out
        reconciled = cli("reconcile")
        assert reconciled.exit_code == 0 and "restarted" in reconciled.out, reconciled.out + reconciled.err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck_pid, signal.SIGCONT)
    assert json.loads(config.read_text())["pid"] != stuck_pid
    assert cli("invoke", "cli-run", "--message", "hi", "--max-new-tokens", "2").exit_code == 0

    # Traffic taken off by hand is drift: `reconcile NAME` puts the declared split back.
    from gitops.backends.local.backend import LocalBackend

    LocalBackend(workspace).begin_traffic("cli-run-ep", {})
    restored = cli("reconcile", "cli-run")
    assert restored.exit_code == 0 and "cli-run: cli-run-ep traffic no traffic -> " in restored.out, restored.out
    assert cli("invoke", "cli-run", "--message", "hi", "--max-new-tokens", "2").exit_code == 0
    deleted = cli("delete", "cli-run")
    assert deleted.exit_code == 0 and "run cli-run is retired" in deleted.out
    assert cli("endpoints").out.startswith("no local endpoints") and json.loads(cli("status", "--json").out)[0]["status"] == "retired"


def test_a_worse_version_stops_at_the_gate_with_the_comparison_and_a_person_promotes_it(
    cli, write, workspace: Path, tmp_path: Path
) -> None:
    data = write_dataset(tmp_path / "data", rows=80, test_rows=8)
    text = f"""
        name: gated-run
        backend: local
        model: {{registry: local, name: tiny-phi3}}
        data: {{train_path: {data["train_sft"]}, test_path: {data["test_sft"]}}}
        finetune:
          params: {{max_steps: 16, per_device_train_batch_size: 8, learning_rate: LR, apply_lora: true, max_seq_length: 128,
                   evaluation_strategy: steps, eval_steps: 16}}
        deploy:
          endpoint: gated-run-ep
          smoke_test: {{parameters: {{max_new_tokens: 8}}}}
          gate: {{conversations: 8}}
        """
    first = cli("run", str(write("runs/gated-run.yaml", text.replace("LR", "3.0e-3"))), "--timeout", "600")
    assert first.exit_code == 0 and "gate: passed" in first.out, first.out + first.err
    worse = cli("run", str(write("runs/gated-run.yaml", text.replace("LR", "0.5"))), "--timeout", "600")
    # held for a person: the gate did its work, so 0 (a rerun of `make demo` after trying versions ends cleanly)
    assert worse.exit_code == 0 and "run gated-run: held" in worse.out and "gate: FAILED" in worse.out, worse.out + worse.err
    assert "gitops promote gated-run --reason" in worse.out
    assert "compared with the previous version" in worse.out and "param learning_rate: 0.003 -> 0.5" in worse.out
    assert "final eval loss:" in worse.out and "worse)" in worse.out
    # While the candidate waits, what serves is shown and reached: v1 at 100%, the candidate at 0% by name.
    (held,) = json.loads(cli("status", "--json").out)
    assert held["status"] == "held" and held["serving_model_version"] == "1" and held["model_version"] == "2"
    assert _model_column(cli("status").out, "gated-run").endswith(" v1")
    described = cli("status", "gated-run")  # one run, described whole: what serves, the candidate, the gate, what next
    assert described.exit_code == 0 and "serves     " in described.out and " v1 · 100% · up · http://127.0.0.1:" in described.out
    assert "candidate  " in described.out and "gate       FAILED" in described.out and "  ✗ " in described.out
    assert "next       gitops promote gated-run --reason" in described.out and "job.log" in described.out
    import re

    compared = cli("report", "gated-run")  # v1's smoke test is in the summary kept on the record while v2 is held
    assert re.search(r"smoke latency ms +\d+\.\d+ vs \d+\.\d+", compared.out), compared.out
    logged = cli("logs", "gated-run", "--lines", "3")
    assert logged.exit_code == 0 and "job.log (completed; last 3 lines)" in logged.out, logged.out + logged.err
    assert cli("invoke", "gated-run", "--message", "hi", "--max-new-tokens", "2").exit_code == 0
    candidate = held["cursor"]["deployment"]
    tried = cli("invoke", "gated-run-ep", "--message", "hi", "--max-new-tokens", "2", "--deployment", candidate)
    assert tried.exit_code == 0, tried.out + tried.err  # the endpoint's name is accepted, as start and stop accept it
    promoted = cli("promote", "gated-run", "--reason", "accepted for the demo")
    assert promoted.exit_code == 0 and "run gated-run: live" in promoted.out, promoted.out + promoted.err
    (record,) = json.loads(cli("status", "--json").out)
    assert any("promoted by" in h["note"] and "accepted for the demo" in h["note"] for h in record["history"])
    assert record["serving_model_version"] == record["model_version"] == "2"
    again = cli("run", str(write("runs/gated-run.yaml", text.replace("LR", "0.5"))), "--timeout", "600")
    assert again.exit_code == 0 and "reused" in again.out + again.err and "run gated-run: live" in again.out  # nothing to do

    # A third, worse version, held and then rolled back: v2 still serves, and nothing reads v3 as what serves.
    third = cli("run", str(write("runs/gated-run.yaml", text.replace("LR", "0.7"))), "--timeout", "600")
    assert third.exit_code == 0 and "run gated-run: held" in third.out, third.out + third.err
    assert cli("rollback", "gated-run", "--reason", "not this one").exit_code == 0
    (rejected,) = json.loads(cli("status", "--json").out)
    assert rejected["status"] == "rejected" and rejected["model_version"] == "3" and rejected["serving_model_version"] == "2"
    assert _model_column(cli("status").out, "gated-run").endswith(" v2 (tried v3: rejected)")
    watched = cli("watch", "--offline")  # once: "serves .../2 where the ledger says version 3; fix: merge the spec again"
    assert watched.exit_code == 0 and "no findings" in watched.out, watched.out + watched.err
    assert cli("invoke", "gated-run", "--message", "hi", "--max-new-tokens", "2").exit_code == 0  # v2 answers


def _model_column(status_out: str, run: str) -> str:
    """The model cell of a run's row in `gitops status` (piped: tab-separated, header first)."""
    header, *rows = [line.split("\t") for line in status_out.splitlines() if line]
    (row,) = [r for r in rows if r[0] == run]
    return row[header.index("model")]
