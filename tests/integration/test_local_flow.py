"""The whole loop on the local backend, for real: a CPU LoRA fine-tune, MLflow, a loopback endpoint.

One workspace for the module (fine-tunes take seconds each); tests run in file order and build on
each other like a user's day: first run goes live, the endpoint is called, a bad version rolls back,
a change while a job runs is refused, and deleting the endpoint stops its process.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from gitops.backends.local.backend import LocalBackend
from gitops.backends.local.processes import is_running
from gitops.errors import ConflictError
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import Ledger
from gitops.lifecycle.flow import Lifecycle
from gitops.report.metrics import MlflowMetricsReader
from gitops.spec.validate import SpecValidation, validate_text
from pipelines.synth import write_dataset

pytestmark = pytest.mark.slow

SPEC = """
name: flow-run
backend: local
model: {{registry: local, name: tiny-phi3}}
data: {{train_path: {train}, test_path: {test}}}
finetune:
  params: {{max_steps: {steps}, per_device_train_batch_size: 8, learning_rate: {lr}, apply_lora: true, lora_alpha: 16,
           max_seq_length: 128, logging_steps: 5, warmup_steps: 2}}
deploy:
  endpoint: flow-ep
  smoke_test:
    messages: [{{role: user, content: Tell me about rain.}}]
    parameters: {{max_new_tokens: 8, do_sample: false}}
    max_latency_ms: {latency}
  gate: {{enabled: false}}  # these scenarios are about the lifecycle's machinery; the gate has its own
