"""Benchmark: spec validation, a 500-spec plan, and CLI start-up against ``import azure.ai.ml``.

Generates 500 specs in a temporary git repository (250 at base; at head 125 of them changed and 250
added), then reports:
  - ``validate`` time per spec (both passes, in-process) against the 5 ms target,
  - one ``plan`` over all 500 specs (effects and costs from the snapshot) against the 3 s target,
  - the same plan with live prices from a Retail Prices API on loopback (a documented answer): requests made
    (one per VM size, not per spec) and its time as a ratio of the snapshot plan,
  - ``gitops --help`` wall time as a ratio of ``python -c "import azure.ai.ml"`` (target <= 1/3),
all measured in the same run. Run: ``.venv/bin/python bench/plan_bench.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitops.review.plan import build_plan  # noqa: E402
from gitops.spec.policy import Policy  # noqa: E402
from gitops.spec.validate import validate_text  # noqa: E402

SPEC = """name: {name}
backend: azureml
owner: team-{i}
model: {{registry: azureml, name: Phi-4, version: "8"}}
data: {{dataset: HuggingFaceH4/ultrachat_200k, train_split: train_sft, test_split: test_sft, sample_percent: 5}}
compute: {{cluster: gpu-cluster-big, instance_type: Standard_NC24ads_A100_v4, nodes: 1}}
finetune:
  component_version: 0.0.82
  params: {{num_train_epochs: 3, per_device_train_batch_size: 1, learning_rate: {lr}, lr_scheduler_type: cosine,
           apply_lora: true, apply_deepspeed: true, deepspeed_stage: 2, gradient_accumulation_steps: 2}}
deploy: {{endpoint: {name}-ep, instance_type: Standard_NC48ads_A100_v4}}
lifecycle: {{idle_after: 24h, expire_after: 7d}}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path, n: int) -> str:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "config", "user.name", "bench")
    (root / "runs").mkdir()
    half = n // 2
    for i in range(half):
        (root / "runs" / f"run-{i:04d}.yaml").write_text(SPEC.format(name=f"run-{i:04d}", i=i, lr="5.0e-6"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    base = git(root, "rev-parse", "HEAD")
    for i in range(0, half, 2):
        (root / "runs" / f"run-{i:04d}.yaml").write_text(SPEC.format(name=f"run-{i:04d}", i=i, lr="1.0e-5"))
    for i in range(half, n):
        (root / "runs" / f"run-{i:04d}.yaml").write_text(SPEC.format(name=f"run-{i:04d}", i=i, lr="5.0e-6"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "head")
    return base


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def live_plan(repo: Path, base: str) -> tuple[float, int]:
    """The plan with a live price source: an HTTP server on 127.0.0.1 answering the documented body."""
    import json

    from gitops.backends.azureml.retail_prices import RetailPrices
    from gitops.cost.prices import PriceBook, committed_snapshot
    from tests.loopback import json_server

    documented = json.loads((ROOT / "tests/contracts/retail-prices/vm_prices_nc24ads_eastus.json").read_text())["body"]
    asked: list[str] = []

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> object:
        asked.append(path)
        return documented

    with json_server(answer) as url:
        start = time.perf_counter()
        plan = build_plan(repo, base, prices=PriceBook([RetailPrices(f"{url}/api/retail/prices"), committed_snapshot()]))
        seconds = time.perf_counter() - start
    assert all(s.cost is not None for s in plan.specs)
    return seconds, len(asked)


def main() -> int:
    n = 500
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        base = make_repo(repo, n)
        texts = [(p.read_text(), str(p.relative_to(repo))) for p in sorted((repo / "runs").glob("*.yaml"))]
        policy = Policy()
        validate_text(*texts[0], policy)  # warm caches (component interface)
        per_spec = []
        for text, path in texts:
            start = time.perf_counter()
            result = validate_text(text, path, policy)
            per_spec.append(time.perf_counter() - start)
            assert result.ok, result.findings
        plan_s = best_of(3, lambda: build_plan(repo, base))
        plan = build_plan(repo, base)
        assert len(plan.specs) == n, len(plan.specs)
        live_s, requests = live_plan(repo, base)

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    gitops_bin = str(Path(sys.executable).parent / "gitops")
    cli_s = statistics.median(
        [best_of(1, lambda: subprocess.run([gitops_bin, "--help"], env=env, capture_output=True, check=True)) for _ in range(5)]
    )
    sdk_s = statistics.median(
        [
            best_of(1, lambda: subprocess.run([sys.executable, "-c", "import azure.ai.ml"], env=env, capture_output=True, check=True))
            for _ in range(5)
        ]
    )
    python_s = statistics.median(
        [best_of(1, lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, check=True)) for _ in range(5)]
    )

    mean_ms = statistics.mean(per_spec) * 1000
    p95_ms = sorted(per_spec)[int(len(per_spec) * 0.95)] * 1000
    ratio = cli_s / sdk_s
    print(
        f"specs: {n} ({len(plan.by_status('added'))} added, {len(plan.by_status('changed'))} changed, "
        f"{len(plan.by_status('unchanged'))} unchanged)"
    )
    print(f"validate per spec: mean {mean_ms:.2f} ms, p95 {p95_ms:.2f} ms      target < 5 ms   {'OK' if mean_ms < 5 else 'MISSED'}")
    print(f"plan over {n} specs: {plan_s:.2f} s                  target < 3 s    {'OK' if plan_s < 3 else 'MISSED'}")
    print(
        f"plan with live prices (loopback API): {live_s:.2f} s, {requests} request(s) for {n} specs; "
        f"ratio to the snapshot plan {live_s / plan_s:.2f}"
    )
    print(f"CLI start (gitops --help): {cli_s * 1000:.0f} ms; bare python: {python_s * 1000:.0f} ms")
    print(f"import azure.ai.ml (same run): {sdk_s * 1000:.0f} ms")
    print(f"ratio CLI start / azure.ai.ml import: {ratio:.2f}        target <= 0.33  {'OK' if ratio <= 1 / 3 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
