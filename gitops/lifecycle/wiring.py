"""The one place the lifecycle is built from settings: ledger, backends, step queue, topics, metrics reader.

The CLI drives runs in its own process (no queue: ``Lifecycle.settle``); the Function App sends step
messages to the Storage queue its ``advance`` function consumes. Both read the same ledger settings, and
the Function refuses to start without one (a ledger in a temporary directory would lose every run).
"""

from __future__ import annotations

from pathlib import Path

from gitops.backends.base import Backend, TracksMetrics
from gitops.backends.registry import backend_cache
from gitops.cost.prices import Price, PriceBook, PriceSource, committed_snapshot
from gitops.errors import ConfigurationError, UnsupportedError
from gitops.ledger.model import Ledger
from gitops.lifecycle.flow import Lifecycle
from gitops.lifecycle.queue import StepQueue
from gitops.lifecycle.storage_queue import StorageQueue
from gitops.report.metrics import MetricsReader, MlflowMetricsReader
from gitops.settings import Settings


def local_lifecycle(workspace_dir: str | None = None) -> Lifecycle:
    """For the CLI: the local backend in the workspace directory, the Azure one on first use; no queue. Its repository
    identity is the plan's (``repository_salt``): GITOPS_REPO, else the checkout's GitHub remote, so a laptop deploys
    under the endpoint names its plan showed, and tags what it creates with the repository the PR belongs to."""
    from gitops.backends.local.backend import LocalBackend
    from gitops.review.gitrepo import repository_salt

    settings = Settings.load()
    root = Path(workspace_dir or settings.workspace_dir).resolve()
    local = LocalBackend(root)
    backend_for = backend_cache({"local": local})
    # An Azure dead-letter event replayed with `gitops event` is ours too when this shell points at its workspace.
    azure = azure_topic(settings)
    topics = [local.topic, *([azure] if azure else [])]
    return Lifecycle(
        ledger_from(settings, root / "ledger"),
        backend_for,
        topic=topics,
        reader_for=lambda name: metrics_reader(backend_for(name)),
        name_salt=repository_salt(Path.cwd(), settings.repo)[0],
    )


def function_lifecycle(settings: Settings | None = None) -> Lifecycle:
    """For the Function App: a ledger and a step queue are required settings; the Azure backend on first use."""
    from gitops.backends.registry import hosted_only, hosted_only_in, workspace_cache

    s = settings or Settings.load()
    backend_for = hosted_only(backend_cache())
    return Lifecycle(
        ledger_from(s, None),
        backend_for,
        backend_in=hosted_only_in(workspace_cache()),
        topic=azure_topic(s),
        queue=queue_from(s, required=True),
        reader_for=lambda name: metrics_reader(backend_for(name)),
    )


def azure_topic(settings: Settings) -> str | None:
    if settings.subscription_id and settings.resource_group and settings.workspace_name:
        from gitops.backends.azureml import workspace_resource_id

        return workspace_resource_id(settings.subscription_id, settings.resource_group, settings.workspace_name)
    return None


def metrics_reader(backend: Backend) -> MetricsReader:
    """Where a backend's training metrics are read: its MLflow tracking store (SQLite, or the workspace's)."""
    if not isinstance(backend, TracksMetrics):
        raise UnsupportedError(f"the {backend.name} backend has no metrics store")
    return MlflowMetricsReader(str(backend.tracking_uri))


def ledger_from(settings: Settings, local_root: Path | None) -> Ledger:
    """The Azure Blob ledger when the settings name one (connection string or account URL), else files under
    ``local_root``; with no ``local_root`` (the Function App) a ledger setting is required."""
    if settings.ledger_connection_string:
        from gitops.ledger.blob import BlobLedger

        return BlobLedger.from_connection_string(settings.ledger_connection_string, settings.ledger_container)
    if settings.ledger_account_url:
        from gitops.ledger.blob import BlobLedger

        return BlobLedger.from_account_url(settings.ledger_account_url, settings.ledger_container)
    if local_root is None:
        raise ConfigurationError(
            "no ledger is configured: GITOPS_LEDGER_ACCOUNT_URL (or GITOPS_LEDGER_CONNECTION_STRING) is not set",
            hint="set it in the Function App's application settings (infra/main.bicep does)",
        )
    from gitops.ledger.local import LocalLedger

    return LocalLedger(local_root)


def queue_from(settings: Settings, required: bool = False) -> StepQueue | None:
    if settings.queue_connection_string:
        return StorageQueue.from_connection_string(settings.queue_connection_string, settings.queue_name)
    if settings.queue_service_uri:
        return StorageQueue.from_account_url(settings.queue_service_uri, settings.queue_name)
    if required:
        raise ConfigurationError(
            "no step queue is configured: GITOPS_QUEUE__queueServiceUri (or GITOPS_QUEUE) is not set",
            hint="set it in the Function App's application settings (infra/main.bicep does)",
        )
    return None


class _LazyRetailPrices:
    """The live price API, built on first use (azure-core stays out of a cold start that needs no price)."""

    def __init__(self, cache: Path | None) -> None:
        self.cache = cache
        self._live: PriceSource | None = None

    def hourly(self, region: str, sku: str) -> Price | None:
        if self._live is None:
            try:
                from gitops.backends.azureml.retail_prices import RetailPrices
            except ImportError:
                raise ConfigurationError(
                    "live prices need azure-core, which is not installed here", hint="pip install 'finetune-gitops[prices]'"
                ) from None
            self._live = RetailPrices(cache=self.cache)
        return self._live.hourly(region, sku)


def price_book(live: bool, cache: Path | None = None) -> PriceBook:
    """Prices for plans and checks: the Azure Retail Prices API first when ``live`` (kept a day in ``cache``), then
    the committed snapshot; a source that fails is named in the book's notes and asked no more."""
    snapshot = committed_snapshot()
    return PriceBook([_LazyRetailPrices(cache), snapshot] if live else [snapshot])
