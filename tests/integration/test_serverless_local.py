"""Serverless serving on the local backend, for real: a run fine-tuned with the serverless parameters goes live on a
serverless endpoint of its own (one model, no traffic split, the OpenAI chat contract on loopback); a new version
gets another endpoint and the run switches to it; the replaced one is kept for ``keep_previous_for`` and a rollback
returns to it; a client finds what serves in one place (the record, ``gitops status --json``); a run that changes
kind keeps its managed endpoint serving until the serverless one is promoted.

One workspace for the module (a fine-tune takes seconds). Each test starts from a version serving on the kind it needs
(``World.serving``), made if the tests before it did not leave one: each also passes alone.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from gitops.backends.local.backend import LocalBackend
from gitops.events import build_event
from gitops.ledger.local import LocalLedger
from gitops.lifecycle.flow import Lifecycle
from gitops.spec import naming
from gitops.spec.validate import SpecValidation, validate_text
from pipelines.synth import write_dataset

pytestmark = pytest.mark.slow

SPEC = """
name: chat-sl
backend: local
model: {{registry: local, name: tiny-phi3}}
data: {{train_path: {train}, test_path: {test}}}
finetune:
  kind: {training}
  params: {params}
deploy:
  kind: {serving}
  endpoint: chat-sl
  keep_previous_for: 1h
  smoke_test:
    messages: [{{role: user, content: Tell me about rain.}}]
    parameters: {{max_new_tokens: 8, do_sample: false}}
    max_latency_ms: {latency}
  gate: {{enabled: false}}  # these scenarios are about serving; the gate has its own
