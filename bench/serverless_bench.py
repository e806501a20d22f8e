"""Benchmark: the serverless path beside the GPU path, one run each, in the same process.

1. Cost, as the plan computes it (gitops.cost): the serverless reference run (runs/phi4-mini-serverless.yaml:
   Phi-4-mini-instruct fine-tuned serverless, served on a serverless endpoint) against the same run trained and served
   on Standard_NC24ads_A100_v4 (finetune.kind: job, deploy.kind: managed): training, then 30 days of serving at a
   traffic profile. Prices: the committed VM snapshot; serverless rates from bench/assumed_serverless_prices.yaml,
   dated, each unpublished one marked "assumed" and printed as such. The tokens a version trains on and the GPU
   hours it takes come from a previous version's report (assumed figures, printed).
2. Merge to serving against the fake Azure ML API on a virtual clock (azure-ai-ml's real SDK, HTTP intercepted):
   lifecycle invocations, HTTP calls and the longest invocation, for each path.
Run: ``.venv/bin/python bench/serverless_bench.py [requests_per_day]``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from gitops.cost.estimate import CostEstimate, estimate  # noqa: E402
from gitops.cost.prices import committed_snapshot  # noqa: E402
from gitops.cost.tokens import read_token_snapshot  # noqa: E402
from gitops.ledger.model import RunRecord  # noqa: E402
from gitops.spec.policy import parse_policy  # noqa: E402
from gitops.spec.validate import ValidSpec, validate_text  # noqa: E402

SPEC = ROOT / "runs" / "phi4-mini-serverless.yaml"
ASSUMED = ROOT / "bench" / "assumed_serverless_prices.yaml"
DAYS = 30
# The traffic profile: requests a day, and the tokens of each (a chat turn with a few turns of history).
PROMPT_TOKENS, COMPLETION_TOKENS = 600, 250
# What a previous version of the run showed (assumed: no run of this repository has trained on Azure yet): 5% of
# ultrachat_200k is ~10,400 conversations of ~1,400 tokens, one epoch; on one A100 that took 2.5 hours.
PREVIOUS_TOKENS, PREVIOUS_GPU_HOURS = 14_600_000, 2.5


def _variants() -> tuple[ValidSpec, ValidSpec]:
    text = SPEC.read_text()
    serverless = validate_text(text, "runs/phi4-mini-serverless.yaml").valid()
    on_gpu = text.replace("kind: serverless\n  params", "kind: job\n  params").replace("  kind: serverless\n  endpoint", "  endpoint")
    on_gpu = on_gpu.replace("finetune:\n", "compute:\n  instance_type: Standard_NC24ads_A100_v4\nfinetune:\n")
    on_gpu = on_gpu.replace("deploy:\n", "deploy:\n  instance_type: Standard_NC24ads_A100_v4\n")
    return serverless, validate_text(on_gpu, "runs/phi4-mini-serverless.yaml").valid()


def _previous(valid: ValidSpec) -> RunRecord:
    return RunRecord(
        run=valid.spec.name,
        backend="azureml",
        job_name="previous",
        digest="d",
        spec=valid.spec.model_dump(mode="json"),
        params=valid.params,
        report={"tokens_seen": PREVIOUS_TOKENS, "duration_s": PREVIOUS_GPU_HOURS * 3600},
    )


def costs(requests_per_day: int) -> None:
    policy, _ = parse_policy((ROOT / "gitops.yaml").read_text())
    assert policy is not None
    tokens = read_token_snapshot(ASSUMED)
    serverless, on_gpu = _variants()
    hours = DAYS * 24.0
    prompt, completion = requests_per_day * DAYS * PROMPT_TOKENS, requests_per_day * DAYS * COMPLETION_TOKENS
    rows: list[tuple[str, CostEstimate]] = []
    for label, valid in (("serverless", serverless), ("NC24ads_A100_v4", on_gpu)):
        rows.append((label, estimate(valid.spec, valid.params, policy, committed_snapshot(), _previous(valid), token_prices=tokens)))
    rates = tokens.rates("eastus", "Phi-4-mini-instruct")
    assert rates is not None
    print(f"prices: VMs {committed_snapshot().as_of} (snapshot); serverless {rates.as_of} ({ASSUMED.name}):")
    for rate in ("train_per_million", "input_per_million", "output_per_million", "hosting_per_hour"):
        print(f"  {rate:20} {rates.label(rate)}")
    print(f"previous version (assumed): {PREVIOUS_TOKENS:,} tokens seen, {PREVIOUS_GPU_HOURS} h on one A100")
    print(f"traffic: {requests_per_day:,} requests/day x {DAYS} days, {PROMPT_TOKENS} prompt + {COMPLETION_TOKENS} completion tokens each")
    print(f"\n{'path':18} {'training':>12} {'serving 30d':>12} {'total':>12}")
    totals = {}
    for label, cost in rows:
        train, serve = cost.training_usd, cost.serving_usd(hours, prompt, completion)
        total = None if train is None or serve is None else train + serve
        totals[label] = total
        money = ["?" if v is None else f"${v:,.2f}" for v in (train, serve, total)]
        print(f"{label:18} {money[0]:>12} {money[1]:>12} {money[2]:>12}")
    if all(totals.values()):
        print(f"ratio serverless/GPU: {totals['serverless'] / totals['NC24ads_A100_v4']:.2f} (assumed serverless prices)")


def merge_to_serving() -> None:
    from tests.fakes import azureml_seed as seed
    from tests.virtual_azure import virtual_world

    serverless_text = SPEC.read_text().replace(
        "  dataset: HuggingFaceH4/ultrachat_200k\n  train_split: train_sft\n  test_split: test_sft\n  sample_percent: 5\n",
        "  train_path: azureml:ultrachat-train:1\n  test_path: azureml:ultrachat-test:1\n",
    )
    rows = []
    for label in ("serverless", "managed (GPU)"):
        with tempfile.TemporaryDirectory() as tmp, virtual_world(Path(tmp)) as w, contextlib.redirect_stdout(io.StringIO()):
            w.fake.add_model(seed.registry_model(seed.PHI4_SPEC), "Phi-4-mini-instruct", "3")
            w.fake.provisioning_s["serverlessendpoints"] = 120
            start_calls, start = len(w.fake.calls), w.clock.now()
            if label == "serverless":
                valid = validate_text(serverless_text, "runs/phi4-mini-serverless.yaml")
                job = w.lifecycle.submit(valid).job_name
                run = "phi4-mini-serverless"
            else:
                job = w.lifecycle.submit(w.spec()).job_name
                run = "phi4-ultrachat"
            w.fake.set_job_status(job, "Completed")
            w.lifecycle.on_job_event(w.fake.job_event(job))
            walls: list[float] = []
            advance = w.lifecycle.advance

            def timed(name: str, advance=advance, walls=walls):  # type: ignore[no-untyped-def]
                began = time.perf_counter()
                try:
                    return advance(name)
                finally:
                    walls.append(time.perf_counter() - began)

            w.lifecycle.advance = timed  # type: ignore[method-assign]
            w.deliver()
            got = w.lifecycle.ledger.get(run)
            assert got is not None and got[0].status == "live", got[0].history[-3:] if got else None
            minutes = (w.clock.now() - start) / 60
            rows.append(f"{label:18} {len(w.invocations):>12} {len(w.fake.calls) - start_calls:>11} {max(walls):>8.2f}s {minutes:>11.1f}m")
    print(f"\n{'merge to serving':18} {'invocations':>12} {'HTTP calls':>11} {'longest':>9} {'Azure time':>13}")
    print("\n".join(rows))
    print("(longest: the wall time of the longest invocation here; Azure time: the virtual minutes the fake's provisioning took)")


def main() -> None:
    logging.disable(logging.WARNING)
    requests_per_day = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    costs(requests_per_day)
    merge_to_serving()


if __name__ == "__main__":
    main()
