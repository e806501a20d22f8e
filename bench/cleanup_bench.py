"""Benchmark: usage figures for cleanup over 1,000 Azure endpoints, ours against the naive way.

Both run the real azure-ai-ml and azure-monitor-querymetrics clients against the in-process fake of the
Azure REST API (tests/fakes), in the same run:
  - ours: one endpoint list call, then one ``metrics:getBatch`` call per 50 endpoints (cleanup's ``gather``);
  - naive: the list call, then one endpoint GET and one metrics query per endpoint (2N+1 calls).
Reports HTTP calls and wall time of each and their ratio; target: calls <= 1 + ceil(N/50), time < 2 s.
Run: ``.venv/bin/python bench/cleanup_bench.py [N]``.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitops.backends.azureml.usage import NAMESPACE  # noqa: E402
from gitops.cleanup.run import gather, rules_from  # noqa: E402
from gitops.ledger.local import LocalLedger  # noqa: E402
from gitops.spec.policy import Policy  # noqa: E402
from tests.fakes.azureml_api import FakeAzureML, azure_backend_for, intercept  # noqa: E402

REPO = "acme/models"  # the repository whose endpoints the benchmark cleans up


def populate(fake: FakeAzureML, n: int) -> None:
    now = datetime.now(UTC)
    for i in range(n):
        name = f"bench-ep-{i:04d}"
        fake.put_resource(
            f"{fake.ws_path}/onlineEndpoints/{name}",
            {
                "location": fake.location,
                "identity": {"type": "SystemAssigned"},
                "tags": {"managed_by": "finetune-gitops", "gitops_repo": REPO, "gitops_run": f"run-{i}"},
                "properties": {
                    "authMode": "Key",
                    "scoringUri": f"https://{name}.{fake.location}.inference.ml.azure.com/score",
                    "traffic": {"blue": 100},
                    "properties": {},
                },
            },
        )
        if i % 3 == 0:
            fake.add_requests(name, now - timedelta(minutes=i % 600), 5)


def ours(fake: FakeAzureML, workdir: Path) -> tuple[int, float, int]:
    backend = azure_backend_for(fake)
    ledger = LocalLedger(workdir / "ledger")
    rules = rules_from(Policy())
    start_calls, t0 = len(fake.calls), time.perf_counter()
    facts = gather(backend, ledger, rules, None, REPO)
    elapsed = time.perf_counter() - t0
    return len(fake.calls) - start_calls, elapsed, sum(1 for f in facts if f.usage_known)


def naive(fake: FakeAzureML) -> tuple[int, float, int]:
    backend = azure_backend_for(fake)
    ws = backend.clients.workspace
    metrics = backend.metrics
    backend.clients.remember_location(fake.location)
    start_calls, t0 = len(fake.calls), time.perf_counter()
    known = 0
    end = datetime.now(UTC)
    for endpoint in list(ws.online_endpoints.list()):
        ws.online_endpoints.get(endpoint.name)
        results = metrics._metrics().query_resources(
            resource_ids=[metrics.resource_id(endpoint.name)],
            metric_namespace=NAMESPACE,
            metric_names=["RequestsPerMinute"],
            timespan=(end - timedelta(hours=24), end),
            granularity=timedelta(minutes=1),
            aggregations=["Total"],
        )
        known += len(results)
    return len(fake.calls) - start_calls, time.perf_counter() - t0, known


def main(n: int = 1000) -> None:
    import logging

    logging.disable(logging.WARNING)  # the SDK's activity logging is not what we measure
    fake = FakeAzureML().seed_defaults()
    populate(fake, n)
    with intercept(fake), tempfile.TemporaryDirectory() as tmp:
        ours(fake, Path(tmp))  # warm-up: imports and client construction are not the subject
        naive_calls, naive_s, naive_known = naive(fake)
        our_calls, our_s, our_known = ours(fake, Path(tmp))
    target_calls = 1 + math.ceil(n / 50)
    print(f"endpoints: {n}")
    print(f"ours : {our_calls:5d} HTTP calls, {our_s:6.2f} s, usage known for {our_known}")
    print(f"naive: {naive_calls:5d} HTTP calls, {naive_s:6.2f} s, usage known for {naive_known}")
    print(f"calls ours/naive = {our_calls / naive_calls:.4f}; time ours/naive = {our_s / naive_s:.3f}")
    print(
        f"target: calls <= {target_calls} -> {'met' if our_calls <= target_calls else 'MISSED'}; "
        f"time < 2 s -> {'met' if our_s < 2 else 'MISSED'}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
