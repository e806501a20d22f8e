"""Endpoint usage and deployment traffic from Azure Monitor (``metrics:getBatch``).

Usage: ``RequestsPerMinute`` for many endpoints in few calls (one call covers up to ``BATCH_SIZE``).
Anything missing, malformed or failed reads as unknown usage, which cleanup treats as active: no endpoint
is deleted on missing data.

Traffic: one deployment's requests split by ``envoy_response_code`` and its ``RequestLatency_P95``, the
deployment-level metrics Azure Monitor documents for ``onlineEndpoints/deployments``, over a rollout's
hold. Unknown figures are unknown: a rollout never moves on because the metrics could not be read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gitops.backends.azureml.clients import AzureClients
from gitops.backends.azureml.errors import call
from gitops.backends.base import TrafficWindow, Usage, failed_response, scored_response
from gitops.errors import GitopsError

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRIC = "RequestsPerMinute"
BATCH_SIZE = 50  # resource ids per metrics:getBatch request (the service's limit)
_GRAINS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
)


DEPLOYMENT_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
LATENCY_P95 = "RequestLatency_P95"
RESPONSE_CODE = "envoy_response_code"  # the dimension of a deployment's RequestsPerMinute


def _status(code: str) -> int | None:
    """The response code a series stands for (envoy's exact code, e.g. ``503``); None when it names none."""
    return int(code) if code.isdigit() and len(code) == 3 else None


def traffic_window(deployment: str, by_code: Any, latency: Any) -> TrafficWindow:
    """Scored requests, failures and p95 from the two answers: per minute, ``RequestsPerMinute`` (average over a
    one-minute grain: that minute's requests) per response code (a caller's 4xx is no evidence: ``scored_response``),
    and ``RequestLatency_P95``; the window's p95 is the worst minute's, so a bound is never passed by averaging a bad
    minute away. Requests under no readable code make the figures unknown: they could be failures, and a failure
    that cannot be counted never passes for none."""
    requests = errors = 0.0
    worst: float | None = None
    try:
        for result in by_code:
            for metric in getattr(result, "metrics", None) or []:
                for series in metric.timeseries:
                    code = str((series.metadata_values or {}).get(RESPONSE_CODE) or "")
                    status = _status(code)
                    n = sum(float(p.average) for p in series.data if p.average)
                    if status is None and n:
                        return TrafficWindow(deployment, known=False, note=f"{n:.0f} request(s) under no response code ({code!r})")
                    if status is None or not scored_response(status):  # refused for the caller's fault: no evidence
                        continue
                    requests += n
                    errors += n if failed_response(status) else 0.0
        for result in latency:
            for metric in getattr(result, "metrics", None) or []:
                for series in metric.timeseries:
                    for point in series.data:
                        if point.average is not None:
                            worst = max(worst or 0.0, float(point.average))
    except (AttributeError, TypeError, ValueError) as exc:
        return TrafficWindow(deployment, known=False, note=f"unexpected metrics shape: {type(exc).__name__}")
    return TrafficWindow(
        deployment,
        known=True,
        requests=round(requests),
        errors=round(errors),
        p95_latency_ms=worst,
        note="Azure Monitor (RequestsPerMinute by envoy_response_code, RequestLatency_P95)",
    )


def granularity(window: timedelta, max_points: int = 1440) -> timedelta:
    return next((g for g in _GRAINS if window / g <= max_points), _GRAINS[-1])


def batches(items: Sequence[str], size: int = BATCH_SIZE) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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

    def traffic(self, endpoint: str, deployment: str, start: datetime, end: datetime) -> TrafficWindow:
        """One deployment's traffic between ``start`` and ``end`` (two small calls: the latency metric has no
        response-code dimension to split by)."""
        rid = f"{self.resource_id(endpoint)}/deployments/{deployment}"
        failed: set[str] = set()
        start = min(start, end - timedelta(minutes=1))  # at least one minute: Monitor's finest grain

        def query(metric: str, split: str | None) -> Any:
            return self._metrics().query_resources(
                resource_ids=[rid],
                metric_namespace=DEPLOYMENT_NAMESPACE,
                metric_names=[metric],
                timespan=(start, end),
                granularity=timedelta(minutes=1),
                aggregations=["Average"],
                filter=split,
                max_results=50,
                raw_response_hook=metric_errors(failed),
            )

        try:
            by_code = call(f"querying {METRIC} of deployment {deployment}", lambda: query(METRIC, f"{RESPONSE_CODE} eq '*'"))
            latency = call(f"querying {LATENCY_P95} of deployment {deployment}", lambda: query(LATENCY_P95, None))
        except GitopsError as exc:
            return TrafficWindow(deployment, known=False, note=exc.headline)
        if failed:
            return TrafficWindow(deployment, known=False, note=f"Azure Monitor reported an error for deployment {deployment}'s metrics")
        return traffic_window(deployment, by_code, latency)

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
                    resource_ids=chunk,
                    metric_namespace=NAMESPACE,
                    metric_names=[METRIC],
                    timespan=(end - window, end),
                    granularity=granularity(window),
                    aggregations=["Total"],
                    raw_response_hook=metric_errors(failed),
                )

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
