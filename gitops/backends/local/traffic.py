"""The local endpoint server's request counters, and the window between two readings of them.

The server counts, per deployment, every request (what says an endpoint is in use) and, apart, the scored ones:
those the deployment answered or failed itself (2xx, 5xx, 429), with its failures and a latency histogram
(cumulative, as a Prometheus counter does). A request refused for the caller's fault (401, 400, 413) says
nothing of the deployment, so it is no evidence for a rollout: a burst of malformed requests aimed at a
candidate never makes up its ``min_requests``, nor lowers its p95. A rollout's hold reads the counters at its
start and its end, and the difference is the window. The p95 is the upper bound of the histogram bucket that
holds the 95th percentile: never lower than the truth, so a bound is never passed by rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Upper bounds in ms; the last catches everything slower (the longest request timeout a spec may set is 180 s).
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 600000)


def bucket(latency_ms: float) -> int:
    return next((i for i, bound in enumerate(LATENCY_BUCKETS_MS) if latency_ms <= bound), len(LATENCY_BUCKETS_MS) - 1)


def counters(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deployment's scored-request counters as the server stores them (zeros for a deployment that saw nothing,
    and for a server from before scored requests were counted apart: no figures are never figures)."""
    entry = entry or {}
    hist = [int(n) for n in entry.get("latency_buckets") or []]
    return {
        "scored": int(entry.get("scored", 0)),
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
    """(scored requests, errors, p95 ms) between two readings; a reading lower than the mark (the server restarted
    with lost counters) counts from zero."""
    a, b = counters(start), counters(end)
    if b["scored"] < a["scored"]:
        a = counters(None)
    hist = [max(0, y - x) for x, y in zip(a["latency_buckets"], b["latency_buckets"], strict=True)]
    return b["scored"] - a["scored"], max(0, b["failed"] - a["failed"]), p95(hist)
