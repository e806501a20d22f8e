"""The gate promotes only on evidence: a candidate with no eval loss, a NaN one, no held-out split the lifecycle can
read, or a serving deployment that does not answer the comparison, is held at 0% for a person, never promoted.
A spec may go without evidence only by naming it (``deploy.gate.waive``), and validate says so on that line.

Rollouts on the virtual clock (tests/virtual_azure.py): the real SDK against the fake Azure ML REST API, the
workspace's MLflow in SQLite, the candidate answering "zzz qqq" to everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.spec.validate import SpecValidation, validate_text
from tests.virtual_azure import RUN, SPEC, World, virtual_world

GARBAGE = "zzz qqq xxx vvv"
TEST_SPLIT = "  test_path: azureml:ultrachat-test:1\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with virtual_world(tmp_path) as w:
        yield w


def spec_text(test_split: str | None = TEST_SPLIT, gate: str = "", lr: str = "6.0e-6") -> str:
    text = SPEC.replace("learning_rate: 5.0e-6", f"learning_rate: {lr}").replace(TEST_SPLIT, test_split or "")
    if gate:
        text = text.replace("  request_timeout_ms: 90000\n", f"  request_timeout_ms: 90000\n  gate: {gate}\n")
    return text


def validated(text: str) -> SpecValidation:
    result = validate_text(text, f"runs/{RUN}.yaml")
    assert result.ok, [f.format() for f in result.findings if f.is_error]
    return result


def roll_out(world: World, text: str) -> Any:
    """Submit ``text``, complete its job, deliver every step; the run's record when the queue is empty."""
    record = world.lifecycle.submit(validated(text), commit="c0ffee", pr="7")
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    world.deliver(limit=1000, until="held")
    return world.record()