"""
SERVERLESS_PARAMS = "{num_train_epochs: 1, per_device_train_batch_size: 8, learning_rate: 3.0e-3}"
PIPELINE_PARAMS = "{max_steps: 10, per_device_train_batch_size: 8, learning_rate: 3.0e-3, apply_lora: true, max_seq_length: 128}"


class World:
    def __init__(self, root: Path) -> None:
        self.data = write_dataset(root / "data", rows=160, test_rows=16)
        self.backend = LocalBackend(root / "ws")
        # The ledger where the CLI finds it for this workspace (GITOPS_WORKSPACE): `gitops status` reads the same records.
        self.lifecycle = Lifecycle(LocalLedger(root / "ws" / "ledger"), lambda name: self.backend, topic=self.backend.topic)
        self.latency = 60000

    def spec(self, *, training: str = "serverless", serving: str = "serverless", latency: int = 60000) -> SpecValidation:
        params = SERVERLESS_PARAMS if training == "serverless" else PIPELINE_PARAMS
        text = textwrap.dedent(
            SPEC.format(
                train=self.data["train_sft"], test=self.data["test_sft"], training=training, serving=serving, latency=latency, params=params
            )
        )
        result = validate_text(text, "runs/chat-sl.yaml")
        assert result.ok, result.findings
        return result

    def go_live(self, spec: SpecValidation) -> Any:
        record = self.lifecycle.submit(spec)
        if record.cursor is None and record.status in ("submitted", "running"):
            deadline = time.monotonic() + 300
            while (job := self.backend.get_job(record.job_name)) is None or not job.state.terminal:
                assert time.monotonic() < deadline, "the job did not finish"
                time.sleep(0.5)
            event = build_event(topic=self.backend.topic, experiment="e", run_id=record.job_name, status="completed", tags=dict(job.tags))
            self.lifecycle.on_job_event(event)
        return self.lifecycle.settle("chat-sl")

    def key(self, name: str) -> str:
        return self.backend.endpoints.key(name)

    def unique(self) -> int:
        """A smoke-test bound no version had: a spec that differs in a deployment setting only (a redeploy)."""
        self.latency -= 100
        return self.latency

    def serving(self, kind: str) -> Any:
        """The run, with a version serving on ``kind`` (a serverless endpoint, or the managed one), whatever ran before."""
        got = self.lifecycle.ledger.get("chat-sl")
        if got is not None and got[0].serves and got[0].serving_kind == kind:
            return got[0]
        training = "serverless" if kind == "serverless" else "pipeline"
        live = self.go_live(self.spec(training=training, serving=kind, latency=self.unique()))
        assert live.status == "live" and live.serving_kind == kind, live.history[-3:]
        return live


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    w = World(tmp_path_factory.mktemp("serverless"))
    yield w
    for info in w.backend.list_serverless():
        w.backend.delete_serverless(info.name)
    for endpoint in w.backend.list_endpoints():
        w.backend.delete_endpoint(endpoint.name)


def test_a_serverless_run_goes_live_on_an_endpoint_of_its_own(world: World) -> None:
    live = world.go_live(world.spec())
    assert live.status == "live" and live.serving_kind == "serverless" and live.smoke is not None and live.smoke.ok
    expected = naming.serverless_endpoint_name("chat-sl", live.model_version, live.deployment_digest)
    assert live.deployment == expected and live.serving_endpoint == expected and live.endpoint == "chat-sl"
    assert live.scoring_uri and live.scoring_uri.startswith("http://127.0.0.1:")
    assert world.backend.get_endpoint("chat-sl") is None  # no managed endpoint: nothing bills by the VM-hour
    (found,) = world.backend.list_serverless()
    assert found.name == expected and found.serving and found.tags[naming.TAG_RUN] == "chat-sl"
    assert found.tags[naming.MANAGED_BY_TAG] == naming.MANAGED_BY_VALUE
    history = " | ".join(h.note for h in live.history)
    assert "no traffic split" in history and f"{expected} serves (a serverless endpoint)" in history


def test_the_openai_client_calls_it_and_the_contract_holds(world: World) -> None:
    openai = pytest.importorskip("openai")
    record = world.serving("serverless")
    key = world.key(record.serving_endpoint or "")
    client = openai.OpenAI(base_url=f"{record.scoring_uri}/v1", api_key=key, max_retries=0)  # sends "Bearer <key>"
    answer = client.chat.completions.create(
        model="chat-sl", messages=[{"role": "user", "content": "Tell me about rain."}], max_tokens=6, temperature=0
    )
    assert answer.object == "chat.completion" and isinstance(answer.choices[0].message.content, str)
    assert answer.choices[0].message.role == "assistant" and answer.usage is not None and answer.usage.prompt_tokens > 0
    url = f"{record.scoring_uri}/v1/chat/completions"
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0}
    raw = requests.post(url, json=body, headers={"Authorization": key}, timeout=60)  # the raw key, as the docs show it
    assert raw.status_code == 200 and raw.json()["choices"][0]["finish_reason"] == "stop"
    assert requests.post(url, json=body, headers={"Authorization": "wrong"}, timeout=10).status_code == 401
    assert requests.post(url, json=body, timeout=10).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{record.scoring_uri}/v1", api_key="not-the-key", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    # The managed contract is not spoken here: one endpoint, one contract.
    assert (
        requests.post(
            f"{record.scoring_uri}/score", json={"input_data": {}}, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).status_code
        == 404
    )


def test_a_new_version_gets_its_own_endpoint_and_the_old_one_is_kept_then_a_rollback_returns_to_it(world: World) -> None:
    before = world.serving("serverless")
    after = world.go_live(world.spec(latency=world.unique()))  # a deployment setting: the same job, deployed again
    assert after.status == "live" and after.job_name == before.job_name
    assert after.deployment != before.deployment and after.previous_deployment == before.deployment
    assert after.serving_endpoint == after.deployment and after.previous_serving_kind == "serverless"
    assert after.previous_kept_until is not None and after.scoring_uri != before.scoring_uri
    assert {s.name for s in world.backend.list_serverless()} == {before.deployment, after.deployment}
    rolled = world.lifecycle.rollback("chat-sl", "alice", "the old one answered better")
    assert rolled.status == "rolling_back"
    back = world.lifecycle.settle("chat-sl")
    assert back.status == "rolled_back" and back.deployment == before.deployment and back.serving_kind == "serverless"
    assert back.serving_endpoint == before.deployment and back.scoring_uri == before.scoring_uri
    assert {s.name for s in world.backend.list_serverless()} == {before.deployment}  # the candidate was deleted


def test_status_json_says_where_a_client_finds_what_serves_and_invoke_speaks_its_contract(
    world: World, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = world.serving("serverless")
    monkeypatch.setenv("GITOPS_WORKSPACE", str(world.backend.ws.root))
    out = cli("status", "--json")
    assert out.exit_code == 0, out.err
    (row,) = [r for r in json.loads(out.out) if r["run"] == "chat-sl"]
    assert row["serving"] == {"kind": "serverless", "endpoint": record.deployment, "deployment": None, "scoring_uri": record.scoring_uri}
    described = cli("status", "chat-sl")
    assert described.exit_code == 0 and f"serves     {record.deployment} (serverless)" in described.out
    assert f"{record.scoring_uri}/v1/chat/completions" in described.out
    table = cli("status")
    assert f"serverless {record.deployment}" in table.out.replace("\n", "")
    said = cli("invoke", "chat-sl", "--message", "Tell me about rain.", "--max-new-tokens", "4")
    assert said.exit_code == 0 and said.out.strip(), said.err
    # --deployment names a serverless endpoint of the run (a candidate's, while one is tried); another name is refused.
    assert cli("invoke", "chat-sl", "--message", "hi", "--max-new-tokens", "4", "--deployment", record.deployment).exit_code == 0
    refused = cli("invoke", "chat-sl", "--message", "hi", "--deployment", "not-this-runs")
    assert refused.exit_code != 0 and "run 'chat-sl' has no serverless endpoint named 'not-this-runs'" in refused.err
    assert "Traceback" not in refused.err


def test_the_watch_finds_a_stray_serverless_endpoint_and_reconcile_restarts_a_dead_server(world: World) -> None:
    from gitops.backends.base import RegisteredModel
    from gitops.ownership import identity_tags
    from gitops.watch.scan import drift_findings, restore

    record = world.serving("serverless")
    repo = world.lifecycle.repo
    assert record.serving_kind == "serverless" and drift_findings(record, world.backend, time.time(), repo=repo) == []
    serving = world.backend.get_serverless(record.deployment or "")
    assert serving is not None
    model = RegisteredModel(record.model_name or "", record.model_version or "", serving.model_id)
    world.backend.begin_serverless("chat-sl-stray", model, {**identity_tags(repo), naming.TAG_RUN: "chat-sl"})
    (stray,) = drift_findings(record, world.backend, time.time(), repo=repo)
    assert stray.severity == "warning" and stray.fixable and "chat-sl-stray" in stray.what and "hosting fee" in stray.what
    assert restore(record, world.backend, time.time(), apply=True, repo=repo) == [
        "chat-sl: delete serverless endpoint chat-sl-stray (nobody asked for it)"
    ]
    assert world.backend.get_serverless("chat-sl-stray") is None
    world.backend.stop_server(record.deployment or "")  # the server died (not a person's stop: nothing recorded)
    down = world.backend.get_serverless(record.deployment or "")
    assert down is not None and not down.healthy
    decisions = world.lifecycle.reconcile("chat-sl")
    assert [d.action for d in decisions] == ["restarted"], decisions
    up = world.backend.get_serverless(record.deployment or "")
    assert up is not None and up.healthy


def test_a_run_that_changes_kind_keeps_its_managed_endpoint_serving_until_the_switch(world: World) -> None:
    managed = world.serving("managed")
    assert managed.status == "live" and managed.serving_kind == "managed" and managed.serving_endpoint == "chat-sl"
    info = world.backend.get_endpoint("chat-sl")
    assert info is not None and info.traffic == {managed.deployment: 100}
    switched = world.go_live(world.spec(training="pipeline", serving="serverless", latency=world.unique()))  # a redeploy
    assert switched.job_name == managed.job_name and switched.serving_kind == "serverless"
    assert switched.previous_deployment == managed.deployment and switched.previous_serving_kind == "managed"
    still = world.backend.get_endpoint("chat-sl")  # kept for keep_previous_for: an instant rollback goes back to it
    assert still is not None and still.traffic == {managed.deployment: 100}
    back = world.lifecycle.rollback("chat-sl", "bob")
    assert back.status == "rolling_back"
    restored = world.lifecycle.settle("chat-sl")
    assert restored.status == "rolled_back" and restored.serving_kind == "managed" and restored.serving_endpoint == "chat-sl"
    assert restored.deployment == managed.deployment and world.backend.list_serverless() == []


def test_cleanup_keeps_what_serves_removes_what_was_replaced_once_its_keep_is_over_and_retires_an_idle_run(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from gitops.cleanup.run import run_cleanup

    world.serving("managed")
    switched = world.go_live(world.spec(training="pipeline", serving="serverless", latency=world.unique()))  # managed -> serverless
    assert switched.serving_kind == "serverless" and world.backend.get_endpoint("chat-sl") is not None
    now = datetime.now(UTC)
    within = {v.endpoint: v for v in run_cleanup(world.backend, world.lifecycle.ledger, now=now, repo=world.lifecycle.repo)}
    assert within["chat-sl"].action == "keep" and "kept for a rollback" in within["chat-sl"].reasons[0], within
    assert within[switched.deployment].action == "keep"
    later = {
        v.endpoint: v for v in run_cleanup(world.backend, world.lifecycle.ledger, now=now + timedelta(hours=2), repo=world.lifecycle.repo)
    }
    assert later["chat-sl"].action == "delete" and f"serves from {switched.deployment}" in later["chat-sl"].reasons[0]
    assert world.backend.get_endpoint("chat-sl") is None  # the managed endpoint the run left behind is gone
    after = world.lifecycle.ledger.get("chat-sl")[0]  # type: ignore[index]
    assert after.status == "live" and after.serving_endpoint == switched.deployment  # the run still serves
    idle = {
        v.endpoint: v for v in run_cleanup(world.backend, world.lifecycle.ledger, now=now + timedelta(days=3), repo=world.lifecycle.repo)
    }
    assert idle[switched.deployment].action == "delete" and idle[switched.deployment].serverless
    assert world.backend.list_serverless() == []
    retired = world.lifecycle.ledger.get("chat-sl")[0]  # type: ignore[index]
    assert retired.status == "retired" and retired.serving_endpoint is None
