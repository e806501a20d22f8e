"""Data preparation as download-dataset.py does it (prefix slices, every split), with row checks."""

import json
from pathlib import Path

import pytest

from pipelines.prepare_data import DataError, main, prepare, read_jsonl
from pipelines.synth import make_rows, write_dataset


def test_prefix_slice_of_every_split(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_dataset(src, rows=40, test_rows=20)
    reports = {r.split: r for r in prepare(str(src), tmp_path / "out", percent=25)}
    assert set(reports) == {"train_sft", "test_sft"}
    assert reports["train_sft"].rows == 10 and reports["test_sft"].rows == 5
    written = [json.loads(line) for line in (tmp_path / "out" / "train_sft.jsonl").read_text().splitlines()]
    original = [json.loads(line) for line in (src / "train_sft.jsonl").read_text().splitlines()]
    assert written == original[:10]  # the prefix, columns unchanged
    assert set(written[0]) == {"prompt", "prompt_id", "messages"}


def test_parquet_directory(tmp_path: Path) -> None:
    import pandas as pd

    src = tmp_path / "pq"
    src.mkdir()
    pd.DataFrame(make_rows(8)).to_parquet(src / "train_sft.parquet")
    (report,) = prepare(str(src), tmp_path / "out")
    assert report.rows == 8


def test_bad_rows_are_reported_with_line_and_reason(tmp_path: Path) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    rows = make_rows(5)
    rows[1] = {"messages": [{"role": "user", "content": "only a question"}]}
    rows[3] = {"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}
    (src / "train_sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as exc:
        prepare(str(src), tmp_path / "out")
    assert exc.value.problems == [
        ("train_sft", 2, "no assistant turn to learn from"),
        ("train_sft", 4, "messages[0].role is 'bot'; allowed: system, user, assistant"),
    ]
    assert not (tmp_path / "out" / "train_sft.jsonl").exists()  # nothing half-done
    (report,) = prepare(str(src), tmp_path / "out", skip_invalid=True)
    assert (report.rows, report.skipped) == (3, 2)


def test_read_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(make_rows(1)[0]) + "\n{oops\n" + json.dumps({"messages": [{"role": "user", "content": ""}]}) + "\n")
    with pytest.raises(DataError) as exc:
        read_jsonl(path)
    found = [(line, reason.split(":")[0]) for _, line, reason in exc.value.problems]
    assert found == [(2, "not JSON"), (3, "messages[0].content must be a non-empty string")]


def test_cli_exit_codes(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    write_dataset(src, rows=10)
    assert main(["--dataset", str(src), "--download_dir", str(tmp_path / "o"), "--dataset_split_pc", "50"]) == 0
    assert "train_sft: 5 rows" in capsys.readouterr().out
    assert main(["--dataset", str(tmp_path / "nothing-here"), "--download_dir", str(tmp_path / "o2")]) == 1


def test_the_pipeline_step_runs_from_its_code_snapshot_alone(tmp_path: Path) -> None:
    """What the cluster runs: the step's own command, in a copy of pipelines/ without what .amlignore leaves out,
    with nothing of this repository importable; the outputs land at the exact paths the bindings name."""
    import fnmatch
    import os
    import re
    import shutil
    import subprocess
    import sys

    from gitops.backends.azureml.pipeline_job import PIPELINES_DIR, prepare_step
    from gitops.spec.validate import validate_text

    src = tmp_path / "hub"
    write_dataset(src, rows=20, test_rows=10)
    lines = (PIPELINES_DIR / ".amlignore").read_text().splitlines()
    ignored = [p.strip().rstrip("/") for p in lines if p.strip() and not p.startswith("#")]
    snapshot = tmp_path / "snapshot"
    shutil.copytree(PIPELINES_DIR, snapshot, ignore=lambda d, names: [n for n in names if any(fnmatch.fnmatch(n, p) for p in ignored)])
    assert not (snapshot / "local_finetune.py").exists() and (snapshot / "chat_format.py").exists()
    spec = validate_text(
        f"name: step-run\nmodel: {{name: m, version: '1'}}\ndata: {{dataset: {src}, sample_percent: 50}}\n"
        "compute: {cluster: gpu-cluster-big}\n",
        "runs/step-run.yaml",
    ).require()
    step = prepare_step(spec, snapshot)
    values = {
        "inputs.dataset": str(src),
        "inputs.percent": str(step["inputs"]["percent"]),
        "outputs.train_file": str(tmp_path / "out" / "train"),
        "outputs.test_file": str(tmp_path / "out" / "test"),
    }
    command = re.sub(r"\$\{\{([^}]+)\}\}", lambda m: values[m.group(1)], step["command"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # This repository is installed in the test environment: make its packages unimportable, as on the cluster.
    runner = (
        "import runpy, sys; sys.modules['pipelines'] = sys.modules['gitops'] = None; sys.path.insert(0, '.'); "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    args = command.split()[1:]
    done = subprocess.run([sys.executable, "-I", "-c", runner, *args], cwd=snapshot, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len((tmp_path / "out" / "train").read_text().splitlines()) == 10
    assert len((tmp_path / "out" / "test").read_text().splitlines()) == 5
