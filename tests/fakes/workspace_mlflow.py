"""The workspace's MLflow, as a completed ``chat_completion_pipeline`` job leaves it: the pipeline job is the root
run, its ``finetune`` step logs the training and eval loss curves and its ``compute_metrics`` step the evaluation.

The store is SQLite (real MLflow); the names and nesting are the component's (``mlflow.rootRunId`` tags under the
job, one experiment per pipeline). A template store with the schema made is copied per test: creating the schema
takes seconds, copying a file does not, and no test sees another's runs.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

EXPERIMENT = "chat_completion_Phi-4"


@cache
def _template() -> Path:
    from mlflow import MlflowClient

    path = Path(tempfile.mkdtemp(prefix="workspace-mlflow-")) / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)  # creates the schema
    return path


@dataclass
class WorkspaceMlflow:
    """One workspace's tracking store; ``log_job`` writes what a completed job logged, ``reader`` reads it back."""

    path: Path
    eval_loss: float | None = 2.1  # the finetune step's final eval loss for jobs logged from now on (None: none logged)
    evaluation: dict[str, float] = field(default_factory=lambda: {"rougeL": 0.34})

    @classmethod
    def fresh(cls, directory: Path) -> WorkspaceMlflow:
        path = directory / "workspace-mlflow.db"
        shutil.copyfile(_template(), path)
        return cls(path)

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.path}"

    def log_job(self, job: str) -> None:
        from mlflow import MlflowClient

        final = self.eval_loss
        client = MlflowClient(tracking_uri=self.uri)
        found = client.get_experiment_by_name(EXPERIMENT)
        exp = found.experiment_id if found else client.create_experiment(EXPERIMENT)
        parent = client.create_run(exp, run_name=job)
        nested = {"mlflow.rootRunId": job, "mlflow.parentRunId": parent.info.run_id}
        step = client.create_run(exp, run_name="finetune", tags=nested)
        for i, loss in enumerate((2.6, 2.3, 2.1 if final is None else final)):
            client.log_metric(step.info.run_id, "train_loss", loss, step=i * 10)
        if final is not None:
            client.log_metric(step.info.run_id, "eval_loss", final, step=30)
        scored = client.create_run(exp, run_name="compute_metrics", tags=nested)  # the component's evaluation step
        for name, value in self.evaluation.items():
            client.log_metric(scored.info.run_id, name, value)

    def reader(self, _backend: str = "") -> Any:
        from gitops.report.metrics import MlflowMetricsReader

        return MlflowMetricsReader(self.uri)
