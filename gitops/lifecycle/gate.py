"""The promotion gate: is the candidate at least as good as the version serving now?

Two parts, both steps of the rollout (``gitops.lifecycle.steps``):

- **training metrics**: the candidate job's final eval loss may rise at most ``max_eval_loss_increase`` over the
  serving version's, and eval perplexity stays under ``max_perplexity`` when one is set (the first version of a
  run has nothing to compare with: absolute bounds only; a redeploy of the same job has no new metrics);
- **online evaluation**: N held-out conversations of the test split (a fixed seed; the trailing assistant turn is
  the reference) are sent to the candidate at 0% and to the serving deployment, greedily; each reply is scored
  with ROUGE-L (``rouge-score``, the metric summarisation and chat fine-tunes report). The candidate passes when
  the one-sided lower bound of the paired bootstrap of the mean difference (candidate - serving) is above
  ``-margin`` at ``confidence``, its error rate is within ``max_error_rate`` and its p95 latency within
  ``max_p95_latency_ms``. The first version is held to the error rate and latency only.

Each part passes only on positive evidence: a loss that was not logged or is not a finite number, a test split that
cannot be read, a serving deployment that does not answer, all hold the candidate, unless the run waives that kind
of evidence by name (``deploy.gate.waive``: ``training_metrics``, ``held_out``; ``enabled: false`` waives both and
``conversations: 0`` the held-out part).

Everything here is pure (no backend, no clock): the steps feed it and record what it says.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from gitops.spec.policy import GateRules
from pipelines.chat_format import prompt_messages

SAMPLE_SEED = 20240607  # the held-out conversations are the same for every version of every run
BOOTSTRAP_SEED = 7
BOOTSTRAP_ROUNDS = 2000
MAX_TEST_BYTES = 64 * 1024 * 1024  # a test split is read whole to sample from it; larger is not a test split


@dataclass(frozen=True)
class Conversation:
    index: int  # the row in the test split
    prompt: list[dict[str, str]]
    reference: str


def sample_conversations(test_path: str | None, n: int, seed: int = SAMPLE_SEED) -> list[Conversation]:
    """``n`` conversations of the test split that end with an assistant turn, chosen with a fixed seed."""
    if not test_path or n <= 0:
        return []
    path = Path(test_path)
    if not path.is_file() or path.stat().st_size > MAX_TEST_BYTES:
        return []
    usable: list[Conversation] = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                messages = json.loads(line).get("messages") or []
            except (ValueError, AttributeError):
                continue
            if len(messages) >= 2 and messages[-1].get("role") == "assistant" and str(messages[-1].get("content", "")).strip():
                prompt = prompt_messages(messages)
                if prompt:
                    usable.append(Conversation(i, prompt, str(messages[-1]["content"])))
    if len(usable) <= n:
        return usable
    return sorted(random.Random(seed).sample(usable, n), key=lambda c: c.index)


def rouge_l(reply: str, reference: str) -> float:
    """ROUGE-L F-measure of a reply against the reference answer (0 for an empty reply)."""
    if not reply.strip():
        return 0.0
    return float(_rouge_scorer().score(reference, reply)["rougeL"].fmeasure)


@cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer  # a small library; imported when an evaluation runs

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def paired_lower_bound(
    candidate: list[float], serving: list[float], confidence: float, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """The mean of candidate - serving over paired conversations, and the one-sided lower bound of its
    ``confidence`` bootstrap interval (resampling conversations, seeded: the same scores give the same verdict)."""
    diffs = [c - s for c, s in zip(candidate, serving, strict=True)]
    if not diffs:
        return 0.0, 0.0
    mean = sum(diffs) / len(diffs)
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return mean, means[int((1 - confidence) * rounds)]


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


@dataclass
class Side:
    """What one deployment answered: a score, a latency and success per conversation, in the sample's order."""

    scores: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None

    @property
    def error_rate(self) -> float:
        total = len(self.scores)
        return self.failures / total if total else 0.0


