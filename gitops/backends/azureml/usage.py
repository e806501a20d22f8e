"""Endpoint usage from Azure Monitor: ``RequestsPerMinute`` for many endpoints in few calls.

One ``metrics:getBatch`` call covers up to ``BATCH_SIZE`` endpoints. Anything missing, malformed or
failed reads as unknown usage, which cleanup treats as active: no endpoint is deleted on missing data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gitops.backends.azureml.clients import AzureClients
from gitops.backends.azureml.errors import call
from gitops.backends.base import Usage
from gitops.errors import GitopsError

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRIC = "RequestsPerMinute"
BATCH_SIZE = 50  # resource ids per metrics:getBatch request (the service's limit)
_GRAINS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=30),
           timedelta(hours=1), timedelta(hours=6), timedelta(hours=12), timedelta(days=1))


def granularity(window: timedelta, max_points: int = 1440) -> timedelta:
    return next((g for g in _GRAINS if window / g <= max_points), _GRAINS[-1])


def batches(items: Sequence[str], size: int = BATCH_SIZE) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def metric_errors(into: set[str]) -> Any:
    """A response hook noting the resources whose metric carries its own ``errorCode`` while the call succeeded:
    azure-monitor-querymetrics drops that field, and such a metric comes back empty, which would read as idle."""

    def hook(pipeline_response: Any) -> None:
        try:
            body = pipeline_response.http_response.json()
        except (ValueError, AttributeError):
            return
        for value in (body or {}).get("values") or []:
            for metric in value.get("value") or []:
                if str(metric.get("errorCode") or "Success") != "Success":
                    into.add(str(value.get("resourceid") or "").lower())

    return hook


def summarise(endpoint: str, metric: Any) -> Usage:
    """Requests in the window and the last minute that saw one, from one endpoint's metric."""
    try:
        total, last = 0.0, None
        for series in metric.timeseries:
            for point in series.data:
                if point.total:
                    total += float(point.total)
                    stamp = point.timestamp if point.timestamp.tzinfo else point.timestamp.replace(tzinfo=UTC)
                    last = max(last, stamp) if last else stamp
        return Usage(endpoint, known=True, requests=int(total), last_request_at=last)
    except (AttributeError, TypeError, ValueError):
        return Usage(endpoint, known=False)


class AzureUsage:
    def __init__(self, clients: AzureClients, metrics_endpoint: str | None = None) -> None:
        self.clients = clients
        self.metrics_endpoint = metrics_endpoint
        self._client: Any = None

    def resource_id(self, endpoint: str) -> str:
        return f"{self.clients.workspace_id}/onlineEndpoints/{endpoint}"

    def _metrics(self) -> Any:
        if self._client is None:
            from azure.monitor.querymetrics import MetricsClient

            endpoint = self.metrics_endpoint or f"https://{self.clients.location}.metrics.monitor.azure.com"
            self._client = MetricsClient(endpoint, self.clients.get_credential(), **self.clients.client_options)
        return self._client

    def usage(self, endpoints: list[str], window: timedelta, now: datetime | None = None) -> dict[str, Usage]:
        out = {name: Usage(name, known=False) for name in endpoints}
        if not endpoints:
            return out
        end = now or datetime.now(UTC)
        resource_ids = [self.resource_id(name) for name in endpoints]
        ids = {rid.lower(): name for rid, name in zip(resource_ids, endpoints, strict=True)}
        for chunk in batches(resource_ids):
            failed: set[str] = set()  # resources whose metric came back with its own errorCode

            def query(chunk: Sequence[str] = chunk, failed: set[str] = failed) -> Any:
                return self._metrics().query_resources(
                    resource_ids=chunk, metric_namespace=NAMESPACE, metric_names=[METRIC], timespan=(end - window, end),
                    granularity=granularity(window), aggregations=["Total"], raw_response_hook=metric_errors(failed))

            try:
                results = call(f"querying {METRIC} for {len(chunk)} endpoints", query)
            except GitopsError as exc:
                log.warning("usage unknown for %d endpoints: %s", len(chunk), exc.headline)
                continue
            for result in results:
                for metric in getattr(result, "metrics", None) or []:
                    resource = str(getattr(metric, "id", "") or "").lower().split("/providers/microsoft.insights/")[0]
                    if resource in ids and resource not in failed:
                        out[ids[resource]] = summarise(ids[resource], metric)
        return out
