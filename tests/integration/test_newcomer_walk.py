"""A newcomer's walk, as README documents it, in a scratch copy of the repository: make a dataset, run the local
example, look at it, call it, report it, stop and delete its endpoint; then nothing of it is left running."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def our_processes(marker: str) -> list[int]:
    """Processes whose command line names the scratch directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_the_readme_walk_leaves_nothing_running(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "checkout"
    (scratch / "runs").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "runs" / "local-tiny.yaml", scratch / "runs")
    shutil.copy(REPO_ROOT / "gitops.yaml", scratch)
    monkeypatch.delenv("GITOPS_WORKSPACE", raising=False)  # the documented default, .gitops in the checkout
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    monkeypatch.chdir(scratch)

    assert cli("status").out.startswith("no runs yet")
    run = cli("run", "runs/local-tiny.yaml", "--timeout", "900")  # no `data synth` first: the example makes its data
    assert "made the synthetic dataset the spec names in .gitops/data/synth" in run.err, run.err
    assert run.exit_code == 0 and "run local-tiny: live" in run.out and "gate: passed" in run.out, run.out + run.err
    assert "local-tiny live after " in run.out and "final train loss" in run.out
    noise = ("INFO mlflow", "WARNING mlflow", "Successfully registered", "Created version", "Loading weights", "license")
    assert not [n for n in noise if n in run.out + run.err], run.err  # quiet: libraries' lines are in the log
    assert "Successfully registered" in (scratch / ".gitops" / "logs" / "cli.log").read_text()
    assert "local-tiny" in cli("status").out
    assert cli("invoke", "local-tiny", "--message", "Tell me about the ocean.", "--max-new-tokens", "8").exit_code == 0
    report = cli("report", "local-tiny", "--format", "text")
    assert report.exit_code == 0 and "Eval loss" in report.out and "Gate" in report.out
    assert our_processes(str(scratch)), "the endpoint's server runs after `gitops run`, as documented"
    assert cli("stop", "local-tiny").exit_code == 0
    assert cli("delete", "local-tiny").exit_code == 0
    assert cli("endpoints").out.startswith("no local endpoints")
    assert our_processes(str(scratch)) == []


def test_the_environments_example_goes_from_dev_to_prod_on_the_command_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#27, what `make demo` shows after the one-workspace run: docs/examples/environments trained and proven in dev,
    its promotion due after the soak, released into prod with an approval given on the command line, each
    environment side by side; nothing is trained twice, and deleting both endpoints leaves nothing running."""
    import time

    repo = tmp_path / "repo"
    example = repo / "docs" / "examples" / "environments"
    shutil.copytree(REPO_ROOT / "docs" / "examples" / "environments", example, ignore=shutil.ignore_patterns(".gitops"))
    policy = example / "gitops.yaml"
    policy.write_text(policy.read_text().replace("soak: 15s", "soak: 1s"))  # the walk, not the wait
    monkeypatch.setenv("GITOPS_WORKSPACE", ".gitops/dev")  # the first environment's workspace, as the demo sets it
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    monkeypatch.chdir(example)

    run = cli("run", "runs/local-tiny.yaml", "--timeout", "900")
    assert run.exit_code == 0 and "run local-tiny: live" in run.out, run.out + run.err
    assert (repo / ".gitops" / "data" / "synth" / "train_sft.jsonl").exists()  # where the spec names its data
    time.sleep(1.5)  # the example's soak (shortened here), live in dev
    assert "promotion_due - promotion to prod due" in cli("reconcile").out
    released = cli("release", "local-tiny", "--to", "prod", "--reason", "approved on the command line")
    assert released.exit_code == 0 and "run local-tiny in prod: live" in released.out, released.out + released.err
    rows = [line.split("\t")[:3] for line in cli("status").out.splitlines()[1:]]
    assert rows == [["local-tiny", "dev", "live"], ["local-tiny", "prod", "live"]]
    assert cli("invoke", "local-tiny", "--env", "prod", "--message", "hi", "--max-new-tokens", "4").exit_code == 0
    assert [p.name for p in (example / ".gitops" / "dev" / "jobs").iterdir()] and not (example / ".gitops" / "prod" / "jobs").exists()
    again = cli("release", "local-tiny", "--to", "prod", "--reason", "twice")
    assert again.exit_code != 0 and "no promotion of run 'local-tiny' to prod is due" in again.err
    assert cli("delete", "local-tiny", "--env", "prod").exit_code == 0
    assert cli("delete", "local-tiny").exit_code == 0
    assert our_processes(str(example)) == []
