"""One server per local endpoint, nothing orphaned, a stop that sticks, and one reconcile that finishes a run whose
command stopped during training. The run is real (a CPU fine-tune of the tiny model, a server on 127.0.0.1); each
test starts from the endpoint as the module's run left it and puts back what it needs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gitops.backends.local.backend import LocalBackend
from gitops.backends.local.endpoints import SERVER_MODULE
from gitops.backends.local.processes import spawn
from pipelines.synth import write_dataset

pytestmark = pytest.mark.slow

RUN, ENDPOINT = "srv-run", "srv-ep"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = root / "ws"
        self.backend = LocalBackend(self.ws)
        self.first_reconcile: Any = None

    def servers(self) -> list[int]:
        """Every server process this endpoint's folder has, recorded or not."""
        return [pid for pid, where in self.backend.endpoints.processes() if where.name == ENDPOINT]

    def config(self) -> dict[str, Any]:
        return dict(json.loads((self.ws / "endpoints" / ENDPOINT / "endpoint.json").read_text()))

    def answers(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.config()['port']}/health/live", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def kill_server(self) -> None:
        for pid in self.servers():
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.servers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.servers()

    def record(self, cli: Any) -> dict[str, Any]:
        (record,) = [r for r in json.loads(cli("status", "--json").out) if r["run"] == RUN]
        return dict(record)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    w = Workspace(tmp_path_factory.mktemp("servers"))
    data = write_dataset(w.root / "data", rows=80, test_rows=8)
    (w.root / "runs").mkdir()
    (w.root / "runs" / f"{RUN}.yaml").write_text(
        f"name: {RUN}\nbackend: local\nmodel: {{registry: local, name: tiny-phi3}}\n"
        f"data: {{train_path: {data['train_sft']}, test_path: {data['test_sft']}}}\n"
        "finetune:\n  params: {max_steps: 8, per_device_train_batch_size: 8, learning_rate: 3.0e-3, apply_lora: true,"
        " max_seq_length: 128}\n"
        f"deploy:\n  endpoint: {ENDPOINT}\n  smoke_test: {{parameters: {{max_new_tokens: 4}}}}\n"
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GITOPS_WORKSPACE", str(w.ws))
        env.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
        yield w
    for pid in w.backend.endpoints.processes():  # whatever a failed test left running
        os.killpg(pid[0], signal.SIGKILL)


@pytest.fixture
def live(world: Workspace, cli) -> Workspace:
    """The run live, its server up: made once (the submitting command stops during training, the job finishes on
    its own, one `gitops reconcile` takes it from there), then started again where a test left it down."""
    if world.first_reconcile is None:
        stopped = cli("run", str(world.root / "runs" / f"{RUN}.yaml"), "--timeout", "1")
        assert stopped.exit_code == 1 and "not finished after 1s" in stopped.err, stopped.out + stopped.err
        job = world.record(cli)["job_name"]
        deadline = time.monotonic() + 600
        while not (status := world.backend.get_job(job)) or not status.state.terminal:
            assert time.monotonic() < deadline, "the job never finished"
            time.sleep(0.5)
        from gitops.lifecycle.wiring import local_lifecycle

        lifecycle = local_lifecycle()  # what `gitops reconcile` builds, on a machine so busy that every invocation's
        lifecycle.step_budget_s = 0.0  # budget is spent after one step: the rest must still follow in the same call
        world.first_reconcile = lifecycle.reconcile()
    if world.record(cli)["status"] == "live" and not world.answers():
        assert cli("start", RUN).exit_code == 0
    return world


def test_one_reconcile_after_the_command_stopped_during_training_takes_the_run_live(live: Workspace, cli) -> None:
    """Once, a first `gitops reconcile` took the steps one invocation's budget allowed and a second was needed."""
    (once,) = live.first_reconcile
    assert (once.run, once.action) == (RUN, "live"), once
    record = live.record(cli)
    assert record["status"] == "live" and record["cursor"] is None and live.answers()


def test_a_server_a_person_stopped_stays_stopped_until_they_start_it(live: Workspace, cli) -> None:
    port = live.config()["port"]
    assert cli("stop", RUN).exit_code == 0
    assert not live.servers()
    reconciled = cli("reconcile")
    assert reconciled.exit_code == 0 and "restarted" not in reconciled.out, reconciled.out
    assert not live.servers() and "nothing to do" in reconciled.out
    assert f"STOPPED (gitops start {RUN})" in cli("status").out
    assert live.record(cli)["stopped_at"] is not None
    started = cli("start", RUN)
    assert started.exit_code == 0 and live.answers() and live.record(cli)["stopped_at"] is None
    assert live.config()["port"] == port and f":{port}/score" in started.out  # the URL printed before still works
    notes = [h["note"] for h in live.record(cli)["history"]]
    assert notes[-2:] == ["endpoint server stopped by gitops stop", "endpoint server started by gitops start"]
    # a server that died (nobody stopped it) is still started again
    live.kill_server()
    restarted = cli("reconcile")
    assert "restarted" in restarted.out and live.answers() and live.config()["port"] == port


def test_concurrent_reconciles_of_a_dead_server_start_one(live: Workspace) -> None:
    live.kill_server()
    env = {**os.environ, "GITOPS_WORKSPACE": str(live.ws)}
    code = "from gitops.cli import main; main(['reconcile'])"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(4)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    (server,) = live.servers()  # once: four servers, one pid recorded
    assert live.config()["pid"] == server and live.answers()


def test_servers_no_record_names_are_listed_stopped_and_deleted_with_their_endpoint(live: Workspace, cli) -> None:
    ep_dir = live.ws / "endpoints" / ENDPOINT
    recorded = live.config()["pid"]
    stray = spawn(["-m", SERVER_MODULE, str(ep_dir), str(_free_port())], live.root / "stray.log")  # a lost race
    deadline = time.monotonic() + 30
    while stray.pid not in live.servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    listed = cli("endpoints")
    assert f"{ENDPOINT}" in listed.out and f"{stray.pid}" in listed.out and "ORPHAN" in listed.out, listed.out
    stopped = cli("endpoints", "--stop-all")
    assert stopped.exit_code == 0 and "1 orphan server(s)" in stopped.out, stopped.out
    assert live.servers() == [] and stray.wait(timeout=10) is not None
    assert recorded != stray.pid

    # a start finds and stops a stray before it starts the one server; delete stops every server of the endpoint
    assert cli("start", RUN).exit_code == 0
    stray = spawn(["-m", SERVER_MODULE, str(ep_dir), str(_free_port())], live.root / "stray.log")
    deadline = time.monotonic() + 30
    while stray.pid not in live.servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(live.servers()) == 2
    deleted = cli("delete", RUN)
    assert deleted.exit_code == 0 and live.servers() == [] and stray.wait(timeout=10) is not None
    assert cli("endpoints").out.startswith("no local endpoints")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
