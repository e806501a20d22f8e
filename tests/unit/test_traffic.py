"""Gradual traffic: the spec's rules, what counts as a breach, and the local server's counters read as a window."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.backends.local import traffic
from gitops.lifecycle import gate
from gitops.spec.validate import validate_text

BASE = """
name: ramp
backend: local
model: {registry: local, name: tiny-phi3}
data: {train_path: d/train.jsonl, test_path: d/test.jsonl}
deploy:
  rollout: ROLLOUT
"""


def _findings(rollout: str) -> list[str]:
    result = validate_text(BASE.replace("ROLLOUT", rollout), "runs/ramp.yaml")
    return [f"{f.path}: {f.message}" for f in result.findings if f.is_error]


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ("{steps: [50, 10, 100]}", "steps rise"),
        ("{steps: [10, 50]}", "the last step is 100"),
        ("{steps: [0, 100]}", "from 1 to 100"),
        ("{steps: [10, 100], hold: 2d}", "at most 24h"),
        ("{steps: [10, 100], max_error_rate: 1.5}", "deploy.rollout.max_error_rate"),
        ("{steps: [10, 100], min_requests: true}", "deploy.rollout.min_requests"),
        ("{steps: []}", "deploy.rollout.steps"),
        ("{steps: [10, 100], pause: 5m}", "deploy.rollout.pause"),
    ],
)
def test_a_rollout_that_cannot_be_followed_is_an_error_naming_its_field(rollout: str, expected: str) -> None:
    findings = _findings(rollout)
    assert findings and any(expected in f for f in findings), findings


def test_a_sound_rollout_is_a_settings_change_not_a_redeploy() -> None:
    plain = validate_text(BASE.replace("  rollout: ROLLOUT\n", "  request_timeout_ms: 90000\n"), "runs/ramp.yaml")
    ramped = validate_text(BASE.replace("ROLLOUT", "{steps: [10, 50, 100], hold: 10m}"), "runs/ramp.yaml")
    assert plain.ok and ramped.ok and plain.digests is not None and ramped.digests is not None
    assert plain.digests.change_to(ramped.digests) == "settings"
    bare = validate_text(BASE.replace("deploy:\n  rollout: ROLLOUT\n", ""), "runs/ramp.yaml")
    assert bare.ok and plain.digest == bare.digest  # a spec written before rollouts existed keeps its digest


def test_breaches_name_the_share_and_the_figures() -> None:
    rules: dict[str, Any] = {"max_error_rate": 0.05, "max_p95_latency_ms": 2000.0, "min_requests": 10}
    assert gate.traffic_breaches(10, 100, 5, 1500.0, **rules) == []
    assert gate.traffic_breaches(10, 100, 6, 2500.0, **rules) == [
        "error rate 6.0% at 10% (6 of 100) is over 5.0%",
        "p95 latency 2500 ms at 10% is over 2000 ms",
    ]
    assert gate.traffic_breaches(50, 3, 0, None, **rules) == ["only 3 requests reached it at 50% (at least 10 to judge)"]
    assert gate.traffic_breaches(50, 0, 0, None, **{**rules, "min_requests": 0}) == []  # no requests, no bound asked


def test_the_local_window_is_the_difference_of_two_readings_and_its_p95_is_a_bucket_bound() -> None:
    start = {"scored": 10, "failed": 1, "latency_buckets": [0, 0, 10]}
    hist = [0] * len(traffic.LATENCY_BUCKETS_MS)
    hist[2], hist[5] = 10 + 90, 10  # 90 more under 100 ms, 10 under 1000 ms
    end = {"scored": 110, "failed": 4, "latency_buckets": hist}
    assert traffic.window(start, end) == (100, 3, 1000.0)  # the 95th of 100 falls among the ten slow ones
    hist[2], hist[5] = 10 + 96, 4
    assert traffic.window(start, {**end, "latency_buckets": hist}) == (100, 3, 100.0)  # 96 fast ones: the 95th is fast


def test_a_server_that_restarted_counts_from_zero_and_an_empty_window_has_no_p95() -> None:
    hist = [0] * len(traffic.LATENCY_BUCKETS_MS)
    hist[1] = 3
    assert traffic.window({"scored": 50, "failed": 2}, {"scored": 3, "failed": 0, "latency_buckets": hist}) == (3, 0, 50.0)
    assert traffic.window({"scored": 5}, {"scored": 5}) == (0, 0, None)


def test_only_the_deployments_own_failures_count() -> None:
    from gitops.backends.base import failed_response, scored_response

    assert [s for s in (200, 400, 404, 413, 429, 500, 503) if failed_response(s)] == [429, 500, 503]
    assert [s for s in (0, 200, 204, 301, 400, 401, 404, 413, 429, 500, 503) if scored_response(s)] == [200, 204, 429, 500, 503]
    assert traffic.bucket(0.5) == 0 and traffic.bucket(10**9) == len(traffic.LATENCY_BUCKETS_MS) - 1