lifecycle: {{supersede: {supersede}}}
"""


class World:
    def __init__(self, root: Path, ledger: Ledger) -> None:
        self.root = root
        self.data = write_dataset(root / "data", rows=160, test_rows=16)
        # The worker only writes its event: the tests deliver it themselves, to control duplicates and races.
        self.backend = LocalBackend(root / "ws")
        self.ledger = ledger
        self.lifecycle = Lifecycle(
            ledger,
            lambda name: self.backend,
            topic=self.backend.topic,
            reader_for=lambda name: MlflowMetricsReader(self.backend.ws.tracking_uri),
        )

    def spec(self, steps: int = 40, lr: str = "3.0e-3", latency: int = 60000, supersede: bool = False) -> SpecValidation:
        text = textwrap.dedent(
            SPEC.format(
                train=self.data["train_sft"],
                test=self.data["test_sft"],
                steps=steps,
                lr=lr,
                latency=latency,
                supersede=str(supersede).lower(),
            )
        )
        result = validate_text(text, "flow-run.yaml")
        assert result.ok, result.findings
        return result

    def wait_job(self, job: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backend.get_job(job)
            assert status is not None
            if status.state.terminal:
                return status.state.value
            time.sleep(0.5)
        raise AssertionError(f"job {job} did not finish; log: {(self.backend.ws.job_dir(job) / 'job.log').read_text()[-2000:]}")

    def event_of(self, job: str, status: str) -> dict:
        return json.loads((self.backend.ws.events_dir / f"{job}-{status}.json").read_text())

    def record(self):
        got = self.lifecycle.ledger.get("flow-run")
        assert got is not None
        return got[0]


@pytest.fixture(scope="module", params=["files", "blob"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(f"flow-{request.param}")
    if request.param == "files":
        ledger: Ledger = LocalLedger(root / "ledger")
    else:
        from gitops.ledger.blob import BlobLedger

        ledger = BlobLedger.from_connection_string(request.getfixturevalue("azurite"), "flow-ledger")
    w = World(root, ledger)
    yield w
    for info in w.backend.list_endpoints():
        w.backend.delete_endpoint(info.name)
    for job_dir in (w.backend.ws.root / "jobs").iterdir():
        w.backend.cancel_job(job_dir.name)


def test_first_run_goes_live_once_under_concurrent_duplicate_events(world: World) -> None:
    record = world.lifecycle.submit(world.spec())
    assert record.status == "submitted"
    assert world.wait_job(record.job_name) == "completed"
    event = world.event_of(record.job_name, "completed")
    assert event["eventType"] == "Microsoft.MachineLearningServices.RunCompleted"
    assert event["data"]["runTags"]["gitops_run"] == "flow-run"

    decisions: list = []

    def deliver_and_drive() -> None:  # two handlers at once, each then driving the run as a queue consumer would
        decisions.extend(world.lifecycle.on_job_event(event))
        world.lifecycle.settle("flow-run")

    threads = [threading.Thread(target=deliver_and_drive) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(d.action for d in decisions) == ["duplicate", "scheduled"]
    assert world.lifecycle.on_job_event(event)[0].action == "duplicate"  # a late redelivery too

    live = world.record()
    assert live.status == "live" and live.smoke is not None and live.smoke.ok and live.smoke.reply_excerpt
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and len(info.deployments) == 1
    assert info.traffic == {live.deployment: 100}
    assert info.tags["managed_by"] == "finetune-gitops"
    statuses = [h.status for h in live.history]
    assert statuses[0] == "submitted" and "deploying" in statuses and statuses[-1] == "live"
    assert any(h.note.startswith("deployment ") and h.note.endswith(" ready") for h in live.history)  # the steps, told
    assert live.report is not None and live.report["job_name"] == live.job_name  # the report rides with the record
    assert live.report["final_train_loss"] is not None and live.report["smoke_ok"] is True


def test_training_was_logged_and_registered_in_mlflow(world: World) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=world.backend.ws.tracking_uri, registry_uri=world.backend.ws.tracking_uri)
    record = world.record()
    (mv,) = client.search_model_versions("name='flow-run'")
    assert str(mv.version) == record.model_version
    assert mv.tags["gitops_run"] == "flow-run" and mv.tags["gitops_job"] == record.job_name
    # The content digest computed where the model was trained is the digest of the files registered (#27).
    from mlflow.artifacts import download_artifacts

    from pipelines.model_digest import content_digest

    registered = download_artifacts(
        artifact_uri=f"models:/flow-run/{mv.version}",
        dst_path=str(world.backend.ws.root / "check"),
        tracking_uri=world.backend.ws.tracking_uri,
    )
    assert mv.tags["gitops_content_digest"] == content_digest(registered)
    assert str(client.get_model_version_by_alias("flow-run", "candidate").version) == str(mv.version)
    experiment = client.get_experiment_by_name("chat_completion_tiny-phi3")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id])[0]
    assert run.data.params["learning_rate"] == "0.003" and run.data.params["apply_lora"] == "true"
    losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert "eval_loss" in run.data.metrics and run.data.metrics["train_tokens"] > 0
    assert (world.backend.ws.endpoint_dir("flow-ep") / "key").stat().st_mode & 0o777 == 0o600


def test_the_dashboard_shows_the_local_run_with_the_curves_its_fine_tune_logged(world: World) -> None:
    """The same pages over the local backend's ledger (files, or blobs on Azurite) and its MLflow store."""
    from html.parser import HTMLParser

    from gitops.cost.prices import committed_snapshot
    from gitops.dashboard.pages import DashboardSource, respond

    source = DashboardSource(world.lifecycle.ledger, world.lifecycle.reader_for, time.time, committed_snapshot(), "acme/models")
    record = world.record()
    listing = respond(source, "/").body.decode()
    assert 'data-run="flow-run"' in listing and f'{record.deployment}</span> <span class="share">100%' in listing
    page = respond(source, "/runs/flow-run").body.decode()
    tags: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append(tag)  # type: ignore[method-assign]
    parser.feed(page)
    assert tags.count("polyline") >= 2  # the train loss and the eval loss the tiny model's fine-tune logged
    assert "no cloud cost (this machine)" in page and "answered" in page
    # gitops status NAME says the same, and how long the serving deployment has been paid for since its last request
    from gitops.cli.describe_cmds import describe

    (cost,) = [x for x in describe(world.lifecycle, record).splitlines() if x.startswith("cost ")]
    assert "no cloud cost (this machine):" in cost and "instance-hours" in cost
    assert "since its last request" in cost or "idle hours unknown" in cost, cost


