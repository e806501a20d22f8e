"""Benchmark: Function App cold start. Import of the entry module (what the worker does first) against an
eager ``import azure.ai.ml``, each in fresh interpreters, alternating, in the same run.

Targets: entry import <= 0.3 s and <= 1/3 of the azure.ai.ml import. Also checks that the entry import
leaves azure.ai.ml, mlflow, torch and transformers unimported. Run: ``.venv/bin/python bench/coldstart_bench.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("azure.ai.ml", "mlflow", "torch", "transformers")
PROBE = (
    "import sys, time, json; t = time.perf_counter(); import {module}; "
    "print(json.dumps([time.perf_counter() - t, [m for m in {heavy!r} if m in sys.modules]]))"
)


def timed_import(module: str) -> tuple[float, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    seconds, loaded = json.loads(out.strip().splitlines()[-1])
    return float(seconds), list(loaded)


def main(rounds: int = 7) -> None:
    timed_import("functions_entry")  # warm the OS file cache for both, so neither pays the first read
    timed_import("azure.ai.ml")
    entry, sdk, heavy = [], [], set()
    for _ in range(rounds):
        t, loaded = timed_import("functions_entry")
        entry.append(t)
        heavy.update(loaded)
        sdk.append(timed_import("azure.ai.ml")[0])
    e, s = statistics.median(entry), statistics.median(sdk)
    print(f"import functions_entry: median {e * 1000:.0f} ms over {rounds} fresh interpreters")
    print(f"import azure.ai.ml   : median {s * 1000:.0f} ms")
    print(f"ratio entry/azure.ai.ml = {e / s:.3f} (target <= 0.333); entry <= 300 ms: {'met' if e <= 0.3 else 'MISSED'}")
    print(f"heavy modules imported by the entry: {sorted(heavy) or 'none'}")


if __name__ == "__main__":
    main()
