"""The metrics reader on a real MLflow store (SQLite): a local job's own run, and an Azure ML pipeline job
whose training curves sit on a step run under it (``mlflow.rootRunId`` = the job name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.errors import NotFoundError
from gitops.report.metrics import MlflowMetricsReader


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_pipeline_job_curves_come_from_its_training_step(store: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("chat_completion_Phi-4", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(exp, run_name="gitops-phi3-0123456789ab")
    steps = {}
    for name, points in (("model_evaluation", 1), ("finetune", 5)):
        run = client.create_run(
            exp, run_name=name, tags={"mlflow.rootRunId": "gitops-phi3-0123456789ab", "mlflow.parentRunId": parent.info.run_id}
        )
        for step in range(points):
            client.log_metric(run.info.run_id, "train_loss", 2.0 - step * 0.25, step=step)
        steps[name] = run.info.run_id
    client.log_param(steps["finetune"], "learning_rate", "5e-06")
    metrics = MlflowMetricsReader(store).job_metrics("gitops-phi3-0123456789ab")
    assert metrics.params == {"learning_rate": "5e-06"}
    assert metrics.curves["train_loss"] == [(0, 2.0), (1, 1.75), (2, 1.5), (3, 1.25), (4, 1.0)]
    with pytest.raises(NotFoundError):
        MlflowMetricsReader(store).job_metrics("gitops-other-job")


def test_the_model_evaluation_steps_metrics_are_read_beside_the_training_curves(store: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("chat_completion_Phi-4", artifact_location=(tmp_path / "a").as_uri())
    job = "gitops-phi4-0123456789ab"
    parent = client.create_run(exp, run_name=job)
    runs = {
        name: client.create_run(exp, run_name=name, tags={"mlflow.rootRunId": job, "mlflow.parentRunId": parent.info.run_id})
        for name in ("chat_completion_datapreprocess", "chat_completion_finetune", "compute_metrics")
    }
    client.log_metric(runs["chat_completion_finetune"].info.run_id, "train_loss", 1.9, step=1)
    client.log_metric(runs["chat_completion_datapreprocess"].info.run_id, "rows", 1000)
    client.log_metric(runs["compute_metrics"].info.run_id, "rougeL", 0.31)  # the step names of the real pipeline
    client.log_metric(runs["compute_metrics"].info.run_id, "perplexity", 7.5)
    metrics = MlflowMetricsReader(store).job_metrics(job)
    assert metrics.evaluation == {"rougeL": 0.31, "perplexity": 7.5} and "rows" not in metrics.evaluation
    client.delete_run(runs["compute_metrics"].info.run_id)
    assert MlflowMetricsReader(store).job_metrics(job).evaluation == {}  # a pipeline that ran no evaluation step
