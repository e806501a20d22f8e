"""Wiring of the lifecycle from settings: the ledger (files, or Azure Blob) and the local backend's event hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.backends.base import Backend
from gitops.backends.registry import backend_cache
from gitops.errors import UnsupportedError
from gitops.ledger.model import Ledger
from gitops.lifecycle.flow import Decision, Lifecycle
from gitops.report.metrics import MetricsReader, MlflowMetricsReader
from gitops.settings import Settings

LOCAL_EVENT_HOOK = "gitops.lifecycle.hooks:local_event"


def local_lifecycle(workspace_dir: str | None = None) -> Lifecycle:
    from gitops.backends.local.backend import LocalBackend

    settings = Settings.load()
    local = LocalBackend(workspace_dir or settings.workspace_dir, event_hook=LOCAL_EVENT_HOOK)
    backend_for = backend_cache({"local": local})

    def reader_for(name: str) -> MetricsReader:
        return metrics_reader(backend_for(name))

    return Lifecycle(ledger_from(settings, local.ws.root / "ledger"), backend_for, topic=local.topic, reader_for=reader_for)


def metrics_reader(backend: Backend) -> MetricsReader:
    """Where a backend's training metrics are read: its MLflow tracking store (SQLite, or the workspace's)."""
    if backend.name == "local":
        return MlflowMetricsReader(backend.ws.tracking_uri)  # type: ignore[attr-defined]
    uri = getattr(backend, "tracking_uri", None)
    if uri is None:
        raise UnsupportedError(f"the {backend.name} backend has no metrics store")
    return MlflowMetricsReader(str(uri))


def ledger_from(settings: Settings, local_root: Path) -> Ledger:
    """The Azure Blob ledger when the settings name one (connection string or account URL), else files."""
    if settings.ledger_connection_string:
        from gitops.ledger.blob import BlobLedger

        return BlobLedger.from_connection_string(settings.ledger_connection_string, settings.ledger_container)
    if settings.ledger_account_url:
        from gitops.ledger.blob import BlobLedger

        return BlobLedger.from_account_url(settings.ledger_account_url, settings.ledger_container)
    from gitops.ledger.local import LocalLedger

    return LocalLedger(local_root)


def local_event(event: dict[str, Any]) -> list[Decision]:
    """The local backend's job-finished hook: the same handler the Azure Function calls."""
    return local_lifecycle().on_job_event(event)
