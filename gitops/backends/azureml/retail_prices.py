"""The Azure Retail Prices API (``https://prices.azure.com/api/retail/prices``): public, unauthenticated list
prices, read through an azure-core pipeline (its retry policy, its transport) and kept for a day on disk.

One request per (region, size): ``$filter=armRegionName eq 'R' and armSkuName eq 'S' and priceType eq
'Consumption'``. The answer holds several rows per size (Linux and Windows, Spot and Low Priority, sometimes a
newer row with a later ``effectiveStartDate``); the price is the newest pay-as-you-go Linux row per hour, in USD.
Pages are followed through ``NextPageLink`` only while it stays on the API's own host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gitops.backends.azureml.errors import scrub
from gitops.cost.prices import Price
from gitops.errors import BackendError, TransientBackendError

API_URL = "https://prices.azure.com/api/retail/prices"
SOURCE = "Azure Retail Prices API"
MAX_PAGES = 5  # a filter on one size answers one page; more is a filter gone wrong, not a reason to read on
_NOT_PAYG = ("spot", "low priority")


def _payg_linux_hourly(item: dict[str, Any], region: str, sku: str) -> bool:
    """The row a pay-as-you-go Linux VM bills by: not Windows, not Spot, not Low Priority, per hour, in USD."""
    names = f"{item.get('skuName', '')} {item.get('meterName', '')}".lower()
    return (
        str(item.get("type", "")).lower() == "consumption"
        and str(item.get("armSkuName", "")).lower() == sku.lower()
        and str(item.get("armRegionName", "")).lower() == region.lower()
        and str(item.get("unitOfMeasure", "")).lower() == "1 hour"
        and str(item.get("currencyCode", "USD")).upper() == "USD"
        and "windows" not in str(item.get("productName", "")).lower()
        and not any(word in names for word in _NOT_PAYG)
        and isinstance(item.get("retailPrice"), int | float)
    )


def pick_price(items: list[dict[str, Any]], region: str, sku: str, as_of: str) -> Price | None:
    """The newest pay-as-you-go Linux price among an answer's rows (the higher one when two start the same day)."""
    rows = [i for i in items if _payg_linux_hourly(i, region, sku)]
    if not rows:
        return None
    best = max(rows, key=lambda i: (str(i.get("effectiveStartDate", "")), float(i["retailPrice"])))
    return Price(str(best["armSkuName"]), region.lower(), float(best["retailPrice"]), as_of, SOURCE)


class RetailPrices:
    """A ``PriceSource`` over the live API. ``cache``: a JSON file of answers, reused on the day they were read."""

    def __init__(
        self,
        base_url: str = API_URL,
        transport: Any = None,
        cache: Path | None = None,
        today: Callable[[], date] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import RetryPolicy

        self.base_url = base_url
        self.today = today or (lambda: datetime.now(UTC).date())
        self.cache = cache
        self.timeout_s = timeout_s
        retry = RetryPolicy(retry_total=2, retry_backoff_factor=0.5, retry_backoff_max=4)
        self._client: PipelineClient[Any, Any] = PipelineClient(base_url, policies=[retry], transport=transport)
        self._memo: dict[str, Any] = self._load_cache()

    def _load_cache(self) -> dict[str, Any]:
        if self.cache is None or not self.cache.is_file():
            return {}
        try:
            data = json.loads(self.cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a damaged cache is only a cache: the API is asked again
        return data if isinstance(data, dict) else {}

    def _save_cache(self) -> None:
        if self.cache is not None:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            self.cache.write_text(json.dumps(self._memo, indent=1, sort_keys=True), encoding="utf-8")

    def hourly(self, region: str, sku: str) -> Price | None:
        today = self.today().isoformat()
        key = f"{region.lower()}/{sku.lower()}"
        kept = self._memo.get(key)
        if isinstance(kept, dict) and kept.get("as_of") == today:
            return Price(kept["sku"], region.lower(), float(kept["usd"]), today, SOURCE) if kept.get("usd") is not None else None
        price = pick_price(self._items(region, sku), region, sku, today)
        self._memo[key] = {"as_of": today, "sku": price.sku if price else sku, "usd": price.usd_per_hour if price else None}
        self._save_cache()
        return price

    def _items(self, region: str, sku: str) -> list[dict[str, Any]]:
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        query = f"armRegionName eq '{_quoted(region)}' and armSkuName eq '{_quoted(sku)}' and priceType eq 'Consumption'"
        request = HttpRequest("GET", self.base_url, params={"$filter": query})
        host = urlsplit(self.base_url).netloc
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            try:
                response = self._client.send_request(request, connection_timeout=self.timeout_s, read_timeout=self.timeout_s)
            except AzureError as exc:
                raise TransientBackendError(
                    f"the Azure Retail Prices API did not answer: {scrub(str(exc))}", hint="the committed price snapshot is used instead"
                ) from None
            if response.status_code != 200:
                raise (TransientBackendError if response.status_code == 429 or response.status_code >= 500 else BackendError)(
                    f"the Azure Retail Prices API answered {response.status_code}", hint="the committed price snapshot is used instead"
                )
            try:
                body = response.json()
            except ValueError:
                raise BackendError("the Azure Retail Prices API answered something that is not JSON") from None
            items += [i for i in body.get("Items") or [] if isinstance(i, dict)] if isinstance(body, dict) else []
            following = body.get("NextPageLink") if isinstance(body, dict) else None
            if not following or urlsplit(str(following)).netloc != host:
                break
            request = HttpRequest("GET", str(following))
        return items


def _quoted(value: str) -> str:
    """An OData string literal's content: a quote doubled, so a size name cannot end the filter early."""
    return value.replace("'", "''")
