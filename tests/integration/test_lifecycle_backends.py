"""One behaviour suite, run against every backend: the same scenarios on the local backend (a real CPU
fine-tune, loopback endpoints) and on the Azure ML backend (the real SDK against the fake REST API).

Each driver knows only how its backend finishes a job and how to make a new version's deployment fail;
the scenarios and their assertions are shared.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gitops.backends.base import Backend
from gitops.cleanup.run import run_cleanup
from gitops.events import build_event
from gitops.ledger.local import LocalLedger
from gitops.lifecycle.flow import Lifecycle
from gitops.spec.policy import Policy
from gitops.spec.validate import SpecValidation, validate_text
from pipelines.synth import make_rows, write_dataset

pytestmark = pytest.mark.slow

COMMON = """
name: behave
data: {{train_path: {train}, test_path: {test}}}
deploy:
  endpoint: behave-ep
  {instance}
  smoke_test:
    messages: [{{role: user, content: Tell me about rain.}}]
    parameters: {{max_new_tokens: 8, do_sample: false}}
    max_latency_ms: {latency}
  request_timeout_ms: {timeout_ms}
  gate: {gate}
  rollout: {rollout}
lifecycle: {{expire_after: 1d, idle_after: {idle}}}
"""
LOCAL = """
backend: local
model: {{registry: local, name: tiny-phi3}}
finetune:
  params: {{max_steps: {steps}, per_device_train_batch_size: 8, learning_rate: {lr}, apply_lora: true, lora_alpha: 16,
           max_seq_length: 128, logging_steps: 5, evaluation_strategy: steps, eval_steps: {steps}}}
"""
AZURE = """
backend: azureml
model: {{registry: azureml, name: Phi-4, version: "8"}}
compute: {{cluster: gpu-cluster-big}}
finetune:
  params: {{learning_rate: {lr}, max_steps: {steps}}}
