"""Benchmark: what one watch costs, against the floor of reading each thing it looks at once, measured in the same run.

The real azure-ai-ml SDK against the in-process fake of the Azure ML REST API: N runs live (each submitted and
rolled out through the lifecycle), a third of their endpoints drifted by hand. The watch (the online checks of
every spec, the newest-version lookup, and drift on every endpoint) is timed and its HTTP calls counted, against the
baseline of one ``online_findings`` per spec plus one ``get_endpoint`` per run (what a PR check of every spec and a
plain endpoint listing would read anyway). The ratio is the watch's own cost over that floor.

Run: ``.venv/bin/python bench/watch_bench.py [RUNS]``
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The identity every resource a run creates carries (GITOPS_REPO): nothing is written to a workspace without one.
REPO = "bench/finetune-gitops"

from bench.events_bench import SPEC as EVENTS_SPEC  # noqa: E402
from gitops.ledger.local import LocalLedger  # noqa: E402
from gitops.lifecycle.flow import Lifecycle  # noqa: E402
from gitops.review.check import online_findings  # noqa: E402
from gitops.spec.validate import validate_text  # noqa: E402
from gitops.watch.scan import ledger_specs, scan  # noqa: E402
from tests.fakes.azureml_api import FakeAzureML, azure_backend_for, intercept  # noqa: E402

# The events benchmark's Azure spec (the gate off there too): this one measures the watch, not rollouts.
SPEC = EVENTS_SPEC


def main(runs: int) -> None:
    logging.disable(logging.WARNING)
    fake = FakeAzureML().seed_defaults()
    with tempfile.TemporaryDirectory() as tmp, intercept(fake):
        backend = azure_backend_for(fake)
        life = Lifecycle(LocalLedger(Path(tmp)), lambda _: backend, topic=backend.topic, repo=REPO)
        for i in range(runs):
            validated = validate_text(SPEC.format(name=f"w{i:03d}"), f"runs/w{i:03d}.yaml")
            record = life.submit(validated)
            fake.set_job_status(record.job_name, "Completed")
            life.on_job_event(fake.job_event(record.job_name))
            life.settle(record.run, sleep=lambda _: None)
        for record in life.ledger.list()[::3]:  # a third drifted by hand
            fake.endpoint(str(record.endpoint))["properties"]["traffic"] = {}
        specs = ledger_specs(life.ledger.list())

        calls, t0 = len(fake.calls), time.perf_counter()
        result = scan(specs, life.ledger, lambda _: backend, time.time(), repo=life.repo)
        watch_s, watch_calls = time.perf_counter() - t0, len(fake.calls) - calls

        calls, t0 = len(fake.calls), time.perf_counter()
        for _, validated in specs:
            online_findings(validated, backend)
        for record in life.ledger.list():
            backend.get_endpoint(str(record.endpoint))
        base_s, base_calls = time.perf_counter() - t0, len(fake.calls) - calls

    drift = sum(1 for f in result.findings if f.kind == "drift")
    print(f"watch over {runs} live runs on Azure (the fake), {drift} drifted endpoints found of {len(range(0, runs, 3))}")
    print(f"  watch    {watch_s * 1000:8.0f} ms   {watch_calls:5d} HTTP calls   {watch_calls / runs:5.1f} per run")
    print(f"  baseline {base_s * 1000:8.0f} ms   {base_calls:5d} HTTP calls   (online checks + one endpoint read per run)")
    print(f"  ratio    time {watch_s / base_s:5.2f}x   calls {watch_calls / base_calls:5.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
