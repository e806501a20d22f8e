"""`gitops report` against the MLflow runs of real local fine-tunes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.backends.local.models import bootstrap, download, ensure_experiment
from gitops.ledger.local import LocalLedger
from gitops.ledger.model import RunRecord, SmokeResult
from gitops.report.build import build_report
from gitops.report.metrics import MlflowMetricsReader
from pipelines.local_finetune import FinetuneRequest, run_finetune
from pipelines.synth import write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    data = write_dataset(root / "data", rows=64, test_rows=8)
    backend = LocalBackend(root / "ws")
    base = download(backend.ws, bootstrap(backend.ws).uri, root / "base")
    ensure_experiment(backend.ws, "report-test")
    for job, lr in (("job-a", 1e-3), ("job-b", 3e-3)):
        run_finetune(
            FinetuneRequest(
                job_name=job,
                base_model_dir=str(base),
                train_path=str(data["train_sft"]),
                test_path=str(data["test_sft"]),
                output_dir=str(root / job),
                tracking_uri=backend.ws.tracking_uri,
                experiment="report-test",
                params={
                    "max_steps": 12,
                    "per_device_train_batch_size": 8,
                    "learning_rate": lr,
                    "apply_lora": "true",
                    "logging_steps": 2,
                    "evaluation_strategy": "steps",
                    "eval_steps": 4,
                    "max_seq_length": 128,
                },
            )
        )
    ledger = LocalLedger(backend.ws.root / "ledger")
    smoke = SmokeResult(ok=True, status_code=200, latency_ms=31.5, reply_excerpt="The sea is deep.")
    before = {"job_name": "job-a", "smoke_ok": True, "smoke_latency_ms": 187.0, "smoke_reply": "Rain falls."}
    ledger.put(
        RunRecord(
            run="rep",
            backend="local",
            digest="d" * 64,
            job_name="job-b",
            status="live",
            previous_job="job-a",
            model_name="rep",
            model_version="2",
            endpoint="rep-ep",
            deployment="v2-dddddddd",
            smoke=smoke,
            previous_report=before,
        ),
        None,
    )
    ledger.put(RunRecord(run="other", backend="local", digest="e" * 64, job_name="job-a", status="live"), None)
    return backend


def test_numbers_match_the_mlflow_run(trained: LocalBackend) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=trained.ws.tracking_uri)
    experiment = client.get_experiment_by_name("report-test")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'job-b'")
    train = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)]
    evals = [m.value for m in client.get_metric_history(run.info.run_id, "eval_loss")]
    record = LocalLedger(trained.ws.root / "ledger").get("rep")[0]  # type: ignore[index]
    report = build_report(record, MlflowMetricsReader(trained.ws.tracking_uri).job_metrics("job-b"))
    assert report.final_train_loss == pytest.approx(train[-1]) and report.best_train_loss == pytest.approx(min(train))
    assert report.final_eval_loss == pytest.approx(run.data.metrics["final_eval_loss"])
    assert report.best_eval_loss == pytest.approx(min([*evals, run.data.metrics["final_eval_loss"]]))
    assert report.eval_perplexity == pytest.approx(math.exp(run.data.metrics["final_eval_loss"]))
    assert report.tokens_seen == int(run.data.metrics["train_tokens"]) > 0
    assert report.duration_s == pytest.approx(run.data.metrics["train_runtime_s"])
    assert report.params["learning_rate"] == "0.003" and report.params["max_steps"] == "12"
    assert len(report.curves["train_loss"]) == len(train) >= 5
    assert report.smoke_latency_ms == 31.5 and report.model == "rep v2"


def test_cli_writes_report_and_png_and_compares_with_the_previous_version(trained, cli, monkeypatch, tmp_path: Path) -> None:
    from PIL import Image

    monkeypatch.setenv("GITOPS_WORKSPACE", str(trained.ws.root))
    out = tmp_path / "out"
    out.mkdir()
    result = cli("report", "rep", "--format", "markdown", "--out", str(out))
    assert result.exit_code == 0, result.err
    text = (out / "report.md").read_text()
    assert text.startswith("<!-- finetune-gitops:report -->")
    assert "### Compared with `rep (previous version, job-a)`" in text
    assert "```mermaid\nxychart-beta" in text and "| Smoke test | passed in 32 ms |" in text
    assert "![Loss per step: rep (job-b)](<loss.png>)" in text  # the file beside it, linked
    assert "| smoke latency ms | 31.5000 | 187.0000 | -155.5000 |" in text  # the previous version's own smoke test
    assert "| eval perplexity |" in text
    with Image.open(out / "loss.png") as image:
        assert image.format == "PNG"

    as_json = cli("report", "rep", "--format", "json")
    assert as_json.exit_code == 0 and "loss curve:" not in as_json.err  # no PNG unless asked for
    points = json.loads(as_json.out)["curves"]["eval_loss"]
    assert len({step for step, _ in points}) == len(points)  # one point per step: the last one is not repeated

    against = cli("report", "rep", "--format", "json", "--against", "other")
    assert against.exit_code == 0 and '"run": "other"' in against.out

    missing = cli("report", "rep", "--against", "nope")
    assert missing.exit_code == 4 and "no run named 'nope'" in missing.err
