"""Benchmark: control-plane lag against looks, for the waits on a deployment that Azure provisions in minutes.

One run rolled out version after version on the fake Azure ML API and a virtual clock (azure-ai-ml's real SDK, HTTP
intercepted; the real lifecycle and its step queue), each version's deployment taking a duration drawn (seeded) around
the documented 10-20 minutes. The same durations, in the same order, under three pacings measured in the same run:

- backoff: the schedule every run had (10 s, 20 s, 40 s, then every minute);
- fixed 15 s: a plain poller (the mlops-v2 loop);
- adaptive: the run's past durations of this SKU (``gitops/lifecycle/pacing.py``); its first version has none. Twice:
  within the backoff's number of looks, and the default (a lag of 15 s aimed at, up to twice the backoff's looks).

Lag: from the moment the fake's deployment reached Succeeded to the step that acted on it. Looks: the GETs of the
deployment while it was awaited. Printed: p50 and p99 lag and mean looks per version, for all versions and for those
with a past (the second on). Run: ``.venv/bin/python bench/lag_bench.py [versions] [mean_minutes] [sd_minutes]``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GITOPS_REPO", "acme/models")

from gitops.lifecycle.pacing import Adaptive, Backoff, Fixed, Pacing  # noqa: E402
from tests.virtual_azure import virtual_world  # noqa: E402


def durations(versions: int, mean_min: float, sd_min: float, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [round(min(40.0, max(5.0, rng.gauss(mean_min, sd_min))) * 60, 1) for _ in range(versions)]


def rollouts(pacing: Pacing, seconds: list[float]) -> list[tuple[float, int]]:
    """(lag s, looks) of each version's wait on its deployment, under ``pacing``."""
    out = []
    with tempfile.TemporaryDirectory() as tmp, virtual_world(Path(tmp)) as world:
        world.lifecycle.pacing = pacing
        world.fake.provisioning_s.update(onlineendpoints=90)
        for i, duration in enumerate(seconds):
            world.fake.provisioning_s["deployments"] = duration
            calls_before = len(world.fake.calls)
            job = world.submit_completed(lr=f"{5 + i}.0e-6")
            world.lifecycle.on_job_event(world.event(job))
            world.deliver(limit=2000)
            record = world.record()
            assert record.status == "live", [h.note for h in record.history[-3:]]
            name = str(record.deployment)
            created = next(h.at for h in record.history if h.note.startswith(f"deployment {name} ") and "ready" not in h.note)
            seen = next(h.at for h in record.history if h.note == f"deployment {name} ready")
            looks = sum(1 for m, u in world.fake.calls[calls_before:] if m == "GET" and u.split("?")[0].endswith(f"/deployments/{name}"))
            out.append((seen - (created + duration), looks))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(versions: int = 12, mean_min: float = 15.0, sd_min: float = 2.0) -> None:
    logging.disable(logging.WARNING)
    seconds = durations(versions, mean_min, sd_min)
    print(f"{versions} versions, deployment durations (min): {', '.join(f'{s / 60:.1f}' for s in seconds)}")
    print(f"{'pacing':<42} {'lag p50 s':>10} {'lag p99 s':>10} {'looks':>7}   with a past: {'p50':>6} {'p99':>6} {'looks':>6}")
    results = {}
    for pacing in (Backoff(), Fixed(15.0), Adaptive(target_lag_s=None), Adaptive()):
        with contextlib.redirect_stderr(io.StringIO()):
            found = rollouts(pacing, seconds)
        lags, looks = [lag for lag, _ in found], [n for _, n in found]
        later_lags, later_looks = lags[1:] or lags, looks[1:] or looks
        results[pacing.name] = (pct(later_lags, 0.99), statistics.mean(later_looks))
        print(
            f"{pacing.name:<42} {pct(lags, 0.5):>10.1f} {pct(lags, 0.99):>10.1f} {statistics.mean(looks):>7.1f}"
            f"   {'':>12} {pct(later_lags, 0.5):>6.1f} {pct(later_lags, 0.99):>6.1f} {statistics.mean(later_looks):>6.1f}"
        )
    today, budget, ours = results[Backoff().name], results[Adaptive(target_lag_s=None).name], results[Adaptive().name]
    dominates = budget[0] <= today[0] and budget[1] <= today[1]
    print(
        f"versions with a past: adaptive within the backoff's looks: lag p99 {budget[0]:.1f} s vs {today[0]:.1f} s, looks "
        f"{budget[1]:.1f} vs {today[1]:.1f} ({'dominates' if dominates else 'does NOT dominate'} the backoff); adaptive (the default, "
        f"15 s aimed at): lag p99 {ours[0]:.1f} s at {ours[1] / today[1]:.2f}x the backoff's looks "
        f"({'within' if ours[0] <= 15 and ours[1] <= 2 * today[1] else 'NOT within'} 15 s at 2x)"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 12, float(args[1]) if len(args) > 1 else 15.0, float(args[2]) if len(args) > 2 else 2.0)
