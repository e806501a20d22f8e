"""The Azure Retail Prices API (``https://prices.azure.com/api/retail/prices``): public, unauthenticated list
prices, read through an azure-core pipeline (its retry policy, its transport) and kept for a day on disk.

One request per (region, size): ``$filter=armRegionName eq 'R' and armSkuName eq 'S' and priceType eq
'Consumption'``. The answer holds several rows per size (Linux and Windows, Spot and Low Priority, sometimes a
newer row with a later ``effectiveStartDate``); the price is the newest pay-as-you-go Linux row per hour, in USD.

An answer is data, not trust: it is parsed with a schema (an envelope whose ``Items`` is a list of rows, each
price a finite, non-negative number, never a boolean), and one row that is not a price refuses the whole answer
rather than letting another row stand in for it. Pages are followed through ``NextPageLink`` only on the API's
own origin (scheme, host and port, ``:443`` being https's own), and the whole read, every page and every retry,
is bounded in time and size, so a trickling answer cannot hold a plan or a Function.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator

from gitops.backends.azureml.errors import scrub
from gitops.cost.prices import Price, is_price
from gitops.errors import BackendError, ConfigurationError, TransientBackendError

API_URL = "https://prices.azure.com/api/retail/prices"
SOURCE = "Azure Retail Prices API"
MAX_PAGES = 5  # a filter on one size answers one page; more is a filter gone wrong, not a reason to read on
MAX_BODY_BYTES = 4 * 1024 * 1024  # one size's rows are a few KB; the API pages at 100 rows (about 100 KB)
_NOT_PAYG = ("spot", "low priority")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_FALLBACK = "the committed price snapshot is used instead"


class PriceRow(BaseModel):
    """One row of an answer: the fields the price is chosen by. Others (meterId, savingsPlan...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    retailPrice: StrictFloat | StrictInt  # noqa: N815 (the API's own names)
    armSkuName: str = ""  # noqa: N815
    armRegionName: str = ""  # noqa: N815
    type: str = ""
    unitOfMeasure: str = ""  # noqa: N815
    currencyCode: str = "USD"  # noqa: N815
    productName: str = ""  # noqa: N815
    skuName: str = ""  # noqa: N815
    meterName: str = ""  # noqa: N815
    effectiveStartDate: str = ""  # noqa: N815

    @field_validator("retailPrice")
    @classmethod
    def _a_price(cls, value: float) -> float:
        if not is_price(value):  # the one rule a Price holds to, wherever the number comes from
            raise ValueError(f"{value!r} is not a price (a finite, non-negative number of USD)")
        return float(value)


class PricesPage(BaseModel):
    """The documented envelope (``BillingCurrency``, ``Items``, ``NextPageLink``, ``Count``...)."""

    model_config = ConfigDict(extra="ignore")

    Items: list[PriceRow] = Field(max_length=1000)
    NextPageLink: str | None = None


def _payg_linux_hourly(row: PriceRow, region: str, sku: str) -> bool:
    """The row a pay-as-you-go Linux VM bills by: not Windows, not Spot, not Low Priority, per hour, in USD."""
    names = f"{row.skuName} {row.meterName}".lower()
    return (
        row.type.lower() == "consumption"
        and row.armSkuName.lower() == sku.lower()
        and row.armRegionName.lower() == region.lower()
        and row.unitOfMeasure.lower() == "1 hour"
        and row.currencyCode.upper() == "USD"
        and "windows" not in row.productName.lower()
        and not any(word in names for word in _NOT_PAYG)
    )


def pick_price(rows: list[PriceRow], region: str, sku: str, as_of: str) -> Price | None:
    """The newest pay-as-you-go Linux price among an answer's rows (the higher one when two start the same day)."""
    found = [r for r in rows if _payg_linux_hourly(r, region, sku)]
    if not found:
        return None
    best = max(found, key=lambda r: (r.effectiveStartDate, r.retailPrice))
    return Price(best.armSkuName, region.lower(), float(best.retailPrice), as_of, SOURCE)


def parse_page(body: bytes) -> PricesPage:
    """One answer, or ``BackendError`` saying what in it is not a Retail Prices answer."""
    try:
        return PricesPage.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise BackendError(
            f"the Azure Retail Prices API answered something that is not a price list: {where}: {first['msg'][:120]}",
            hint=_FALLBACK,
        ) from None


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's own port filled in: ``https://h:443/x`` and ``https://h/x`` are one."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: no origin of ours
        return ("", "", None)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port or default)


