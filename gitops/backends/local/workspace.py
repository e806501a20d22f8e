"""The local workspace directory: MLflow store, job records, logs, endpoint records and keys."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalWorkspace:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> LocalWorkspace:
        ws = cls(Path(root).resolve())  # its folders are made by what writes in them: a look creates nothing
        # Offline by construction: no hub lookups from any process started here.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        return ws

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"

    def job_dir(self, job_name: str) -> Path:
        return self.root / "jobs" / job_name

    def endpoint_dir(self, name: str) -> Path:
        return self.root / "endpoints" / name

    @property
    def events_dir(self) -> Path:
        return self.root / "events"


_INITIALISED: set[Path] = set()


def use_mlflow(ws: LocalWorkspace) -> None:
    """Point this process's MLflow at the workspace store (SQLite tracking + registry, file artifacts).

    The first use in a process creates (or migrates) the SQLite schema under a lock on the workspace: two
    ``gitops run`` started at once in a fresh workspace raced on it ("duplicate column name")."""
    import mlflow

    mlflow.set_tracking_uri(ws.tracking_uri)
    mlflow.set_registry_uri(ws.tracking_uri)
    if ws.root in _INITIALISED:
        return
    ws.root.mkdir(parents=True, exist_ok=True)
    with (ws.root / ".mlflow-init.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            mlflow.MlflowClient(ws.tracking_uri, ws.tracking_uri).search_experiments(max_results=1)  # creates the schema
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _INITIALISED.add(ws.root)
