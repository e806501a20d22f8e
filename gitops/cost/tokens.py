"""What serverless training and serving cost: rates per million tokens and the hourly hosting fee, per model and
region, from a dated snapshot (``serverless_prices.yaml``; a benchmark passes its own, marked ``assumed``), and how
many tokens a version trains on.

Serverless fine-tuning bills tokens x epochs x the rate per million tokens; a serverless endpoint bills input and
output tokens, plus an hourly hosting fee for every deployed fine-tuned model whether it is called or not. A rate
that no source publishes is None, never 0: the plan says "price unknown" and a budget cap on it is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gitops.cost.prices import is_price

SERVERLESS_SNAPSHOT = Path(__file__).with_name("serverless_prices.yaml")
RATES = ("train_per_million", "input_per_million", "output_per_million", "hosting_per_hour")


@dataclass(frozen=True)
class TokenRates:
    model: str
    region: str
    as_of: str
    source: str
    train_per_million: float | None = None  # USD per million training tokens (x epochs)
    input_per_million: float | None = None  # USD per million prompt tokens
    output_per_million: float | None = None  # USD per million completion tokens
    hosting_per_hour: float | None = None  # USD per hour a fine-tuned model is deployed
    basis: str = ""  # where the rates come from
    assumed: tuple[str, ...] = ()  # rates that no source publishes, assumed (a benchmark's own snapshot only)

    def label(self, rate: str) -> str:
        """How a rate is printed: its amount, and "assumed" where nobody published it."""
        value = getattr(self, rate)
        if value is None:
            return "price unknown"
        unit = "/h" if rate == "hosting_per_hour" else "/1M tokens"
        return f"${value:g}{unit}" + (" (assumed)" if rate in self.assumed else "")


@dataclass(frozen=True)
class TokenSnapshot:
    as_of: str
    source: str
    regions: Mapping[str, Mapping[str, Mapping[str, Any]]]

    def rates(self, region: str, model: str) -> TokenRates | None:
        """The rates of ``model`` in ``region`` (names compare case-insensitively); None when the snapshot has none."""
        table = {k.lower(): v for k, v in (self.regions.get(region.lower()) or {}).items()}
        found = table.get(model.lower())
        if found is None:
            return None
        amounts = {r: float(found[r]) for r in RATES if found.get(r) is not None}
        return TokenRates(
            model,
            region.lower(),
            self.as_of,
            self.source,
            basis=str(found.get("basis", "")),
            assumed=tuple(str(a) for a in found.get("assumed") or ()),
            **amounts,
        )


def read_token_snapshot(path: Path = SERVERLESS_SNAPSHOT) -> TokenSnapshot:
    """A snapshot file; ``ValueError`` naming the file and the entry when it is not one."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("regions"), dict) or not data.get("as_of"):
        raise ValueError(f"{path} is not a serverless price snapshot (as_of, source, regions: {{region: {{model: rates}}}})")
    for region, models in data["regions"].items():
        for model, rates in (models or {}).items():
            if not isinstance(rates, dict) or set(rates) - {*RATES, "basis", "assumed"}:
                raise ValueError(f"{path}: regions.{region}.{model} holds {', '.join(RATES)}, basis and assumed only")
            bad = [r for r in RATES if rates.get(r) is not None and not is_price(rates[r])]
            if bad or not set(rates.get("assumed") or ()) <= set(RATES):
                raise ValueError(f"{path}: regions.{region}.{model}: {', '.join(bad) or 'assumed'} is not a price")
    return TokenSnapshot(str(data["as_of"]), str(data.get("source", "")), {str(r).lower(): m or {} for r, m in data["regions"].items()})


@cache
def committed_token_snapshot() -> TokenSnapshot:
    return read_token_snapshot(SERVERLESS_SNAPSHOT)


def training_tokens(work_now: float, work_before: float, tokens_before: object) -> float | None:
    """Tokens a version trains on (x epochs): the previous version's, scaled by the work asked (share of data x
    epochs), as durations are; None when no version has trained (the plan shows the rate alone)."""
    if not isinstance(tokens_before, int | float) or isinstance(tokens_before, bool) or tokens_before <= 0 or work_before <= 0:
        return None
    return float(tokens_before) * work_now / work_before
