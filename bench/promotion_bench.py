"""Benchmark: what environments add to the reconcile pass, against the same runs without them, in the same run.

N runs live on the local backend (a dev workspace directory, a registry directory). The reconcile timer runs every
few minutes and now also asks, of every live run, whether its promotion to the next environment is due.
  - baseline: one reconcile pass over the N runs of a policy with no environments;
  - waiting: the same runs under dev -> prod, before their soak: every pass checks and finds nothing due;
  - due: the pass after the soak, which shares each run's model into the registry once (files copied, the content
    digest checked before and after) and records N promotions;
  - again: the next pass, which must share nothing (each promotion is recorded once).
Reports the time of each pass and the ratios waiting/baseline (the steady cost every tick pays) and again/baseline.
Run: ``.venv/bin/python bench/promotion_bench.py [N]``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from gitops.backends.local.backend import LocalBackend  # noqa: E402
from gitops.ledger.local import LocalLedger  # noqa: E402
from gitops.ledger.model import HistoryEntry, RunRecord  # noqa: E402
from gitops.lifecycle.flow import Lifecycle  # noqa: E402
from gitops.lifecycle.parts import Action  # noqa: E402
from gitops.spec import naming  # noqa: E402
from gitops.spec.policy import Policy, parse_policy  # noqa: E402
from gitops.spec.validate import validate_text  # noqa: E402
from tests.conftest import LOCAL_SPEC as SPEC  # noqa: E402
from tests.integration.test_local_registry import _trained  # noqa: E402

T0 = 1_800_000_000.0


def _policy(root: Path) -> Policy:
    text = f"""
    registry: {{directory: {root / "registry"}}}
    environments:
      - name: dev
        workspace: {{directory: {root / "dev"}}}
      - name: prod
        workspace: {{directory: {root / "prod"}}}
        promotion: {{soak: 1h}}
    """
    policy, findings = parse_policy(textwrap.dedent(text), "gitops.yaml")
    assert policy is not None, findings
    return policy


def _populate(lc: Lifecycle, backend: LocalBackend, root: Path, n: int, policy: Policy) -> None:
    """N runs live in dev, each with a model trained (files registered with their content digest)."""
    for i in range(n):
        name = f"run-{i:03d}"
        spec = validate_text(textwrap.dedent(SPEC.format(name=name)), f"runs/{name}.yaml", policy).require()
        model = _trained(backend, root, f"gitops-{name}-000000000001")
        lc.ledger.put(
            RunRecord(
                run=name,
                backend="local",
                digest="d" * 64,
                job_name=f"gitops-{name}-000000000001",
                status="live",
                spec=spec.model_dump(mode="json"),
                policy=policy.model_dump(mode="json"),
                model_name=model.name,
                model_version=model.version,
                model_digest=model.tags[naming.TAG_CONTENT],
                endpoint=f"{name}-ep",
                gate={"ok": True, "reasons": [], "notes": [], "on_evidence": True},
                history=[HistoryEntry(at=T0, status="live", note="")],
            ),
            None,
        )


def _pass(lc: Lifecycle) -> tuple[float, int]:
    t0 = time.perf_counter()
    decisions = lc.reconcile()
    return time.perf_counter() - t0, sum(1 for d in decisions if d.action == Action.PROMOTION_DUE)


def main(n: int) -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        now = [T0 + 60.0]
        backend = LocalBackend(root / "dev")
        plain, staged = LocalLedger(root / "plain"), LocalLedger(root / "staged")
        baseline_lc = Lifecycle(plain, lambda _: backend, name_salt="acme/models", clock=lambda: now[0])
        staged_lc = Lifecycle(staged, lambda _: backend, name_salt="acme/models", clock=lambda: now[0])
        _populate(baseline_lc, backend, root, n, Policy())
        _populate(staged_lc, backend, root / "staged-models", n, _policy(root))
        baseline, _ = _pass(baseline_lc)
        waiting, due_waiting = _pass(staged_lc)
        now[0] = T0 + 2 * 3600.0
        due, shared = _pass(staged_lc)
        again, shared_again = _pass(staged_lc)
    print(f"runs live: {n}")
    print(f"baseline (no environments):   {baseline * 1000:8.1f} ms")
    print(f"waiting (before the soak):    {waiting * 1000:8.1f} ms  due: {due_waiting}")
    print(f"due (shares each model once): {due * 1000:8.1f} ms  due: {shared}  ({due / max(shared, 1) * 1000:.1f} ms a share)")
    print(f"again (nothing to share):     {again * 1000:8.1f} ms  due: {shared_again}")
    print(f"ratio waiting/baseline: {waiting / baseline:.2f}   again/baseline: {again / baseline:.2f}")
    assert due_waiting == 0 and shared == n and shared_again == 0, "each promotion is made due exactly once"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
