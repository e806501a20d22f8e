"""The promotion gate's arithmetic: held-out conversations, ROUGE-L, the paired bootstrap, and the verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops.lifecycle import gate
from gitops.spec.policy import GateRules, Policy
from gitops.spec.validate import validate_text

RULES = Policy().gate.resolve(
    validate_text(
        """
name: gated
backend: local
model: {registry: local, name: tiny-phi3}
data: {train_path: t.jsonl}
deploy: {smoke_test: {max_latency_ms: 5000}}
""",
        "runs/gated.yaml",
    ).require()
)


def write_split(path: Path, rows: int) -> Path:
    with path.open("w") as fh:
        for i in range(rows):
            messages = [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"the answer is {i}"}]
            if i % 5 == 0:
                messages = messages[:1]  # no reference answer: never sampled
            fh.write(json.dumps({"messages": messages}) + "\n")
    return path


def test_the_rules_come_from_the_policy_and_the_latency_bound_from_the_smoke_test() -> None:
    assert RULES.conversations == 32 and RULES.margin == 0.02 and RULES.max_p95_latency_ms == 5000
    assert RULES.hold_for_s == 24 * 3600 and RULES.enabled is True


def test_the_sample_is_fixed_and_only_takes_conversations_with_a_reference(tmp_path: Path) -> None:
    split = write_split(tmp_path / "test.jsonl", 100)
    first, again = gate.sample_conversations(str(split), 10), gate.sample_conversations(str(split), 10)
    assert [c.index for c in first] == [c.index for c in again] and len(first) == 10
    assert all(c.index % 5 and c.reference == f"the answer is {c.index}" and c.prompt[-1]["role"] == "user" for c in first)
    assert len(gate.sample_conversations(str(split), 500)) == 80
    assert gate.sample_conversations("azureml:test:1", 10) == [] and gate.sample_conversations(None, 10) == []


def test_rouge_l_scores_overlap_and_an_empty_reply_is_zero() -> None:
    assert gate.rouge_l("the answer is 42", "the answer is 42") == pytest.approx(1.0)
    assert 0 < gate.rouge_l("it is 42", "the answer is 42") < 1
    assert gate.rouge_l("   ", "the answer is 42") == 0.0


def test_the_paired_bootstrap_is_seeded_and_sees_a_real_drop() -> None:
    same = [0.5, 0.4, 0.6, 0.55] * 8
    mean, low = gate.paired_lower_bound(same, same, 0.95)
    assert mean == 0 and low == 0
    worse = [s - 0.1 for s in same]
    mean, low = gate.paired_lower_bound(worse, same, 0.95)
    assert mean == pytest.approx(-0.1) and low == pytest.approx(-0.1)
    noisy = [s + (0.05 if i % 2 else -0.05) for i, s in enumerate(same)]
    assert gate.paired_lower_bound(noisy, same, 0.95) == gate.paired_lower_bound(noisy, same, 0.95)  # the same verdict twice


def test_the_training_part_compares_eval_loss_and_bounds_perplexity() -> None:
    ok = gate.training_verdict(RULES, {"eval_loss": 2.5, "eval_perplexity": 12.2}, {"eval_loss": 2.46})
    assert ok.ok and ok.notes == ["eval loss 2.4600 -> 2.5000 (+0.0400; at most +0.1)"]
    worse = gate.training_verdict(RULES, {"eval_loss": 4.49, "eval_perplexity": 88.9}, {"eval_loss": 2.46})
    assert not worse.ok and worse.reasons == ["eval loss 2.4600 -> 4.4900 (+2.0300; at most +0.1)"]
    first = gate.training_verdict(RULES.model_copy(update={"max_perplexity": 50}), {"eval_loss": 4.49, "eval_perplexity": 88.9}, None)
    assert not first.ok and first.reasons == ["eval perplexity 88.90 is over the ceiling of 50"]
    first_ok = gate.training_verdict(RULES, {"eval_loss": 2.5, "eval_perplexity": 12.2}, None)
    assert first_ok.ok and "a first version: absolute bounds only" in first_ok.notes[0]


@pytest.mark.parametrize("loss", [None, float("nan"), float("inf"), "2.0", True])
def test_a_training_loss_that_is_missing_or_not_a_finite_number_holds_never_passes(loss: object) -> None:
    unlogged = gate.training_verdict(RULES, {"eval_loss": loss, "eval_perplexity": None}, {"eval_loss": 2.0})
    assert not unlogged.ok and unlogged.reasons[0].startswith("eval loss ") and "waive training_metrics" in unlogged.reasons[0]
    # a first version with no loss has no evidence for its bounds either
    assert not gate.training_verdict(RULES, {"eval_loss": loss}, None).ok


@pytest.mark.parametrize("before", [None, float("nan")])
def test_a_comparison_needs_the_serving_side_to_have_a_finite_loss_too(before: object) -> None:
    verdict = gate.training_verdict(RULES, {"eval_loss": 2.5}, {"eval_loss": before})
    assert not verdict.ok and "nothing to be compared with" in verdict.reasons[0]


def test_a_perplexity_ceiling_with_no_finite_perplexity_holds() -> None:
    rules = RULES.model_copy(update={"max_perplexity": 50})
    for ppl in (None, float("nan")):
        verdict = gate.training_verdict(rules, {"eval_loss": 2.5, "eval_perplexity": ppl}, {"eval_loss": 2.46})
        assert not verdict.ok and "the ceiling of 50 cannot be checked" in verdict.reasons[0]


def test_the_online_part_holds_errors_latency_and_a_drop_beyond_the_margin() -> None:
    serving = gate.Side(scores=[0.5] * 32, latencies_ms=[100.0] * 32)
    assert gate.online_verdict(RULES, gate.Side(scores=[0.5] * 32, latencies_ms=[120.0] * 32), serving).ok
    dropped = gate.online_verdict(RULES, gate.Side(scores=[0.4] * 32, latencies_ms=[120.0] * 32), serving)
    assert not dropped.ok and "ROUGE-L 0.500 -> 0.400 over 32 conversations" in dropped.reasons[0]
    failing = gate.online_verdict(RULES, gate.Side(scores=[0.5] * 30 + [0.0] * 2, latencies_ms=[100.0] * 32, failures=4), serving)
    assert any(r == "4 of 32 requests failed (12%; at most 5%)" for r in failing.reasons)
    slow = gate.online_verdict(RULES, gate.Side(scores=[0.5] * 32, latencies_ms=[9000.0] * 32), None)
    assert not slow.ok and slow.reasons == ["p95 latency 9000 ms is over 5000 ms"]  # a first version: absolute bounds only


def test_the_model_evaluation_steps_metrics_are_shown_against_the_serving_version_and_bound_perplexity() -> None:
    rules = GateRules(max_eval_loss_increase=0.1, max_perplexity=10.0)
    serving = {"eval_loss": 2.0, "eval_perplexity": None, "evaluation": {"rougeL": 0.30}}
    cand = {"eval_loss": 2.05, "eval_perplexity": None, "evaluation": {"rougeL": 0.25, "perplexity": 12.0}}
    verdict = gate.training_verdict(rules, cand, serving)
    assert verdict.reasons == ["eval perplexity 12.00 is over the ceiling of 10"]  # from the evaluation step
    assert "model evaluation rougeL 0.3000 -> 0.2500 (-0.0500)" in verdict.notes
    assert "model evaluation perplexity 12.0000" in verdict.notes
