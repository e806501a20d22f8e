"""Two processes starting in one fresh workspace: MLflow's SQLite schema is created once, under a lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROBE = """
import sys
from gitops.backends.local.models import ensure_experiment
from gitops.backends.local.workspace import LocalWorkspace
ensure_experiment(LocalWorkspace.at(sys.argv[1]), f"exp-{sys.argv[2]}")
print("ok")
"""


def test_concurrent_first_uses_of_a_workspace_do_not_race_on_the_schema(tmp_path: Path) -> None:
    for attempt in range(2):
        ws = tmp_path / f"ws{attempt}"
        procs = [
            subprocess.Popen([sys.executable, "-c", PROBE, str(ws), str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(3)
        ]
        results = [p.communicate(timeout=180) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-800:] for _, err in results]
        assert all(out.strip().endswith("ok") for out, _ in results)
