"""Reading a job's training metrics through MLflow, behind one small interface.

The local backend's store is MLflow on SQLite; an Azure ML workspace is reached through its MLflow
tracking URI (azureml-mlflow), so one reader serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gitops.errors import BackendError, GitopsError, NotFoundError

SERIES = ("train_loss", "eval_loss")
# The step of chat_completion_pipeline that logs the evaluation's metrics (azureml-assets' spec: model_prediction
# then compute_metrics; tests/contracts/azureml-assets keeps that part of it).
EVALUATION_STEPS = ("compute_metrics",)


@dataclass(frozen=True)
class JobMetrics:
    job_name: str
    params: dict[str, str]
    summary: dict[str, float]  # the latest value of every metric
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # series -> (step, value), by step
    started_at: float | None = None  # seconds since the epoch
    ended_at: float | None = None
    # What the pipeline's model evaluation step logged, when it ran (Azure: a step under the job whose name says
    # evaluation, e.g. the component's model_evaluation); empty locally, where the trainer's own eval is all.
    evaluation: dict[str, float] = field(default_factory=dict)


class MetricsReader(Protocol):
    def job_metrics(self, job_name: str) -> JobMetrics: ...


def _one_per_step(history: Any) -> list[tuple[int, float]]:
    """A metric's points by step, one per step: a trainer that logs the final evaluation again at the last step
    (as the Trainer does at the end of training) does not repeat the last point."""
    by_step: dict[int, float] = {}
    for m in sorted(history, key=lambda m: (int(m.step), int(getattr(m, "timestamp", 0) or 0))):
        by_step[int(m.step)] = float(m.value)
    return sorted(by_step.items())


class MlflowMetricsReader:
    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri

    def job_metrics(self, job_name: str) -> JobMetrics:
        try:
            return self._job_metrics(job_name)
        except GitopsError:
            raise
        except Exception as exc:  # noqa: BLE001  (a corrupt store: sqlite "file is not a database"; another MLflow schema)
            where = self.tracking_uri.split("?", 1)[0]
            reason = (str(exc).strip().splitlines() or [""])[0][:160]
            raise BackendError(
                f"the metrics of job {job_name} cannot be read from {where}: {type(exc).__name__}: {reason}",
                hint="restore the tracking store from a backup; without it no report and no gate evidence",
            ) from None

    def _job_metrics(self, job_name: str) -> JobMetrics:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        run = self._training_run(client, experiments, job_name) if experiments else None
        if run is None:
            raise NotFoundError(f"no MLflow run for job '{job_name}'", hint="the job may not have started training yet")
        curves = {key: _one_per_step(client.get_metric_history(run.info.run_id, key)) for key in SERIES if key in run.data.metrics}
        return JobMetrics(
            job_name=job_name,
            params=dict(run.data.params),
            summary=dict(run.data.metrics),
            curves=curves,
            started_at=run.info.start_time / 1000 if run.info.start_time else None,
            ended_at=run.info.end_time / 1000 if run.info.end_time else None,
            evaluation=self._evaluation(client, experiments, job_name, run.info.run_id),
        )

    @staticmethod
    def _evaluation(client: Any, experiments: list[str], job_name: str, training_run: str) -> dict[str, float]:
        """The metrics of the pipeline's evaluation step, when the pipeline ran one: a step under the job, not the
        training one, named as chat_completion_pipeline names it (``compute_metrics``, after ``model_prediction``)
        or otherwise saying it evaluates."""
        steps = client.search_runs(experiments, filter_string=f"tags.mlflow.rootRunId = '{job_name}'", max_results=100)
        for step in steps:
            name = str(step.info.run_name or step.data.tags.get("mlflow.runName", "")).lower()
            if step.info.run_id != training_run and (name in EVALUATION_STEPS or "eval" in name) and step.data.metrics:
                return {k: float(v) for k, v in step.data.metrics.items()}
        return {}

    @staticmethod
    def _training_run(client: Any, experiments: list[str], job_name: str) -> Any | None:
        """The run that logged the training curves: the job's own run (local), else, for an Azure ML pipeline
        job, the step under it (``mlflow.rootRunId`` = the job) that logged the most train_loss points."""
        own = client.search_runs(
            experiments, filter_string=f"attributes.run_name = '{job_name}'", max_results=1, order_by=["attributes.start_time DESC"]
        )
        if own and "train_loss" in own[0].data.metrics:
            return own[0]
        steps = [
            r
            for r in client.search_runs(experiments, filter_string=f"tags.mlflow.rootRunId = '{job_name}'", max_results=100)
            if "train_loss" in r.data.metrics
        ]
        if steps:
            return max(steps, key=lambda r: len(client.get_metric_history(r.info.run_id, "train_loss")))
        return own[0] if own else None
