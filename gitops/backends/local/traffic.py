"""The local endpoint server's request counters, and the window between two readings of them.

The server counts requests, server-side errors and a latency histogram per deployment (cumulative, as a
Prometheus counter does); a rollout's hold reads them at its start and its end, and the difference is the
window. The p95 is the upper bound of the histogram bucket that holds the 95th percentile: never lower than
the truth, so a bound is never passed by rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Upper bounds in ms; the last catches everything slower (the longest request timeout a spec may set is 180 s).
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 600000)


def is_error(status: int) -> bool:
    """A failure of the deployment, not of the caller: a 5xx, or 429 (it could not take the request)."""
    return status >= 500 or status == 429


def bucket(latency_ms: float) -> int:
    return next((i for i, bound in enumerate(LATENCY_BUCKETS_MS) if latency_ms <= bound), len(LATENCY_BUCKETS_MS) - 1)


def counters(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deployment's counters as the server stores them (zeros for a deployment that saw nothing)."""
    entry = entry or {}
    hist = [int(n) for n in entry.get("latency_buckets") or []]
    return {
        "requests": int(entry.get("requests", 0)),
        "failed": int(entry.get("failed", 0)),
        "latency_buckets": hist + [0] * (len(LATENCY_BUCKETS_MS) - len(hist)),
    }


def p95(histogram: list[int]) -> float | None:
    total = sum(histogram)
    if total == 0:
        return None
    seen = 0
    for i, n in enumerate(histogram):
        seen += n
        if seen >= 0.95 * total:
            return float(LATENCY_BUCKETS_MS[i])
    return float(LATENCY_BUCKETS_MS[-1])


def window(start: Mapping[str, Any], end: Mapping[str, Any]) -> tuple[int, int, float | None]:
    """(requests, errors, p95 ms) between two readings; a reading lower than the mark (the server restarted with
    lost counters) counts from zero."""
    a, b = counters(start), counters(end)
    if b["requests"] < a["requests"]:
        a = counters(None)
    hist = [max(0, y - x) for x, y in zip(a["latency_buckets"], b["latency_buckets"], strict=True)]
    return b["requests"] - a["requests"], max(0, b["failed"] - a["failed"]), p95(hist)