def test_score_contract_over_http(world: World) -> None:
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None
    key = world.backend.endpoints.key("flow-ep")
    body = {
        "input_data": {
            "input_string": [{"role": "user", "content": "Tell me about the moon."}],
            "parameters": {"max_new_tokens": 4, "do_sample": True, "temperature": 0.7, "top_p": 0.9},
        }
    }
    auth = {"Authorization": f"Bearer {key}"}
    ok = requests.post(info.scoring_uri, json=body, headers=auth, timeout=30)
    assert ok.status_code == 200 and isinstance(ok.json()["output"], str)
    assert ok.headers["azureml-model-deployment"] == world.record().deployment
    flat = requests.post(info.scoring_uri, json=[{"role": "user", "content": "hi"}], headers=auth, timeout=30)
    assert flat.status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
        denied = requests.post(info.scoring_uri, json=body, headers=headers, timeout=30)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "Unauthorized"
        assert key not in denied.text
    bad = requests.post(info.scoring_uri, json={"nope": 1}, headers=auth, timeout=30)
    assert bad.status_code == 400 and "input_string" in bad.json()["error"]["message"]
    not_json = requests.post(info.scoring_uri, data=b"{", headers={**auth, "Content-Type": "application/json"}, timeout=30)
    assert not_json.status_code == 400
    bad_param = requests.post(
        info.scoring_uri,
        json={"input_data": {"input_string": [{"role": "user", "content": "x"}], "parameters": {"max_new_tokens": 0}}},
        headers=auth,
        timeout=30,
    )
    assert bad_param.status_code == 400 and "max_new_tokens" in bad_param.json()["error"]["message"]
    missing = requests.post(info.scoring_uri, json=body, headers={**auth, "azureml-model-deployment": "nope"}, timeout=30)
    assert missing.status_code == 404
    huge = {"input_data": {"input_string": [{"role": "user", "content": "x" * 1_000_000}], "parameters": {}}}
    too_big = requests.post(info.scoring_uri, json=huge, headers=auth, timeout=30)  # refused before any generation
    assert too_big.status_code == 413 and "at most" in too_big.json()["error"]["message"]
    nan = requests.post(
        info.scoring_uri,
        data=b'{"input_data": {"input_string": [{"role": "user", "content": "x"}], "parameters": {"temperature": NaN}}}',
        headers={**auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert nan.status_code == 400
    greedy = requests.post(
        info.scoring_uri,
        json={"input_data": {"input_string": [{"role": "user", "content": "x"}], "parameters": {"max_new_tokens": 100000}}},
        headers=auth,
        timeout=30,
    )
    assert greedy.status_code == 400 and "max_new_tokens" in greedy.json()["error"]["message"]
    port = int(info.scoring_uri.split(":")[2].split("/")[0])
    assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200
    assert requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json() == {"status": "ready"}  # no key: no names
    assert set(requests.get(f"http://127.0.0.1:{port}/health/ready", headers=auth, timeout=5).json()) == {
        "status",
        "deployments",
        "traffic",
    }
    time.sleep(1.5)  # stats are flushed once a second
    usage = world.backend.usage(["flow-ep"], window=None)["flow-ep"]  # type: ignore[arg-type]
    assert usage.known and usage.requests is not None and usage.requests >= 5 and usage.last_request_at is not None


def test_same_spec_same_digest_is_not_submitted_twice(world: World) -> None:
    before = sorted(p.name for p in (world.backend.ws.root / "jobs").iterdir())
    again = world.lifecycle.submit(world.spec())
    assert again.status == "live" and again.job_name == world.record().job_name
    assert sorted(p.name for p in (world.backend.ws.root / "jobs").iterdir()) == before


def test_failed_smoke_test_rolls_back_and_old_deployment_keeps_serving(world: World) -> None:
    old = world.record().deployment
    record = world.lifecycle.submit(world.spec(steps=10, lr="1.0e-3", latency=1))  # no reply comes back in 1 ms
    assert world.wait_job(record.job_name) == "completed"
    (decision,) = world.lifecycle.on_job_event(world.event_of(record.job_name, "completed"))
    assert decision.action == "scheduled"
    after = world.lifecycle.settle("flow-run")
    assert after.error is not None and "latency" in after.error
    assert after.status == "rolled_back" and after.deployment == old and after.smoke is not None and not after.smoke.ok
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and [d.name for d in info.deployments] == [old] and info.traffic == {old: 100}
    assert world.backend.invoke("flow-ep", [{"role": "user", "content": "hi"}])  # type: ignore[arg-type]  # the bare message list the server takes too.status_code == 200


class Killed(BaseException):
    """Stands for the process dying: no `except Exception` in the flow can catch it."""


class DiesAfterCreatingTheDeployment:
    """The real local backend, except that the process 'dies' right after the new deployment exists."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def begin_deployment(self, *args, **kwargs):
        self._backend.begin_deployment(*args, **kwargs)
        raise Killed()


def test_process_killed_between_two_steps_is_completed_by_reconcile(world: World) -> None:
    old = world.record().deployment
    record = world.lifecycle.submit(world.spec(steps=20, lr="2.5e-3"))
    assert world.wait_job(record.job_name) == "completed"
    dying = Lifecycle(world.ledger, lambda name: DiesAfterCreatingTheDeployment(world.backend), topic=world.backend.topic)
    assert dying.on_job_event(world.event_of(record.job_name, "completed"))[0].action == "scheduled"
    with pytest.raises(Killed):
        dying.advance("flow-run")
    stuck = world.record()
    assert stuck.status == "deploying" and stuck.cursor is not None and stuck.cursor.step == "create_deployment"
    assert stuck.claimed_until is not None and stuck.claimed_until - time.time() <= 300  # minutes, not an hour
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and info.traffic[old] == 100 and len(info.deployments) == 2  # the old one still serves
    assert world.lifecycle.reconcile() == []  # the claim's lease still runs: nobody takes over
    assert world.record().status == "deploying"
    # Time passes: the lease runs out (set in the ledger, rather than waiting five minutes).
    got = world.ledger.get("flow-run")
    assert got is not None
    world.ledger.put(got[0].model_copy(update={"claimed_until": time.time() - 1}), got[1])
    (decision,) = world.lifecycle.reconcile()
    assert decision.action == "live"
    healed = world.record()
    assert healed.status == "live" and healed.deployment != old and healed.claimed_until is None and healed.cursor is None
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and [d.name for d in info.deployments] == [healed.deployment]
    assert info.traffic == {healed.deployment: 100}
    assert [h.note for h in healed.history].count(f"deployment {healed.deployment} succeeded") == 1  # created once


def test_change_while_job_runs_is_refused_or_supersedes_and_cancel_is_recorded(world: World) -> None:
    first = world.lifecycle.submit(world.spec(steps=100000, lr="2.0e-3"))
    with pytest.raises(ConflictError, match="still submitted|still running"):
        world.lifecycle.submit(world.spec(steps=100000, lr="4.0e-3"))
    record = world.lifecycle.submit(world.spec(steps=100000, lr="4.0e-3", supersede=True))
    assert record.job_name != first.job_name
    assert world.wait_job(first.job_name) == "canceled"  # one fine-tune per run name at a time
    assert [h.note for h in record.history if h.status == "superseded"] == [f"job {first.job_name} canceled"]
    assert world.lifecycle.on_job_event(world.event_of(first.job_name, "canceled"))[0].reason.startswith(
        f"job {first.job_name} is not the run's current job"
    )
    world.backend.cancel_job(record.job_name)
    assert world.wait_job(record.job_name) == "canceled"
    decisions = world.lifecycle.reconcile()  # as if the event were lost
    assert [(d.run, d.action) for d in decisions] == [("flow-run", "canceled")]
    assert world.record().status == "canceled"
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and sum(info.traffic.values()) == 100  # still serving the live version


def test_a_dead_endpoint_shows_unhealthy_and_reconcile_restarts_it(world: World) -> None:
    import os
    import signal

    import gitops.util.files as files

    pid = files.read_json(world.backend.ws.endpoint_dir("flow-ep") / "endpoint.json")["pid"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(pid, str(world.backend.ws.endpoint_dir("flow-ep"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and info.deployments and not any(d.healthy for d in info.deployments)
    live_dep = world.record().deployment
    (decision,) = [d for d in world.lifecycle.reconcile() if d.run == "flow-run"]  # the timer notices and starts it again
    assert decision.action == "restarted"
    restarted = world.backend.get_endpoint("flow-ep")
    assert restarted is not None and all(d.healthy for d in restarted.deployments) and restarted.traffic[live_dep] == 100
    assert world.backend.invoke("flow-ep", [{"role": "user", "content": "hi"}])  # type: ignore[arg-type]  # the bare message list the server takes too.status_code == 200
    assert world.lifecycle.reconcile() == []  # up again: nothing to do


def test_a_hand_edited_local_endpoint_is_drift_and_fix_restores_it(world: World) -> None:
    from gitops.watch.scan import restore, scan

    live = world.record()
    world.backend.begin_traffic("flow-ep", {})  # by hand: the serving deployment loses its traffic
    result = scan([], world.lifecycle.ledger, lambda _: world.backend, time.time(), repo=world.lifecycle.repo)
    (drift,) = [f for f in result.findings if f.run == "flow-run"]
    assert drift.kind == "drift" and "no traffic" in drift.what and drift.fixable
    assert restore(live, world.backend, time.time(), apply=True, repo=world.lifecycle.repo) == [
        f"flow-run: flow-ep traffic no traffic -> {live.deployment} 100%"
    ]
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None and info.traffic == {live.deployment: 100}
    assert [
        f
        for f in scan([], world.lifecycle.ledger, lambda _: world.backend, time.time(), repo=world.lifecycle.repo).findings
        if f.run == "flow-run"
    ] == []


def test_a_killed_worker_is_reported_failed_not_running(tmp_path: Path) -> None:
    import os
    import signal

    from gitops.backends.local.jobs import LocalJobs
    from gitops.backends.local.workspace import LocalWorkspace
    from pipelines.local_finetune import FinetuneRequest

    jobs = LocalJobs(LocalWorkspace.at(tmp_path / "ws"))
    submitted = jobs.submit(
        FinetuneRequest(
            job_name="doomed",
            base_model_dir=str(tmp_path / "none"),
            train_path=str(tmp_path / "none.jsonl"),
            test_path=None,
            output_dir=str(tmp_path / "out"),
        )
    )
    assert submitted.state.value in ("queued", "running")
    pid = int((jobs.ws.job_dir("doomed") / "pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(pid, str(jobs.ws.job_dir("doomed"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    status = jobs.get("doomed")
    assert status is not None and status.state.value == "failed"
    assert status.error == "the worker process exited without a result (crashed or killed)"
    again = jobs.get("doomed")
    assert again is not None and again.state.value == "failed"  # recorded, not recomputed differently
    event = json.loads((jobs.ws.events_dir / "doomed-failed.json").read_text())
    assert event["eventType"].endswith("RunStatusChanged") and event["data"]["runStatus"] == "Failed"


def test_deleting_the_endpoint_stops_its_process(world: World) -> None:
    info = world.backend.get_endpoint("flow-ep")
    assert info is not None
    import gitops.util.files as files

    config = files.read_json(world.backend.ws.endpoint_dir("flow-ep") / "endpoint.json")
    pid, port = config["pid"], config["port"]
    world.backend.delete_endpoint("flow-ep")
    world.backend.delete_endpoint("flow-ep")  # idempotent
    assert not is_running(pid, str(world.backend.ws.endpoint_dir("flow-ep")))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert world.backend.get_endpoint("flow-ep") is None