def _allowed_base(url: str) -> bool:
    """The API over https on port 443, or a stand-in on this machine's loopback (tests, benchmarks)."""
    scheme, host, port = origin(url)
    return (scheme, host, port) == origin(API_URL) or (scheme in ("http", "https") and host in _LOOPBACK)


class RetailPrices:
    """A ``PriceSource`` over the live API. ``cache``: a JSON file of answers, reused on the day they were read.
    ``timeout_s`` bounds one price's whole read: every page, every retry, every byte."""

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

        if not _allowed_base(base_url):
            raise ConfigurationError(f"the Retail Prices API is read from {API_URL}, not {base_url}")
        self.base_url = base_url
        self.today = today or (lambda: datetime.now(UTC).date())
        self.cache = cache
        self.timeout_s = timeout_s
        retry = RetryPolicy(retry_total=2, retry_backoff_factor=0.5, retry_backoff_max=4, timeout=timeout_s)
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

    def _kept(self, key: str, region: str, today: str) -> Price | None | bool:
        """The day's cached answer (a Price, or None: no price), or False when there is none to trust."""
        kept = self._memo.get(key)
        if not isinstance(kept, dict) or kept.get("as_of") != today:
            return False
        if kept.get("usd") is None:
            return None
        try:
            return Price(str(kept["sku"]), region.lower(), kept["usd"], today, SOURCE)
        except (KeyError, TypeError, ValueError):
            return False  # an edited or damaged cache entry is asked again, never believed

    def hourly(self, region: str, sku: str) -> Price | None:
        today = self.today().isoformat()
        key = f"{region.lower()}/{sku.lower()}"
        kept = self._kept(key, region, today)
        if kept is not False:
            return kept  # type: ignore[return-value]
        price = pick_price(self._rows(region, sku), region, sku, today)
        self._memo[key] = {"as_of": today, "sku": price.sku if price else sku, "usd": price.usd_per_hour if price else None}
        self._save_cache()
        return price

    def _rows(self, region: str, sku: str) -> list[PriceRow]:
        from azure.core.rest import HttpRequest

        query = f"armRegionName eq '{_quoted(region)}' and armSkuName eq '{_quoted(sku)}' and priceType eq 'Consumption'"
        request = HttpRequest("GET", self.base_url, params={"$filter": query})
        deadline = time.monotonic() + self.timeout_s
        rows: list[PriceRow] = []
        for _ in range(MAX_PAGES):
            page = parse_page(self._read(request, deadline))
            rows += page.Items
            following = page.NextPageLink
            if not following or origin(following) != origin(self.base_url):
                break
            request = HttpRequest("GET", following)
        return rows

    def _read(self, request: Any, deadline: float) -> bytes:
        """One page's body, read within ``deadline`` and ``MAX_BODY_BYTES`` (the transport bounds each read only)."""
        from azure.core.exceptions import AzureError

        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            response = self._client.send_request(request, stream=True, connection_timeout=left, read_timeout=left)
            if response.status_code != 200:
                response.close()
                kind = TransientBackendError if response.status_code == 429 or response.status_code >= 500 else BackendError
                raise kind(f"the Azure Retail Prices API answered {response.status_code}", hint=_FALLBACK)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    response.close()
                    raise BackendError(f"the Azure Retail Prices API answered more than {MAX_BODY_BYTES} bytes", hint=_FALLBACK)
                if time.monotonic() > deadline:
                    response.close()
                    raise TimeoutError
            return bytes(body)
        except TimeoutError:
            raise TransientBackendError(
                f"the Azure Retail Prices API did not answer within {self.timeout_s:.0f}s", hint=_FALLBACK
            ) from None
        except AzureError as exc:
            raise TransientBackendError(f"the Azure Retail Prices API did not answer: {scrub(str(exc))}", hint=_FALLBACK) from None


def _quoted(value: str) -> str:
    """An OData string literal's content: a quote doubled, so a size name cannot end the filter early."""
    return value.replace("'", "''")