@dataclass
class Verdict:
    """The gate's decision with its numbers: what ``status``, the report and the PR comment show."""

    ok: bool
    reasons: list[str] = field(default_factory=list)  # why it failed (empty when it passed)
    notes: list[str] = field(default_factory=list)  # what was checked, for the record
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EVALUATION_PERPLEXITY = ("perplexity", "mean_perplexity", "perplexity_mean")  # names an evaluation step may log it under


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number; None for anything else (missing, NaN, infinite, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _missing(value: Any) -> str:
    return "was not logged" if value is None else f"is {value!r}, not a finite number"


def training_verdict(rules: GateRules, candidate: dict[str, Any], serving: dict[str, Any] | None) -> Verdict:
    """The candidate's final eval loss and perplexity against the serving version's (``None``: a first version), and
    the metrics of the pipeline's model evaluation step beside the serving version's (shown; the perplexity ceiling
    reads its perplexity when the training logged none). It passes only on evidence: a loss that is missing or not
    a finite number, on either side of a comparison, is a reason to hold, never a pass."""
    verdict = Verdict(True, numbers={"candidate": candidate, "serving": serving})
    evaluation, before_eval = candidate.get("evaluation") or {}, (serving or {}).get("evaluation") or {}
    raw_loss, raw_ppl = candidate.get("eval_loss"), candidate.get("eval_perplexity")
    if raw_ppl is None:
        raw_ppl = next((evaluation[k] for k in EVALUATION_PERPLEXITY if k in evaluation), None)
    for name in sorted(evaluation):
        now, old = finite(evaluation[name]), finite(before_eval.get(name))
        if now is None:
            verdict.notes.append(f"model evaluation {name} {evaluation[name]!r}")
        elif old is None:
            verdict.notes.append(f"model evaluation {name} {now:.4f}")
        else:
            verdict.notes.append(f"model evaluation {name} {old:.4f} -> {now:.4f} ({now - old:+.4f})")
    ceiling, ppl = rules.max_perplexity, finite(raw_ppl)
    if ceiling is not None and ppl is None:
        verdict.reasons.append(f"eval perplexity {_missing(raw_ppl)}: the ceiling of {ceiling:g} cannot be checked")
    elif ceiling is not None and ppl is not None and ppl > ceiling:
        verdict.reasons.append(f"eval perplexity {ppl:.2f} is over the ceiling of {ceiling:g}")
    loss = finite(raw_loss)
    if loss is None:
        verdict.reasons.append(
            f"eval loss {_missing(raw_loss)}: the training gives no evidence (log one: a test split and an evaluation_strategy"
            " other than disable; or waive training_metrics)"
        )
    elif serving is None:
        verdict.notes.append(f"eval loss {loss:.4f}; nothing serving to compare with (a first version: absolute bounds only)")
    elif (before := finite(serving.get("eval_loss"))) is None:
        verdict.reasons.append(
            f"the serving version's eval loss {_missing(serving.get('eval_loss'))}: the candidate's {loss:.4f} has nothing to be"
            " compared with (promote by hand, or waive training_metrics)"
        )
    else:
        rise, allowed = loss - before, rules.max_eval_loss_increase
        line = f"eval loss {before:.4f} -> {loss:.4f} ({rise:+.4f}; at most +{allowed:g})"
        (verdict.reasons if rise > allowed else verdict.notes).append(line)
    verdict.ok = not verdict.reasons
    return verdict


def online_verdict(rules: GateRules, candidate: Side, serving: Side | None) -> Verdict:
    """Error rate and p95 latency of the candidate; non-inferiority of its ROUGE-L against the serving deployment."""
    verdict = Verdict(True)
    n = len(candidate.scores)
    cand_p95 = p95(candidate.latencies_ms)
    verdict.numbers = {
        "conversations": n,
        "candidate_rouge_l": candidate.mean,
        "candidate_error_rate": candidate.error_rate,
        "candidate_p95_ms": cand_p95,
    }
    if candidate.error_rate > rules.max_error_rate:
        verdict.reasons.append(
            f"{candidate.failures} of {n} requests failed ({candidate.error_rate:.0%}; at most {rules.max_error_rate:.0%})"
        )
    bound = rules.max_p95_latency_ms
    if bound is not None and cand_p95 is not None and cand_p95 > bound:
        verdict.reasons.append(f"p95 latency {cand_p95:.0f} ms is over {bound} ms")
    if serving is not None and serving.scores:
        mean, low = paired_lower_bound(candidate.scores, serving.scores, rules.confidence)
        margin = rules.margin
        verdict.numbers.update(
            serving_rouge_l=serving.mean,
            serving_error_rate=serving.error_rate,
            serving_p95_ms=p95(serving.latencies_ms),
            rouge_l_delta=mean,
            rouge_l_delta_lower=low,
        )
        line = (
            f"ROUGE-L {serving.mean:.3f} -> {candidate.mean:.3f} over {n} conversations (mean change {mean:+.3f}, "
            f"{rules.confidence:.0%} lower bound {low:+.3f}; may drop at most {margin:g})"
        )
        (verdict.reasons if low < -margin else verdict.notes).append(line)
    elif n:
        verdict.notes.append(f"ROUGE-L {candidate.mean:.3f} over {n} conversations; nothing serving to compare with")
    verdict.ok = not verdict.reasons
    return verdict


# -- gradual traffic -------------------------------------------------------------------------------
def traffic_breaches(
    share: int, requests: int, errors: int, p95_ms: float | None, *, max_error_rate: float, max_p95_latency_ms: float, min_requests: int
) -> list[str]:
    """Why the candidate may not take more traffic after holding ``share`` percent (empty: it may)."""
    reasons = []
    if requests < min_requests:
        reasons.append(f"only {requests} requests reached it at {share}% (at least {min_requests} to judge)")
    if requests and errors / requests > max_error_rate:
        reasons.append(f"error rate {errors / requests:.1%} at {share}% ({errors} of {requests}) is over {max_error_rate:.1%}")
    if p95_ms is not None and p95_ms > max_p95_latency_ms:
        reasons.append(f"p95 latency {p95_ms:.0f} ms at {share}% is over {max_p95_latency_ms:.0f} ms")
    return reasons
