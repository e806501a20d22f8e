"""Hourly VM prices: where they come from, and how old they are.

A ``PriceBook`` asks its sources in order (the live Retail Prices API first when the caller has one, then the
committed snapshot), and every ``Price`` says its date and source, so the plan can name them. Sizes compare
case-insensitively, as everywhere else (the service upper-cases ``vmSize``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Protocol

import yaml

SNAPSHOT = Path(__file__).with_name("prices.yaml")


@dataclass(frozen=True)
class Price:
    sku: str
    region: str
    usd_per_hour: float
    as_of: str  # the day the price was read (ISO date)
    source: str  # "Azure Retail Prices API" or "snapshot"

    def __post_init__(self) -> None:
        # A price is a finite, non-negative number, never a boolean: NaN passes every budget cap ("$nan/h").
        if not is_price(self.usd_per_hour):
            raise ValueError(f"{self.sku} in {self.region}: {self.usd_per_hour!r} is not a price (a finite, non-negative USD amount)")


def is_price(value: object) -> bool:
    """A finite, non-negative number of USD; ``True``, ``NaN``, ``inf`` and ``-1`` are not."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


class PriceSource(Protocol):
    def hourly(self, region: str, sku: str) -> Price | None:
        """The pay-as-you-go Linux price of one VM of ``sku`` in ``region``; None when this source has none."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """A dated table of prices (the committed ``prices.yaml``, or one written by ``gitops prices refresh``)."""

    as_of: str
    source: str
    regions: Mapping[str, Mapping[str, float]]

    def hourly(self, region: str, sku: str) -> Price | None:
        table = {k.lower(): (k, v) for k, v in (self.regions.get(region.lower()) or {}).items()}
        found = table.get(sku.lower())
        return Price(found[0], region.lower(), float(found[1]), self.as_of, "snapshot") if found else None

    def to_yaml(self) -> str:
        body = {
            "as_of": self.as_of,
            "source": self.source,
            "currency": "USD",
            "regions": {r: dict(sorted(t.items())) for r, t in sorted(self.regions.items())},
        }
        return yaml.safe_dump(body, sort_keys=False)


def read_snapshot(path: Path = SNAPSHOT) -> Snapshot:
    """A snapshot file; ``ValueError`` naming the file when it is not one (never an empty table instead)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("regions"), dict) or not data.get("as_of"):
        raise ValueError(f"{path} is not a price snapshot (as_of, source, regions: {{region: {{sku: usd_per_hour}}}})")
    regions: dict[str, dict[str, float]] = {}
    for region, table in data["regions"].items():
        if not isinstance(table, dict) or not all(is_price(v) for v in table.values()):
            raise ValueError(f"{path}: regions.{region} must map VM sizes to finite, non-negative USD per hour")
        regions[str(region).lower()] = {str(k): float(v) for k, v in table.items()}
    return Snapshot(str(data["as_of"]), str(data.get("source", "")), regions)


@cache
def committed_snapshot() -> Snapshot:
    return read_snapshot(SNAPSHOT)


class PriceBook:
    """The first source that knows a price answers; answers are kept for the life of the book. A source that fails
    (the live API unreachable) is asked no more, and ``notes`` says so: the plan names what it used instead."""

    RETRY_AFTER_S = 600.0  # a long-lived process (the Function) asks a failed source again after this long

    def __init__(self, sources: Iterable[PriceSource] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = list(sources) if sources is not None else [committed_snapshot()]
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[Price | None, float]] = {}
        self._down: dict[int, float] = {}  # source -> when it failed
        self.notes: list[str] = []

    def hourly(self, region: str, sku: str) -> Price | None:
        from gitops.errors import GitopsError

        key, now = (region.lower(), sku.lower()), self.clock()
        kept = self._seen.get(key)
        if kept is not None and now - kept[1] < self.RETRY_AFTER_S:
            return kept[0]
        found = None
        for i, source in enumerate(self.sources):
            if now - self._down.get(i, -self.RETRY_AFTER_S) < self.RETRY_AFTER_S:
                continue
            try:
                found = source.hourly(region, sku)
            except GitopsError as exc:
                self._down[i] = now
                self.notes.append(exc.headline)
                continue
            if found is not None:
                break
        self._seen[key] = (found, now)
        return found


def refreshed(snapshot: Snapshot, live: PriceSource, today: date, regions: Iterable[str] = (), skus: Iterable[str] = ()) -> Snapshot:
    """Every region of ``snapshot`` (and ``regions``) read again from ``live`` for every size it lists (and
    ``skus``), dated ``today``: one date holds for the whole table. A size the live source does not know is dropped,
    not kept stale under the new date."""
    sizes = sorted({*skus, *(k for table in snapshot.regions.values() for k in table)}, key=str.lower)
    table: dict[str, dict[str, float]] = {}
    for region in sorted({*snapshot.regions, *(r.lower() for r in regions)}):
        found = [p for sku in sizes if (p := live.hourly(region, sku)) is not None]
        table[region] = {p.sku: p.usd_per_hour for p in found}
    return Snapshot(today.isoformat(), "Azure Retail Prices API (pay-as-you-go, Linux)", table)
