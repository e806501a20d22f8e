"""The benchmarks still run, at a small size: a benchmark that broke with the code it measures (a new requirement
such as the repository's identity, a gate that now holds) is a failure here, not a surprise at the next
measurement. Only what they check for correctness is asserted (runs live, no double action), never a time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _bench(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / f"{name}.py"), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_the_events_benchmark_takes_every_run_live_with_no_double_action() -> None:
    out = _bench("events_bench", "4")
    assert "all 4/4 runs live" in out and "double actions: 0 " in out, out


def test_the_watch_benchmark_finds_every_drifted_endpoint() -> None:
    out = _bench("watch_bench", "3")
    line = next(x for x in out.splitlines() if "drifted endpoints found of" in x)
    found, of = line.split(" drifted endpoints found of ")
    assert found.split()[-1] == of.split()[0], line


def test_the_gate_and_cleanup_benchmarks_run() -> None:
    assert "shares held: [10, 50]" in _bench("gate_bench")
    assert "calls ours/naive" in _bench("cleanup_bench", "20")


def test_the_promotion_benchmark_makes_each_promotion_due_once() -> None:
    out = _bench("promotion_bench", "3")
    assert "due (shares each model once)" in out and "ratio waiting/baseline" in out


def test_the_serverless_benchmark_prices_both_paths_and_takes_both_live() -> None:
    out = _bench("serverless_bench", "500")
    assert "(assumed)" in out and "ratio serverless/GPU:" in out
    assert "serverless " in out and "managed (GPU)" in out and "Azure time" in out


def test_the_dashboard_benchmark_renders_both_pages_beside_the_json_baseline() -> None:
    out = _bench("ui_bench", "1", "20")
    assert "list page at 20 runs:" in out and "the JSON baseline" in out, out


def test_the_reconcile_tick_benchmark_reads_the_due_records_only() -> None:
    out = _bench("reconcile_tick_bench", "200")
    assert "tick at 200 runs:" in out and "within the 1/20 target" in out, out


def test_the_lag_benchmark_compares_the_three_pacings_on_the_same_durations() -> None:
    out = _bench("lag_bench", "3", "15", "2")
    assert "backoff (10 s, 20 s, 40 s, then every minute)" in out and "fixed, every 15 s" in out, out
    assert "adaptive (a lag of 15 s)" in out and "versions with a past:" in out, out
