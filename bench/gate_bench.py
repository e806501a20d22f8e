"""Benchmark: what the promotion gate and gradual traffic cost, against the plain rollout, measured in the same run.

1. Judging: ROUGE-L of N candidate and N serving replies against their references plus the seeded paired
   bootstrap (2,000 rounds), per gate, for N = 32 (the default) and 512 (the cap), against the baseline of
   comparing the two mean scores only (what a gate without a confidence bound would do). The gate's verdict
   runs inside one step: it must stay far below a step's budget (20 s).
2. Rollout on Azure's time: the real azure-ai-ml SDK against the in-process fake (deployments take 20 min on a
   virtual clock), users sending requests while a share is held. The candidate taking 100% at once (baseline)
   against `deploy.rollout: {steps: [10, 50, 100], hold: 10m}`: step invocations, HTTP calls, virtual minutes,
   and the longest invocation (wall ms: no invocation waits for a hold).

Run: ``.venv/bin/python bench/gate_bench.py``
"""

from __future__ import annotations

import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The identity every resource a run creates carries (GITOPS_REPO): nothing is written to a workspace without one.
REPO = "bench/finetune-gitops"

from gitops.ledger.local import LocalLedger  # noqa: E402
from gitops.lifecycle import gate  # noqa: E402
from gitops.lifecycle.flow import Lifecycle  # noqa: E402
from gitops.lifecycle.queue import MemoryQueue  # noqa: E402
from gitops.spec.validate import validate_text  # noqa: E402
from tests.fakes.azureml_api import FakeAzureML, azure_backend_for, intercept  # noqa: E402

WORDS = [
    "rain",
    "clouds",
    "water",
    "sky",
    "falls",
    "ocean",
    "rivers",
    "evaporate",
    "condense",
    "droplets",
    "cold",
    "warm",
    "air",
    "moves",
    "because",
]
SPEC = """
name: ramp
backend: azureml
model: {registry: azureml, name: Phi-4, version: "8"}
data: {train_path: "azureml:ultrachat-train:1", test_path: "azureml:ultrachat-test:1"}
compute: {cluster: gpu-cluster-big, instance_type: Standard_NC24ads_A100_v4}
finetune: {params: {learning_rate: LR, num_train_epochs: 1}}
deploy:
  endpoint: ramp-ep
  instance_type: Standard_NC24ads_A100_v4
  smoke_test: {messages: [{role: user, content: hi}], parameters: {max_new_tokens: 4}}
  gate: {enabled: false}
ROLLOUT
"""


def sentence(rng: random.Random, n: int = 30) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def judging(n: int) -> tuple[float, float]:
    """(ms per gate with ROUGE-L and the bootstrap, ms of the baseline mean comparison), best of 3."""
    rng = random.Random(n)
    refs = [sentence(rng) for _ in range(n)]
    cand, serv = [sentence(rng) for _ in range(n)], [sentence(rng) for _ in range(n)]
    gate.rouge_l("warm up", "warm up")
    full, base = [], []
    for _ in range(3):
        t = time.perf_counter()
        c = [gate.rouge_l(a, r) for a, r in zip(cand, refs, strict=True)]
        s = [gate.rouge_l(a, r) for a, r in zip(serv, refs, strict=True)]
        gate.paired_lower_bound(c, s, 0.95)
        full.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        _ = sum(c) / n - sum(s) / n
        base.append((time.perf_counter() - t) * 1000)
    return min(full), max(min(base), 1e-3)


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t


def rollout(rollout_yaml: str) -> dict[str, Any]:
    fake = FakeAzureML().seed_defaults()
    clock = Clock()
    fake.clock = clock.now
    fake.provisioning_s.update(onlineendpoints=90, deployments=20 * 60, delete=120)
    with intercept(fake), tempfile.TemporaryDirectory() as tmp:
        backend = azure_backend_for(fake)
        queue = MemoryQueue()
        life = Lifecycle(LocalLedger(Path(tmp)), lambda _: backend, topic=backend.topic, queue=queue, clock=clock.now, repo=REPO)

        def version(lr: str, with_rollout: bool) -> None:
            result = validate_text(SPEC.replace("LR", lr).replace("ROLLOUT", rollout_yaml if with_rollout else ""), "runs/ramp.yaml")
            assert result.ok, result.findings
            record = life.submit(result)
            fake.set_job_status(record.job_name, "Completed")
            life.on_job_event(fake.job_event(record.job_name))

        def drain(users: bool) -> dict[str, Any]:
            calls, users_calls, invocations, longest, started = len(fake.calls), 0, 0, 0.0, clock.now()
            while (nxt := queue.next_at()) is not None:
                clock.t = max(clock.t, nxt)
                for message in queue.due(clock.t):
                    t = time.perf_counter()
                    decision = life.advance(message.run)
                    longest = max(longest, (time.perf_counter() - t) * 1000)
                    invocations += 1
                    if users and decision.action == "waiting" and "watched for" in decision.reason:
                        before = len(fake.calls)
                        for _ in range(50):
                            backend.invoke("ramp-ep", {"input_data": {"input_string": [{"role": "user", "content": "hi"}]}})
                        users_calls += len(fake.calls) - before  # the users' requests are not the rollout's
            return {
                "invocations": invocations,
                "calls": len(fake.calls) - calls - users_calls,
                "minutes": (clock.t - started) / 60,
                "longest_ms": longest,
            }

        version("5.0e-6", False)
        drain(False)  # the first version, live: what the second one replaces
        version("6.0e-6", True)
        out = drain(True)
        got = life.ledger.get("ramp")
        assert got is not None and got[0].status == "live", got[0].history[-3:] if got else None
        out["held"] = [s.share for s in got[0].rollout_steps]
        return out


def main() -> None:
    logging.disable(logging.WARNING)
    print("judging (ROUGE-L + paired bootstrap, 2,000 rounds) vs comparing means only")
    for n in (32, 512):
        full, base = judging(n)
        print(
            f"  N={n:<4} gate {full:8.1f} ms   baseline {base:8.3f} ms   ratio {full / base:10.0f}x   "
            f"share of a 20 s step budget {full / 20000:.2%}"
        )
    at_once = rollout("")
    ramped = rollout("  rollout: {steps: [10, 50, 100], hold: 10m}")
    print("rollout of a second version on Azure's time (virtual clock), 100% at once vs [10, 50, 100] held 10m each")
    for key in ("invocations", "calls", "minutes", "longest_ms"):
        a, b = at_once[key], ramped[key]
        print(f"  {key:12} at once {a:9.1f}   ramped {b:9.1f}   ratio {b / a:6.2f}x")
    print(f"  shares held: {ramped['held']}")


if __name__ == "__main__":
    main()