def garbage_candidate(serving: str | None, serving_status: int = 200) -> Any:
    """The serving deployment answers on topic (or with ``serving_status``); every other one answers noise."""

    def scorer(endpoint: str, deployment: str, body: dict[str, Any]) -> tuple[int, Any]:
        if deployment == serving:
            if serving_status != 200:
                return serving_status, {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded. Try again later."}}
            question = str((body.get("input_data") or {}).get("input_string", [{}])[-1].get("content", ""))
            return 200, [{"0": f"{question} is answered here in a sentence."}]
        return 200, [{"0": GARBAGE}]

    return scorer


def reasons(record: Any) -> list[str]:
    return list((record.gate or {}).get("reasons", []))


@pytest.mark.parametrize(
    "test_split",
    [None, "  test_path: https://data.example.com/ultrachat/test.jsonl\n"],
    ids=["no-test-split", "a-url-the-function-cannot-read"],
)
def test_no_readable_test_split_and_no_eval_loss_hold_a_first_version(world: World, test_split: str | None) -> None:
    text = spec_text(test_split)
    predicted = [f for f in validated(text).findings if "the gate will have no" in f.message]
    expected = ["training metrics", "held-out conversations"] if test_split is None else ["held-out conversations"]
    assert [f.path for f in predicted] == ["data.test_path"] * len(expected), [f.format() for f in predicted]
    assert all(any(e in f.message for f in predicted) for e in expected)
    assert all(f.line for f in predicted)  # on the spec's lines, before anything runs
    world.fake.mlflow.eval_loss = None  # the trainer had nothing to evaluate on
    world.fake.scorer = garbage_candidate(serving=None)
    held = roll_out(world, text)
    assert held.status == "held", held.history[-3:]
    assert any("eval loss was not logged" in r for r in reasons(held)), reasons(held)
    assert any("no held-out conversations to ask" in r for r in reasons(held)), reasons(held)
    assert all(share == 0 for share in world.fake.endpoint_body(held.endpoint)["properties"]["traffic"].values())


def test_a_nan_eval_loss_holds_and_the_serving_version_keeps_its_traffic(world: World) -> None:
    serving = world.live_first_version()
    world.fake.mlflow.eval_loss = float("nan")  # a diverged training logs NaN; `nan > allowed` is False
    held = roll_out(world, spec_text())
    assert held.status == "held"
    assert any("eval loss is nan, not a finite number" in r for r in reasons(held)), reasons(held)
    assert world.fake.endpoint_body(held.endpoint)["properties"]["traffic"][serving] == 100


def test_a_serving_deployment_that_answers_429_is_asked_again_then_holds_never_scored_zero(world: World) -> None:
    serving = world.live_first_version()
    world.fake.scorer = garbage_candidate(serving, serving_status=429)
    started = world.clock.now()
    held = roll_out(world, spec_text())
    assert held.status == "held", [h.note for h in held.history[-4:]]
    assert any("answered status 429" in r and "no answer to judge" in r for r in reasons(held)), reasons(held)
    asked_serving = [d for e, d, _ in world.fake.scored if d == serving]
    assert len(asked_serving) > 3  # asked again, with a backoff, before giving up
    assert world.clock.now() - started < 60 * 60  # within the gate step's deadline (30m) and the deployment's time
    assert all(seconds == 0 for _, _, seconds in world.invocations)  # no invocation waited for the retry
    online = [h.note for h in held.history if "gate (online)" in h.note]
    assert not any("ROUGE-L" in n for n in online)  # nothing was scored for the side that did not answer
    assert world.fake.endpoint_body(held.endpoint)["properties"]["traffic"][serving] == 100


def test_a_serving_deployment_that_recovers_is_compared_and_the_garbage_candidate_is_held_on_its_scores(world: World) -> None:
    serving = world.live_first_version()
    throttled = {"left": 3}
    answers = garbage_candidate(serving)

    def scorer(endpoint: str, deployment: str, body: dict[str, Any]) -> tuple[int, Any]:
        if deployment == serving and throttled["left"] > 0:
            throttled["left"] -= 1
            return 429, {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded."}}
        return answers(endpoint, deployment, body)

    world.fake.scorer = scorer
    held = roll_out(world, spec_text())
    assert held.status == "held" and throttled["left"] == 0
    assert any("ROUGE-L" in r for r in reasons(held)), reasons(held)  # held on a real comparison, not on a tie at 0


def test_a_waiver_is_named_in_the_spec_warned_at_review_and_shown_on_the_record(world: World) -> None:
    text = spec_text(None, gate="{waive: [training_metrics, held_out]}")
    findings = validated(text).findings
    waiver = [f for f in findings if f.path == "deploy.gate.waive"]
    assert len(waiver) == 1 and waiver[0].severity.value == "warning" and "waives training_metrics, held_out" in waiver[0].message
    assert waiver[0].line == text.splitlines().index("  gate: {waive: [training_metrics, held_out]}") + 1
    assert not [f for f in findings if "the gate will have no" in f.message]  # waived: nothing predicted missing
    world.fake.mlflow.eval_loss = None
    world.fake.scorer = garbage_candidate(serving=None)
    live = roll_out(world, text)
    assert live.status == "live", reasons(live)
    notes = " | ".join(live.gate["notes"])
    assert "training metrics waived (deploy.gate.waive)" in notes and "held out waived (deploy.gate.waive)" in notes


def test_the_old_waivers_enabled_false_and_conversations_0_are_warned_as_waivers() -> None:
    off = validated(spec_text(gate="{enabled: false}")).findings
    assert [f.path for f in off if "gate is off" in f.message] == ["deploy.gate.enabled"]
    none = validated(spec_text(gate="{conversations: 0}")).findings
    assert [f.path for f in none if "waives the held-out evaluation" in f.message] == ["deploy.gate.conversations"]


def test_evaluation_disabled_in_the_component_is_predicted_to_give_no_training_evidence() -> None:
    text = spec_text().replace("    lr_scheduler_type: cosine\n", "    lr_scheduler_type: cosine\n    evaluation_strategy: disable\n")
    predicted = [f for f in validated(text).findings if "the gate will have no training metrics" in f.message]
    assert [f.path for f in predicted] == ["finetune.params.evaluation_strategy"]


def test_a_first_version_with_evidence_passes_on_its_absolute_bounds(world: World) -> None:
    world.fake.scorer = garbage_candidate(serving=None)  # nothing to compare with: error rate and latency only
    live = roll_out(world, spec_text())
    assert live.status == "live", reasons(live)
    assert any("nothing serving to compare with" in n for n in live.gate["notes"])
