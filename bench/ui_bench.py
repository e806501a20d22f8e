"""Benchmark: the dashboard's pages against reading the same records as JSON, for 1, 100 and 1,000 runs.

For each size, a ledger on disk (the local ledger: one JSON file per run) holds that many records of a run that went
live through a gradual rollout (its spec, policy, history, gate verdict with its numbers, the shares it held). In the
same process, each measured as the median of several rounds:

- baseline: the records read and written as JSON, as ``gitops status --json`` does (``ledger.list()``, dumped);
- the run list page (``/``): the same read, then the rows and the HTML (Jinja2, autoescaped);
- a run page (``/runs/<run>``): one record read, its cost priced, its loss curves (this version's and the previous
  one's) read from an MLflow store on SQLite, the HTML.

Printed: time per page and bytes, and the ratio list/baseline (target at 1,000 runs: within 2x).
Run: ``.venv/bin/python bench/ui_bench.py [sizes...]`` (default 1 100 1000).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from gitops.cost.prices import committed_snapshot  # noqa: E402
from gitops.dashboard.pages import DashboardSource, respond  # noqa: E402
from gitops.ledger.local import LocalLedger  # noqa: E402
from gitops.ledger.model import HistoryEntry, RunRecord  # noqa: E402
from gitops.ledger.step_state import HeldShare  # noqa: E402
from gitops.report.metrics import MlflowMetricsReader  # noqa: E402
from gitops.spec.validate import validate_text  # noqa: E402
from gitops.util.durations import iso_times  # noqa: E402

NOW = 1_800_000_000.0
SPEC = (ROOT / "runs" / "phi4-ultrachat.yaml").read_text()
STEPS = (
    "submitted", "running", "deploying", "deploying", "deploying", "deploying", "deploying", "deploying",
    "deploying", "deploying", "deploying", "deploying", "deploying", "live",
)  # fmt: skip


def a_record(name: str) -> RunRecord:
    valid = validate_text(SPEC.replace("name: phi4-ultrachat", f"name: {name}"), f"runs/{name}.yaml")
    assert valid.ok and valid.spec is not None
    history = [HistoryEntry(at=NOW - 3 * 3600 + i * 600, status=s, note=f"step {i}: {s}") for i, s in enumerate(STEPS)]
    return RunRecord(
        run=name,
        backend="azureml",
        job_name=f"{name}-job-2",
        previous_job=f"{name}-job-1",
        digest="d" * 12,
        spec=valid.spec.model_dump(mode="json"),
        params=dict(valid.params),
        status="live",  # type: ignore[arg-type]
        endpoint=f"{name}-ep",
        deployment="v2-abcdef",
        previous_deployment="v1-123456",
        model_name=f"{name}-model",
        model_version="2",
        serving_model_version="2",
        history=history,
        gate={
            "ok": True,
            "reasons": [],
            "notes": ["eval loss 2.1 <= 2.2", "ROUGE-L 0.39 -> 0.40 over 32 conversations"],
            "numbers": {"training": {"candidate": {"eval_loss": 2.1}, "serving": {"eval_loss": 2.2}}, "online": {"conversations": 32}},
        },
        rollout_steps=[
            HeldShare(share=s, requests=400, errors=1, p95_latency_ms=900.0, held_s=600, ok=True, at=NOW - 3600) for s in (10, 50)
        ],
        commit="c0ffee" * 6 + "abcd",
        pr="7",
        updated_at=NOW - 600,
    )


def metrics_store(directory: Path, jobs: list[str]) -> str:
    """An MLflow store on SQLite with each job's curves (100 train points, 10 eval points), as a trainer logs them."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("bench")
    for job in jobs:
        run = client.create_run(experiment, run_name=job)
        train = [Metric("train_loss", 2.6 - i * 0.005, 0, i) for i in range(100)]
        evals = [Metric("eval_loss", 2.5 - i * 0.02, 0, i * 10) for i in range(10)]
        client.log_batch(run.info.run_id, metrics=train + evals)
    return uri


def median_s(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(n: int, root: Path, template: RunRecord, reader: MlflowMetricsReader) -> float:
    """One size: its ledger written, then the baseline and both pages timed; prints the row, returns list/baseline."""
    ledger = LocalLedger(root / f"ledger-{n}")
    for i in range(n):
        name = f"run-{i:04d}"
        ledger.put(template if i == 0 else template.model_copy(update={"run": name, "endpoint": f"{name}-ep"}), None)
    source = DashboardSource(ledger, lambda _backend: reader, lambda: NOW, committed_snapshot(), "acme/models")
    rounds = 5 if n >= 1000 else 15

    def as_json() -> str:
        return json.dumps([iso_times(r.model_dump(mode="json", exclude={"spec"})) for r in ledger.list()], indent=2)

    listed = respond(source, "/")
    run = respond(source, "/runs/run-0000")
    assert listed.status == 200 and run.status == 200 and b"run-0000" in listed.body
    assert run.body.count(b"<polyline") == 4, "the run page draws both versions' curves"
    baseline = median_s(as_json, rounds)
    list_s = median_s(lambda: respond(source, "/"), rounds)
    run_s = median_s(lambda: respond(source, "/runs/run-0000"), rounds)
    print(
        f"{n:>6} {baseline * 1e3:>9.1f} {list_s * 1e3:>9.1f} {len(listed.body) / 1024:>9.1f} "
        f"{run_s * 1e3:>8.1f} {len(run.body) / 1024:>8.1f} {list_s / baseline:>10.2f}"
    )
    return list_s / baseline


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = a_record("run-0000")
        uri = metrics_store(root, [template.job_name, str(template.previous_job)])
        reader = MlflowMetricsReader(uri)
        print(f"{'runs':>6} {'JSON ms':>9} {'list ms':>9} {'list KB':>9} {'run ms':>8} {'run KB':>8} {'list/JSON':>10}")
        ratios: dict[int, float] = {}
        for n in sizes:
            ratios[n] = measure(n, root, template, reader)
        largest = max(sizes)
        verdict = "within" if ratios[largest] <= 2.0 else "OVER"
        print(f"list page at {largest} runs: {ratios[largest]:.2f}x the JSON baseline ({verdict} the 2x target)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 100, 1000])