"""


class Driver:
    kind: str
    backend: Backend

    def __init__(self, root: Path) -> None:
        self.data = write_dataset(root / "data", rows=160, test_rows=16)
        self.lifecycle = Lifecycle(
            LocalLedger(root / "ledger"), lambda name: self.backend, topic=self.topic, reader_for=lambda name: self.reader()
        )
        self.latency = 60000

    def reader(self) -> Any:
        """Where the gate reads training metrics: the backend's MLflow store (a workspace-shaped one for Azure)."""
        raise NotImplementedError

    def worse_spec(self, variant: int = 0, gate: str = "") -> SpecValidation:
        """A version whose model is worse than the one serving, with the gate on (``variant``: another such version;
        ``gate``: more of the gate's settings)."""
        raise NotImplementedError

    def better_spec(self) -> SpecValidation:
        """A version whose model is as good as a sound fine-tune makes it, with the gate on."""
        raise NotImplementedError

    @property
    def topic(self) -> str:
        return self.backend.topic

    def spec(
        self,
        lr: str = "3.0e-3",
        steps: int = 30,
        timeout_ms: int = 90000,
        idle: str = "24h",
        gate: str = "{enabled: false}",
        rollout: str = "null",
        train: str | Path | None = None,
    ) -> SpecValidation:
        """The suite's spec. The gate is off unless a scenario is about it: the others are about provisioning and
        traffic, and a tiny model trained for a few steps is not reliably better than the one before (``train``:
        another training split, for the local backend)."""
        body = (LOCAL if self.kind == "local" else AZURE).format(lr=lr, steps=steps)
        instance = "" if self.kind == "local" else "instance_type: Standard_NC24ads_A100_v4"
        # Azure reads data assets, never files on this machine (a local path in an Azure spec is refused).
        train, test = (
            (train or self.data["train_sft"], self.data["test_sft"])
            if self.kind == "local"
            else ("azureml:behave-train:1", "azureml:behave-test:1")
        )
        text = textwrap.dedent(
            COMMON.format(
                train=train,
                test=test,
                instance=instance,
                latency=self.latency,
                timeout_ms=timeout_ms,
                idle=idle,
                gate=gate,
                rollout=rollout,
            )
        ) + textwrap.dedent(body)
        result = validate_text(text, "runs/behave.yaml")
        assert result.ok, result.findings
        return result

    def finish(self, job: str) -> None:
        raise NotImplementedError

    SERVERLESS_RUN = "behave-sl"

    def serverless_spec(self, lr: str = "3.0e-3") -> SpecValidation:
        """A run of its own, fine-tuned with the serverless parameters and served on serverless endpoints (the local
        trainer with those names and bounds; on Azure, the serverless fine-tuning job of a model offered for it)."""
        if self.kind == "local":
            head = "backend: local\nmodel: {registry: local, name: tiny-phi3}\n"
            data = f"data: {{train_path: {self.data['train_sft']}, test_path: {self.data['test_sft']}}}\n"
        else:
            head = 'backend: azureml\nmodel: {registry: azureml, name: Phi-4-mini-instruct, version: "3"}\n'
            data = "data: {train_path: azureml:behave-train:1, test_path: azureml:behave-test:1}\n"
        text = (
            f"name: {self.SERVERLESS_RUN}\n{head}{data}"
            f"finetune:\n  kind: serverless\n  params: {{num_train_epochs: 1, per_device_train_batch_size: 8, learning_rate: {lr}}}\n"
            "deploy:\n  kind: serverless\n  endpoint: behave-sl-ep\n  keep_previous_for: 1h\n  gate: {enabled: false}\n"
            "  smoke_test:\n    messages: [{role: user, content: Tell me about rain.}]\n"
            f"    parameters: {{max_new_tokens: 8, do_sample: false}}\n    max_latency_ms: {self.latency}\n"
        )
        result = validate_text(text, f"runs/{self.SERVERLESS_RUN}.yaml")
        assert result.ok, result.findings
        return result

    def environments(self) -> tuple[str, str, str]:
        """(dev workspace, prod workspace, registry) as gitops.yaml writes them, prod's made ready for a release;
        the lifecycle reaches prod's workspace (``backend_in``)."""
        raise NotImplementedError

    def soak(self, seconds: float) -> None:
        """Let ``seconds`` pass on the lifecycle's clock."""
        time.sleep(seconds)

    def tamper_registry(self, name: str, version: str) -> None:
        """The registry's copy of ``name`` v``version`` changed after it was shared (its files, or what it says of them)."""
        raise NotImplementedError

    def break_next_deployment(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """Undo ``break_next_deployment``."""
        raise NotImplementedError

    def provision_slowly(self, seconds: float, clock: Callable[[], float]) -> None:
        """New deployments read ``creating`` for ``seconds`` of ``clock`` (0: as fast as the backend is)."""
        raise NotImplementedError

    def send_traffic(self, n: int) -> list[int]:
        """``n`` users' requests to the endpoint, split by its traffic as the backend routes them; their statuses."""
        payload = {
            "input_data": {
                "input_string": [{"role": "user", "content": "Tell me about rain."}],
                "parameters": {"max_new_tokens": 4, "do_sample": False},
            }
        }
        return [self.backend.invoke("behave-ep", payload).status_code for _ in range(n)]

    def completed_event(self, job: str) -> dict[str, Any]:
        status = self.backend.get_job(job)
        assert status is not None
        return build_event(topic=self.topic, experiment="chat_completion", run_id=job, status="completed", tags=dict(status.tags))

    def record(self) -> Any:
        got = self.lifecycle.ledger.get("behave")
        assert got is not None
        return got[0]


NOISE = ("Zzz qqq xxx vvv.", "Qqq vvv zzz xxx.")


def write_constant_answers(path: Path, answer: str) -> Path:
    """A training split with the synthetic prompts and one constant ``answer`` to each of them."""
    rows = make_rows(160, seed=7)
    for row in rows:
        row["messages"] = [m if m["role"] == "user" else {**m, "content": answer} for m in row["messages"]]  # type: ignore[attr-defined]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class LocalDriver(Driver):
    kind = "local"

    def __init__(self, root: Path) -> None:
        from gitops.backends.local.backend import LocalBackend

        self.backend = LocalBackend(root / "ws")
        super().__init__(root)
        self.noise = [write_constant_answers(root / f"noise-{i}.jsonl", answer) for i, answer in enumerate(NOISE)]

    def finish(self, job: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = self.backend.get_job(job)
            if status is not None and status.state.terminal:
                assert status.state.value == "completed", status
                return
            time.sleep(0.5)
        raise AssertionError(f"job {job} did not finish")

    def environments(self) -> tuple[str, str, str]:
        root = self.backend.ws.root  # type: ignore[attr-defined]
        return f"{{directory: {root}}}", f"{{directory: {root.parent / 'prod-ws'}}}", f"{{directory: {root.parent / 'registry'}}}"

    def tamper_registry(self, name: str, version: str) -> None:
        root = self.backend.ws.root.parent / "registry"  # type: ignore[attr-defined]
        (weights, *_) = sorted((root / "artifacts").rglob(f"models/{name}/{version}/**/*.safetensors"))
        weights.write_bytes(b"changed after it was shared")

    def break_next_deployment(self) -> None:
        self.latency = 1  # a real generation never answers within 1 ms: the smoke test fails

    def heal(self) -> None:
        self.latency = 60000

    def provision_slowly(self, seconds: float, clock: Callable[[], float]) -> None:
        self.backend.endpoints.provisioning_delay_s, self.backend.endpoints.clock = seconds, clock  # type: ignore[attr-defined]

    def send_traffic(self, n: int) -> list[int]:
        """The server flushes its counters about once a second: wait until they show the requests sent."""
        endpoints = self.backend.endpoints  # type: ignore[attr-defined]
        info = self.backend.get_endpoint("behave-ep")
        assert info is not None

        def seen() -> int:
            return sum(int((endpoints.traffic_counters("behave-ep", d.name) or {}).get("scored", 0)) for d in info.deployments)

        before = seen()
        statuses = super().send_traffic(n)
        deadline = time.monotonic() + 15
        while seen() < before + n and time.monotonic() < deadline:
            time.sleep(0.2)
        return statuses

    def reader(self) -> Any:
        from gitops.report.metrics import MlflowMetricsReader

        return MlflowMetricsReader(self.backend.ws.tracking_uri)  # type: ignore[attr-defined]  # a LocalBackend

    def worse_spec(self, variant: int = 0, gate: str = "") -> SpecValidation:
        # A real fine-tune made worse by its data: it learns one off-topic answer to every question, so it replies
        # (the smoke test passes) and scores worse on the held-out split every time. A learning rate far too high
        # made it worse too, but its replies were whatever a diverged model emits, sometimes nothing at all.
        return self.spec(lr="3.0e-3", steps=30, gate="{conversations: 8" + gate + "}", train=self.noise[variant])

    def better_spec(self) -> SpecValidation:
        return self.spec(lr="3.0e-3", steps=40, gate="{conversations: 8}")


class AzureDriver(Driver):
    kind = "azureml"

    def __init__(self, root: Path) -> None:
        from tests.fakes import azureml_seed as seed
        from tests.fakes.azureml_api import FakeAzureML, azure_backend_for
        from tests.fakes.workspace_mlflow import WorkspaceMlflow

        self.fake = FakeAzureML().seed_defaults()
        self.backend = azure_backend_for(self.fake)
        super().__init__(root)
        self.fake.put_data_asset("behave-test", "1", Path(self.data["test_sft"]).read_bytes())
        self.fake.put_data_asset("behave-train", "1", Path(self.data["train_sft"]).read_bytes())
        # A model offered for serverless fine-tuning (the fake's copy of the Phi-4 spec's metadata, renamed).
        self.fake.add_model(seed.registry_model(seed.PHI4_SPEC), "Phi-4-mini-instruct", "3")
        self.fake.mlflow = WorkspaceMlflow.fresh(root)  # shaped like the workspace's: steps under the job
        self.quality = "good"
        self.bad: set[str] = set()  # deployments whose model answers badly
        self.known: set[str] = set()
        self.fake.scorer = self.score

    def reader(self) -> Any:
        return self.fake.mlflow.reader()

    def environments(self) -> tuple[str, str, str]:
        from tests.fakes.azureml_api import azure_backend_for

        self.fake.add_registry("acme-models")
        self.fake.add_workspace("rg-prod", "ws-prod")
        self.lifecycle.backend_in = lambda name, ref: azure_backend_for(self.fake, ref)
        f = self.fake
        dev = f"{{subscription: {f.subscription}, resource_group: {f.resource_group}, name: {f.workspace}}}"
        return dev, f"{{subscription: {f.subscription}, resource_group: rg-prod, name: ws-prod}}", "{name: acme-models}"

    def tamper_registry(self, name: str, version: str) -> None:
        from gitops.spec import naming

        stored = self.fake.get_resource(f"{self.fake.registry_path_of('acme-models')}/models/{name}/versions/{version}")
        assert stored is not None
        stored["properties"]["tags"][naming.TAG_CONTENT] = "sha256:" + "0" * 64

    def finish(self, job: str) -> None:
        """The job completes: its finetune step logged its curves in the workspace's MLflow, as the component does."""
        bad = self.quality == "bad"
        self.fake.mlflow.eval_loss, self.fake.mlflow.evaluation = (3.6, {"rougeL": 0.12}) if bad else (2.1, {"rougeL": 0.34})
        self.fake.set_job_status(job, "Completed")

    def score(self, endpoint: str, deployment: str, body: dict[str, Any]) -> tuple[int, Any]:
        """A sound model answers on topic; the worse one with noise (deployments made while quality is bad)."""
        if deployment not in self.known:
            self.known.add(deployment)
            if self.quality == "bad":
                self.bad.add(deployment)
        if deployment in self.bad:
            return 200, [{"0": "zzz qqq xxx"}]
        question = str((body.get("input_data") or {}).get("input_string", [{}])[-1].get("content", ""))
        return 200, [{"0": f"{question.rstrip('?')} is why it matters, because life on Earth depends on it."}]

    def worse_spec(self, variant: int = 0, gate: str = "") -> SpecValidation:
        self.quality = "bad"
        return self.spec(lr=("9.0e-3", "8.0e-3")[variant], steps=30, gate="{conversations: 8" + gate + "}")

    def better_spec(self) -> SpecValidation:
        self.quality = "good"
        return self.spec(lr="4.0e-3", steps=40, gate="{conversations: 8}")

    def break_next_deployment(self) -> None:
        serving = self.record().deployment

        def scorer(endpoint: str, deployment: str, body: dict[str, Any]) -> tuple[int, Any]:
            return (200, [{"0": "still here"}]) if deployment == serving else (503, {"message": "model failed to load"})

        self.fake.scorer = scorer

    def heal(self) -> None:
        self.fake.scorer = self.score

    def provision_slowly(self, seconds: float, clock: Callable[[], float]) -> None:
        self.fake.provisioning_s["deployments"], self.fake.clock = seconds, clock


@pytest.fixture(scope="module", params=["local", "azureml"])
def driver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    root = tmp_path_factory.mktemp(f"behave-{request.param}")
    if request.param == "local":
        local = LocalDriver(root)
        yield local
        for info in local.backend.list_endpoints():
            local.backend.delete_endpoint(info.name)
        for found in local.backend.list_serverless():  # type: ignore[attr-defined]
            local.backend.delete_serverless(found.name)  # type: ignore[attr-defined]
        return
    from tests.fakes.azureml_api import intercept

    azure = AzureDriver(root)
    with intercept(azure.fake):
        yield azure


@pytest.fixture
def live(driver: Driver) -> None:
    """A version of the run serving, whatever ran before: a scenario run alone (by its id) starts from one too, and
    none depends on an earlier scenario's leftovers for it."""
    got = driver.lifecycle.ledger.get("behave")
    if got is not None and got[0].serves:
        return
    record = driver.lifecycle.submit(driver.spec())
    if not record.serves:
        driver.finish(record.job_name)
        driver.lifecycle.on_job_event(driver.completed_event(record.job_name))
        assert driver.lifecycle.settle("behave").status == "live"


def test_a_merged_spec_goes_live_once_however_often_the_event_comes(driver: Driver) -> None:
    record = driver.lifecycle.submit(driver.spec(), commit="c0ffee", pr="12")
    assert record.status == "submitted" and record.job_name.startswith("gitops-behave-")
    driver.finish(record.job_name)
    event = driver.completed_event(record.job_name)
    decisions = driver.lifecycle.on_job_event(event) + driver.lifecycle.on_job_event(event)
    assert [d.action for d in decisions] == ["scheduled", "duplicate"]
    live = driver.lifecycle.settle("behave")
    assert driver.lifecycle.on_job_event(event)[0].action == "duplicate"  # a late redelivery too
    assert live.status == "live" and live.smoke is not None and live.smoke.ok and live.smoke.reply_excerpt
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and info.traffic == {live.deployment: 100} and [d.name for d in info.deployments] == [live.deployment]
    assert info.tags["managed_by"] == "finetune-gitops" and info.tags["gitops_run"] == "behave"
    assert (
        driver.backend.invoke(
            "behave-ep", {"input_data": {"input_string": [{"role": "user", "content": "hi"}], "parameters": {"max_new_tokens": 4}}}
        ).status_code
        == 200
    )


@pytest.mark.usefixtures("live")
def test_the_same_spec_again_is_not_a_second_job(driver: Driver) -> None:
    again = driver.lifecycle.submit(driver.spec())
    assert again.status == "live" and again.job_name == driver.record().job_name


@pytest.mark.usefixtures("live")
def test_a_broken_new_version_rolls_back_and_the_old_one_keeps_serving(driver: Driver) -> None:
    old = driver.record().deployment
    driver.break_next_deployment()
    record = driver.lifecycle.submit(driver.spec(lr="1.0e-3", steps=10))
    driver.finish(record.job_name)
    (decision,) = driver.lifecycle.on_job_event(driver.completed_event(record.job_name))
    assert decision.action == "scheduled"
    after = driver.lifecycle.settle("behave")
    assert after.status == "rolled_back" and after.deployment == old and after.smoke is not None and not after.smoke.ok
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and [d.name for d in info.deployments] == [old] and info.traffic == {old: 100}


def test_a_deployment_that_provisions_for_twenty_minutes_goes_live_through_queued_steps(driver: Driver) -> None:
    """Azure's time on a virtual clock (the local backend takes an injected delay): every invocation returns at
    once, the run waits between them, and it goes live."""
    driver.heal()
    jobs: list[str] = []

    def the_job_completes(lifecycle: Lifecycle, record: Any) -> None:
        jobs.append(record.job_name)
        driver.finish(record.job_name)
        assert [d.action for d in lifecycle.on_job_event(driver.completed_event(record.job_name))] == ["scheduled"]

    decisions, spent = _drive_on_a_virtual_clock(
        driver, driver.spec(lr="2.0e-3", steps=12), provisioning_s=20 * 60, after_submit=the_job_completes
    )
    live = driver.record()
    assert live.status == "live" and live.job_name == jobs[0] and spent >= 20 * 60
    assert sum(1 for d in decisions if d.action == "waiting" and d.reason.startswith("await_deployment")) >= 10
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and info.traffic == {live.deployment: 100}


@pytest.mark.usefixtures("live")
def test_a_settings_change_applies_without_a_job_or_a_deployment(driver: Driver) -> None:
    before = driver.record()
    after = driver.lifecycle.submit(driver.spec(lr="2.0e-3", steps=12, idle="12h"), commit="5e77")
    assert after.status == "live" and after.job_name == before.job_name and after.deployment == before.deployment
    assert after.cursor is None and after.spec["lifecycle"]["idle_after"] == "12h" and after.commit == "5e77"
    assert after.history[-1].note == "settings applied, nothing redeployed: lifecycle.idle_after"
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and info.traffic == {before.deployment: 100}


@pytest.mark.usefixtures("live")
def test_a_deployment_change_deploys_the_trained_model_again_without_a_new_job(driver: Driver) -> None:
    before = driver.record()
    record = driver.lifecycle.submit(driver.spec(lr="2.0e-3", steps=12, idle="12h", timeout_ms=60000))
    assert record.job_name == before.job_name and record.status == "completed" and record.cursor is not None
    assert record.history[-1].note.startswith("redeploy only")
    live = driver.lifecycle.settle("behave")
    assert live.status == "live" and live.job_name == before.job_name and live.model_version == before.model_version
    assert live.deployment != before.deployment and live.previous_deployment == before.deployment
    assert live.spec["deploy"]["request_timeout_ms"] == 60000
    assert not any(h.status == "submitted" for h in live.history[len(before.history) :])  # no job was started
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and info.traffic == {live.deployment: 100} and [d.name for d in info.deployments] == [live.deployment]


def _drive_on_a_virtual_clock(
    driver: Driver,
    spec: SpecValidation,
    on_decision: Callable[[Any], None] = lambda decision: None,
    provisioning_s: float = 0.0,
    after_submit: Callable[[Lifecycle, Any], None] = lambda lifecycle, record: None,
) -> tuple[list[Any], float]:
    """Submit ``spec`` and take every queued step on a virtual clock: each invocation returns at once (asserted) and
    the clock jumps to the next message. New deployments provision for ``provisioning_s`` of that clock;
    ``after_submit`` finishes a job the version started. Returns the decisions and the virtual time spent."""
    from gitops.lifecycle.queue import MemoryQueue

    now = [time.time()]
    clock = lambda: now[0]  # noqa: E731
    queue = MemoryQueue()
    lifecycle = Lifecycle(driver.lifecycle.ledger, lambda name: driver.backend, topic=driver.topic, queue=queue, clock=clock)
    driver.provision_slowly(provisioning_s, clock)  # and Azure Monitor stamps requests on the same clock
    decisions: list[Any] = []
    try:
        after_submit(lifecycle, lifecycle.submit(spec))
        started = now[0]
        while (nxt := queue.next_at()) is not None and len(decisions) < 200:
            now[0] = max(now[0], nxt)
            for message in queue.due(now[0]):
                before = now[0]
                decisions.append(lifecycle.advance(message.run))
                assert now[0] == before  # no invocation waits
                on_decision(decisions[-1])
    finally:
        driver.provision_slowly(0, time.time)
    return decisions, now[0] - started


def test_gradual_traffic_holds_each_share_as_a_wait_and_goes_live_within_bounds(driver: Driver) -> None:
    before = driver.record()
    splits: list[dict[str, int]] = []

    def users(decision: Any) -> None:  # while the candidate holds its share, users send requests
        if decision.action == "waiting" and "watched for" in decision.reason:
            info = driver.backend.get_endpoint("behave-ep")
            assert info is not None
            splits.append(dict(info.traffic))
            assert all(status == 200 for status in driver.send_traffic(30))

    spec = driver.spec(lr="2.0e-3", steps=12, idle="12h", timeout_ms=50000, rollout="{steps: [30, 100], hold: 10m}")
    decisions, spent = _drive_on_a_virtual_clock(driver, spec, users)
    live = driver.record()
    assert live.status == "live" and live.job_name == before.job_name and live.deployment != before.deployment, live.history[-4:]
    assert splits == [{live.deployment: 30, before.deployment: 70}] and spent >= 10 * 60
    (held,) = live.rollout_steps
    assert held.share == 30 and held.ok and 0 < held.requests < 30 and held.errors == 0
    assert held.p95_latency_ms is not None
    assert any(d.action == "waiting" and d.reason.startswith("ramp") for d in decisions)
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and info.traffic == {live.deployment: 100}


def test_gradual_traffic_that_breaches_its_bounds_rolls_back_to_the_serving_deployment(driver: Driver) -> None:
    before = driver.record()

    def users(decision: Any) -> None:
        if decision.action == "waiting" and "watched for" in decision.reason:
            driver.send_traffic(20)

    # No real reply comes back within 1 ms: the candidate breaches the latency bound at 50%.
    spec = driver.spec(lr="2.0e-3", steps=12, idle="12h", timeout_ms=45000, rollout="{steps: [50, 100], hold: 5m, max_p95_latency_ms: 1}")
    _drive_on_a_virtual_clock(driver, spec, users)
    after = driver.record()
    assert after.status == "rolled_back" and after.deployment == before.deployment, after.history[-4:]
    assert after.error is not None and "p95 latency" in after.error and "at 50%" in after.error
    assert [s.ok for s in after.rollout_steps] == [False]
    info = driver.backend.get_endpoint("behave-ep")
    assert info is not None and info.traffic == {before.deployment: 100}
    assert [d.name for d in info.deployments if d.state.value != "deleting"] == [before.deployment]


def test_a_worse_model_is_held_at_zero_percent_until_a_person_promotes_it(driver: Driver) -> None:
    driver.heal()
    serving = driver.record()
    record = driver.lifecycle.submit(driver.worse_spec())
    driver.finish(record.job_name)
    driver.lifecycle.on_job_event(driver.completed_event(record.job_name))
    held = driver.lifecycle.settle("behave")
    assert held.status == "held" and held.cursor is not None and held.cursor.plan == "hold", held.history[-3:]
    assert held.gate is not None and not held.gate["ok"] and held.gate["reasons"]
    info = driver.backend.get_endpoint("behave-ep")
    candidate = str(held.cursor.deployment)
    assert info is not None and info.traffic.get(serving.deployment) == 100 and info.deployment(candidate) is not None
    assert info.traffic.get(candidate, 0) == 0  # the worse model never took a request from users
    assert driver.lifecycle.promote("behave", "alice", "we accept the regression for the new format").status == "deploying"
    live = driver.lifecycle.settle("behave")
    assert live.status == "live" and live.deployment == candidate and live.serving_job == record.job_name
    assert any(h.note.startswith("promoted by alice: we accept the regression") for h in live.history)


def test_a_better_model_passes_the_gate_against_the_worse_one_serving(driver: Driver) -> None:
    worse = driver.record()
    record = driver.lifecycle.submit(driver.better_spec())
    driver.finish(record.job_name)
    driver.lifecycle.on_job_event(driver.completed_event(record.job_name))
    live = driver.lifecycle.settle("behave")
    assert live.status == "live" and live.job_name == record.job_name and live.deployment != worse.deployment, live.history[-4:]
    assert live.gate is not None and live.gate["ok"] and any("ROUGE-L" in n for n in live.gate["notes"])
    if driver.kind == "azureml":  # the pipeline's model evaluation step, beside the serving version's
        assert "model evaluation rougeL 0.1200 -> 0.3400 (+0.2200)" in live.gate["notes"], live.gate["notes"]


@pytest.mark.usefixtures("live")
def test_a_held_candidate_is_removed_by_a_rollback_or_when_its_hold_runs_out(driver: Driver) -> None:
    serving = driver.record()
    for decide in ("rollback", "expire"):
        record = driver.lifecycle.submit(driver.worse_spec() if decide == "rollback" else driver.worse_spec(1, ", hold_for: 1h"))
        driver.finish(record.job_name)
        driver.lifecycle.on_job_event(driver.completed_event(record.job_name))
        held = driver.lifecycle.settle("behave")
        assert held.status == "held" and held.cursor is not None
        assert held.serving_job == serving.serving_job  # judged against what serves, not the version rejected before
        candidate = held.cursor.deployment
        if decide == "rollback":
            driver.lifecycle.rollback("behave", "bob", "not this one")
            ended = driver.lifecycle.settle("behave")
        else:  # an hour later, a reconcile finds the hold run out
            later = Lifecycle(driver.lifecycle.ledger, lambda name: driver.backend, topic=driver.topic, clock=lambda: time.time() + 3601)
            later.reconcile("behave")
            ended = later.settle("behave")
        assert ended.status == "rejected" and ended.cursor is None and ended.deployment == serving.deployment, ended.history[-3:]
        info = driver.backend.get_endpoint("behave-ep")
        assert info is not None and info.traffic == {serving.deployment: 100}
        assert candidate not in [d.name for d in info.deployments if d.state.value != "deleting"]


@pytest.mark.usefixtures("live")
def test_cleanup_retires_an_expired_endpoint(driver: Driver) -> None:
    later = datetime.now(UTC) + timedelta(days=3)
    verdicts = run_cleanup(driver.backend, driver.lifecycle.ledger, Policy(), now=later, repo=driver.lifecycle.repo)
    assert [(v.endpoint, v.action) for v in verdicts] == [("behave-ep", "delete")] and "expired" in verdicts[0].reasons[0]
    assert driver.backend.get_endpoint("behave-ep") is None
    assert driver.record().status == "retired"


def test_versions_proven_in_dev_are_released_into_prod_held_by_its_gate_rolled_back_there_and_never_trained_again(
    driver: Driver,
) -> None:
    """#27 on every backend that promotes (a backend that does not says why in its kind, and the scenario says so), a
    run of its own ('promo') through dev and prod: each version live in dev, due after its soak (shared into the
    registry: at once locally, an import an Azure ML registry takes a moment over), released into prod's workspace,
    where prod's stricter gate holds it (dev untouched) until a person promotes it; a rollback in prod goes back to
    prod's previous version from the registry; a version whose registry copy changed is refused; one job a version."""
    from gitops.errors import ConflictError
    from gitops.lifecycle.parts import Action
    from gitops.spec.capabilities import Feature, kind_of
    from gitops.spec.policy import parse_policy

    unbuilt = kind_of(driver.kind).unsupported.get(Feature.PROMOTION)
    if unbuilt:
        pytest.skip(f"the {driver.kind} backend does not promote: {unbuilt}")
    dev_ws, prod_ws, registry = driver.environments()
    policy, findings = parse_policy(
        f"registry: {registry}\nenvironments:\n  - name: dev\n    workspace: {dev_ws}\n"
        f"  - name: prod\n    workspace: {prod_ws}\n"
        "    policy: {gate: {max_perplexity: 1.01, conversations: 0}}\n"  # stricter than dev: these models never meet it
        "    promotion: {soak: 1s, gate: false}\n",
        "gitops.yaml",
    )
    assert policy is not None, findings
    lc = driver.lifecycle

    def version(lr: str) -> Any:
        """A new version of 'promo' live in dev, its promotion to prod due."""
        # The gate on, on training metrics alone, and lenient in dev: prod's policy sets the ceiling that holds it there.
        source = driver.spec(lr=lr, gate="{conversations: 0, max_eval_loss_increase: 100}").source or ""
        text = source.replace("name: behave", "name: promo").replace("endpoint: behave-ep", "endpoint: promo-ep")
        spec = validate_text(text, "runs/promo.yaml", policy)
        assert spec.ok, [f.format() for f in spec.findings]
        record = lc.submit(spec, policy=policy)
        driver.finish(record.job_name)
        lc.on_job_event(driver.completed_event(record.job_name))
        dev = lc.settle("promo")
        assert dev.status == "live" and dev.job_name == record.job_name and dev.model_digest, dev.error
        driver.soak(1.1)
        due: list[str] = []
        for _ in range(3):  # a share that takes a moment (an import into an Azure ML registry) is found by a later pass
            due += [d.run or "" for d in lc.reconcile("promo") if d.action == Action.PROMOTION_DUE]
            if due:
                break
        assert due == ["promo"], lc.ledger.get("promo")
        return dev

    def into_prod(dev: Any) -> Any:
        """Released into prod, held there by prod's gate with dev untouched, then promoted by a person."""
        lc.release("promo", "prod", by="a reviewer", reason="suite", job=dev.job_name)
        held = lc.settle("promo.prod")
        assert held.status == "held" and held.gate is not None and not held.gate["ok"], (held.error, held.gate)
        after = lc.ledger.get("promo")[0]  # type: ignore[index]
        assert (after.status, after.deployment, after.job_name) == ("live", dev.deployment, dev.job_name)  # dev untouched
        lc.promote("promo.prod", "a person", "prod's gate is new")
        live = lc.settle("promo.prod")
        assert live.status == "live" and live.serving_job == dev.job_name and live.model_digest == dev.model_digest, live.error
        return live

    v1 = version("3.0e-3")
    prod_ws_backend = lc.backend_in(driver.kind, policy.environment("prod").workspace)
    try:
        first = into_prod(v1)
        prod_backend = lc.backend_of(first)
        payload = {"input_data": {"input_string": [{"role": "user", "content": "hi"}], "parameters": {"max_new_tokens": 4}}}
        assert prod_backend.invoke(first.endpoint or "", payload).status_code == 200
        assert first.endpoint != v1.endpoint
        v2 = version("2.0e-3")
        second = into_prod(v2)
        assert second.previous_serving_job == v1.job_name
        lc.rollback("promo.prod", "a person", "latency regression")
        back = lc.settle("promo.prod")
        assert back.status == "live" and back.serving_job == v1.job_name and back.model_version == first.model_version, back.error
        assert lc.ledger.get("promo")[0].job_name == v2.job_name  # type: ignore[index]  # dev keeps v2
        v3 = version("1.0e-3")
        (due,) = lc.due()
        driver.tamper_registry(due.promotion.model, due.promotion.version)
        try:
            lc.release("promo", "prod", by="a reviewer", job=v3.job_name)
            refused = lc.settle("promo.prod")
            assert refused.status == "failed" and "not what was shared" in (refused.error or ""), refused.error
        except ConflictError as exc:  # refused before prod is touched, where the registry says so itself
            assert "refused: registry model" in exc.headline
        after = lc.ledger.get("promo.prod")[0]  # type: ignore[index]
        assert after.serving_job == v1.job_name and after.deployment == back.deployment  # prod serves what it served
        jobs = {r.job_name for r in lc.ledger.list() if r.run == "promo"} | {p.job_name for p in after.received}
        assert jobs == {v1.job_name, v2.job_name, v3.job_name}  # one job a version, none in prod
    finally:  # whatever failed: no endpoint (nor its server) is left behind in either workspace
        for info in prod_ws_backend.list_endpoints():
            prod_ws_backend.delete_endpoint(info.name)
        driver.backend.delete_endpoint("promo-ep")


def test_a_serverless_run_goes_live_on_endpoints_of_its_own_switches_versions_and_rolls_back_to_the_one_kept(driver: Driver) -> None:
    """The serverless serving shape on both backends: one model per endpoint, the run's record naming the one that
    serves (the stable place a client reads), the replaced one kept for keep_previous_for and returned to."""
    from gitops.backends.base import ServesServerless
    from gitops.spec import naming

    backend = driver.backend
    assert isinstance(backend, ServesServerless)
    run = driver.SERVERLESS_RUN

    def live(spec: SpecValidation) -> Any:
        record = driver.lifecycle.submit(spec)
        driver.finish(record.job_name)
        driver.lifecycle.on_job_event(driver.completed_event(record.job_name))
        return driver.lifecycle.settle(run)

    first = live(driver.serverless_spec())
    assert first.status == "live" and first.serving_kind == "serverless" and first.smoke is not None and first.smoke.ok
    assert first.serving_endpoint == naming.serverless_endpoint_name("behave-sl-ep", first.model_version, first.deployment_digest)
    assert backend.get_endpoint("behave-sl-ep") is None  # nothing of it on a managed endpoint
    reply = backend.invoke_serverless(first.serving_endpoint, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert reply.status_code == 200 and isinstance(json.loads(reply.body)["choices"][0]["message"]["content"], str)
    second = live(driver.serverless_spec(lr="2.0e-3"))  # retrained: a new version, on an endpoint of its own
    assert second.status == "live" and second.serving_endpoint not in (None, first.serving_endpoint)
    assert second.previous_deployment == first.serving_endpoint and second.previous_kept_until is not None
    assert {s.name for s in backend.list_serverless() if s.tags.get(naming.TAG_RUN) == run} == {first.deployment, second.deployment}
    driver.lifecycle.rollback(run, "alice", "the first answered better")
    back = driver.lifecycle.settle(run)
    assert back.status == "rolled_back" and back.serving_endpoint == first.serving_endpoint and back.scoring_uri == first.scoring_uri
    left = {s.name for s in backend.list_serverless() if s.tags.get(naming.TAG_RUN) == run and s.state.value != "deleting"}
    assert left == {first.deployment}
