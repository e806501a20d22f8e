"""Retired VM sizes and model successors: a small committed table (``retirements.yaml``), since no Azure API
reports retirements. Read once, compared case-insensitively; every entry names its date and its source."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import yaml

TABLE = Path(__file__).with_name("retirements.yaml")


@dataclass(frozen=True)
class RetiredSku:
    name: str
    retired: date
    successor: str
    source: str


@dataclass(frozen=True)
class Successor:
    pattern: str
    name: str
    version: str
    source: str


@cache
def _table() -> tuple[dict[str, RetiredSku], tuple[Successor, ...]]:
    data = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    skus = {
        str(s["name"]).lower(): RetiredSku(str(s["name"]), _day(s["retired"]), str(s["successor"]), str(s["source"]))
        for s in data.get("skus", [])
    }
    models = tuple(Successor(str(m["pattern"]), str(m["successor"]), str(m["version"]), str(m["source"])) for m in data.get("models", []))
    return skus, models


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def retired_sku(sku: str, today: date) -> RetiredSku | None:
    """The table's entry when ``sku`` was retired on or before ``today``."""
    entry = _table()[0].get(sku.lower())
    return entry if entry is not None and entry.retired <= today else None


def successor(model: str) -> Successor | None:
    """A current model of the same registry to move to from ``model`` (Phi-3* -> Phi-4), when the table knows one."""
    return next((s for s in _table()[1] if fnmatch.fnmatch(model.lower(), s.pattern.lower())), None)
