"""What a run costs: the dated snapshot, the live Retail Prices API over real HTTP (documented answer shape), the
estimate the plan shows, and the budget caps of gitops.yaml."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gitops.cost.estimate import budget_findings, estimate
from gitops.cost.prices import Price, PriceBook, Snapshot, committed_snapshot, read_snapshot, refreshed
from gitops.errors import TransientBackendError
from gitops.ledger.model import RunRecord
from gitops.spec.policy import Policy
from gitops.spec.validate import validate_file, validate_text
from tests.conftest import REPO_ROOT
from tests.loopback import json_server

REFERENCE = REPO_ROOT / "runs" / "phi4-ultrachat.yaml"
DOCUMENTED = json.loads((REPO_ROOT / "tests/contracts/retail-prices/vm_prices_nc24ads_eastus.json").read_text())["body"]


DEPLOY_SKU = "instance_type: Standard_NC24ads_A100_v4\n  instance_count"


def deploy_sku(sku: str) -> dict[str, str]:
    return {DEPLOY_SKU: f"instance_type: {sku}\n  instance_count"}


def reference(**replace: str):
    text = REFERENCE.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    result = validate_text(text, "runs/phi4-ultrachat.yaml")
    assert result.ok, result.findings
    return result


def policy(**budget: Any) -> Policy:
    return Policy.model_validate({"budget": budget})


# -- prices ----------------------------------------------------------------------------------------
def test_the_committed_snapshot_is_dated_and_holds_the_reference_prices() -> None:
    snap = committed_snapshot()
    price = snap.hourly("EastUS", "standard_nc24ads_a100_v4")
    assert price == Price("Standard_NC24ads_A100_v4", "eastus", 3.673, snap.as_of, "snapshot")
    assert date.fromisoformat(snap.as_of) and snap.hourly("westeurope", "Standard_NC24ads_A100_v4") is None


def test_a_broken_snapshot_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("as_of: 2026-01-01\nregions: {eastus: {Standard_X: cheap}}\n")
    with pytest.raises(ValueError, match="regions.eastus must map VM sizes"):
        read_snapshot(bad)


def test_the_live_api_is_asked_with_an_odata_filter_and_its_pay_as_you_go_linux_row_wins(tmp_path: Path) -> None:
    from gitops.backends.azureml.retail_prices import SOURCE, RetailPrices

    asked: list[dict[str, list[str]]] = []

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        asked.append(parse_qs(urlsplit(path).query))
        return DOCUMENTED

    with json_server(answer) as url:
        live = RetailPrices(f"{url}/api/retail/prices", cache=tmp_path / "prices.json", today=lambda: date(2026, 11, 25))
        price = live.hourly("eastus", "Standard_NC24ads_A100_v4")
        again = RetailPrices(f"{url}/api/retail/prices", cache=tmp_path / "prices.json", today=lambda: date(2026, 11, 25))
        assert again.hourly("eastus", "Standard_NC24ads_A100_v4") == price  # from the day's cache: no second request
    assert price == Price("Standard_NC24ads_A100_v4", "eastus", 3.673, "2026-11-25", SOURCE)
    assert asked == [{"$filter": ["armRegionName eq 'eastus' and armSkuName eq 'Standard_NC24ads_A100_v4' and priceType eq 'Consumption'"]}]


def test_pages_are_followed_on_the_api_host_only(tmp_path: Path) -> None:
    from gitops.backends.azureml.retail_prices import RetailPrices

    calls: list[str] = []
    first = {**DOCUMENTED, "Items": [], "NextPageLink": None}

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        calls.append(path)
        return DOCUMENTED if "skip" in path else first  # the answer is on the second page

    with json_server(answer) as url:
        first["NextPageLink"] = f"{url}/api/retail/prices?$skip=100"
        assert RetailPrices(f"{url}/api/retail/prices").hourly("eastus", "Standard_NC24ads_A100_v4") is not None
        first["NextPageLink"] = "https://elsewhere.example/api/retail/prices?$skip=100"
        assert RetailPrices(f"{url}/api/retail/prices").hourly("eastus", "Standard_NC24ads_A100_v4") is None
    assert len(calls) == 3


def test_an_unreachable_api_falls_back_to_the_snapshot_and_says_so() -> None:
    import socket

    from gitops.backends.azureml.retail_prices import RetailPrices

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    live = RetailPrices(f"http://127.0.0.1:{port}/api/retail/prices", timeout_s=2)
    with pytest.raises(TransientBackendError, match="did not answer"):
        live.hourly("eastus", "Standard_NC24ads_A100_v4")
    book = PriceBook([live, committed_snapshot()])
    price = book.hourly("eastus", "Standard_NC24ads_A100_v4")
    assert price is not None and price.source == "snapshot" and book.notes and "did not answer" in book.notes[0]
    assert book.hourly("eastus", "Standard_NC48ads_A100_v4") is not None and len(book.notes) == 1  # asked no more


def test_refresh_rereads_every_region_and_size_and_dates_the_whole_table() -> None:
    class Live:
        def hourly(self, region: str, sku: str) -> Price | None:
            return Price(sku, region, 1.0, "2026-11-25", "api") if sku != "Standard_NC4as_T4_v3" else None

    old = Snapshot("2026-07-01", "catalogue", {"eastus": {"Standard_NC24ads_A100_v4": 3.673, "Standard_NC4as_T4_v3": 0.526}})
    new = refreshed(old, Live(), date(2026, 11, 25), regions=["WestEurope"])
    assert new.as_of == "2026-11-25" and set(new.regions) == {"eastus", "westeurope"}
    assert new.regions["eastus"] == {"Standard_NC24ads_A100_v4": 1.0}  # the size the API no longer prices is dropped
    assert read_snapshot_text(new.to_yaml()).regions == new.regions


def read_snapshot_text(text: str) -> Snapshot:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.yaml"
        path.write_text(text)
        return read_snapshot(path)


# -- the estimate ----------------------------------------------------------------------------------
def test_a_first_version_is_priced_per_hour_and_serving_is_bounded_by_the_lifecycle() -> None:
    v = reference()
    cost = estimate(v.require(), v.params, Policy(), PriceBook())
    assert cost.training_hourly == pytest.approx(3.673) and cost.training_usd is None
    assert cost.deploy_hourly == pytest.approx(3.673) and cost.deploy_bound_usd == pytest.approx(3.673 * 24 * 7)
    assert cost.training_line().startswith("$3.67/h (Standard_NC24ads_A100_v4 $3.673/h x 1 node); duration unknown")
    assert cost.serving_line() == (
        "$3.67/h (Standard_NC24ads_A100_v4 x 1 instance); at most $617.06 until expire_after 7d; stopped after 24h idle"
    )
    assert cost.prices_from == f"snapshot of {committed_snapshot().as_of} (eastus)"


def test_training_is_estimated_from_the_previous_version_scaled_by_data_and_nodes() -> None:
    before = reference()
    previous = RunRecord(
        run="phi4-ultrachat",
        backend="azureml",
        digest="d",
        job_name="j",
        spec=before.require().model_dump(mode="json"),
        params=before.params,
        report={"duration_s": 7200},
    )
    same = estimate(before.require(), before.params, Policy(), PriceBook(), previous)
    assert same.training_hours == pytest.approx(2.0) and same.training_usd == pytest.approx(2 * 3.673)
    assert same.training_basis == "as long as the previous version"
    bigger = reference(**{"sample_percent: 5": "sample_percent: 20"})
    cost = estimate(bigger.require(), bigger.params, Policy(), PriceBook(), previous)
    assert cost.training_hours == pytest.approx(8.0) and cost.training_basis == "the previous version's time x 4.00"
    other_size = reference(**{"instance_type: Standard_NC24ads_A100_v4\n  nodes": "instance_type: Standard_NC48ads_A100_v4\n  nodes"})
    assert estimate(other_size.require(), other_size.params, Policy(), PriceBook(), previous).training_hours is None


def test_kept_endpoints_have_no_bound_and_the_local_backend_costs_nothing(local_spec_text) -> None:
    kept = reference(**{"keep: false": "keep: true"})
    cost = estimate(kept.require(), kept.params, Policy(), PriceBook())
    assert cost.deploy_bound_usd is None and "kept: no bound" in cost.serving_line()
    local = validate_text(local_spec_text("tiny"), "runs/tiny.yaml")
    free = estimate(local.require(), local.params, Policy(budget={"max_hourly_usd": 0.01}), PriceBook())
    assert not free.billed and free.training_line().startswith("no cloud cost")
    assert budget_findings(free, Policy.model_validate({"budget": {"max_hourly_usd": 0.01}})) == []


# -- budget caps -----------------------------------------------------------------------------------
def test_an_hourly_cap_refuses_the_expensive_side_and_names_the_field() -> None:
    v = reference(**deploy_sku("Standard_NC48ads_A100_v4"))
    found = budget_findings(estimate(v.require(), v.params, policy(max_hourly_usd=5), PriceBook()), policy(max_hourly_usd=5))
    assert [(f.path, f.is_error) for f in found] == [("deploy.instance_type", True)]
    assert found[0].message == "serving costs $7.35/h, over budget.max_hourly_usd $5.00"


def test_a_training_cap_is_checked_against_the_estimate_or_said_to_wait_for_one() -> None:
    v = reference()
    cap = policy(max_training_usd=5)
    (first,) = budget_findings(estimate(v.require(), v.params, cap, PriceBook()), cap)
    assert not first.is_error and "checked once a version has trained" in first.message
    previous = RunRecord(
        run="phi4-ultrachat",
        backend="azureml",
        digest="d",
        job_name="j",
        spec=v.require().model_dump(mode="json"),
        params=v.params,
        report={"duration_s": 3 * 3600},
    )
    (over,) = budget_findings(estimate(v.require(), v.params, cap, PriceBook(), previous), cap)
    assert over.is_error and over.message.startswith("training is estimated at ~$11.02, over budget.max_training_usd $5.00")


def test_a_cap_that_cannot_be_checked_is_an_error_never_a_pass() -> None:
    v = reference(**deploy_sku("Standard_NC80adis_H100_v5"))
    cap = policy(max_hourly_usd=100)
    found = budget_findings(estimate(v.require(), v.params, cap, PriceBook()), cap)
    assert [(f.path, f.is_error) for f in found] == [("deploy.instance_type", True)]
    assert "no price for Standard_NC80adis_H100_v5 in eastus" in found[0].message
    no_size = validate_file(REPO_ROOT / "runs" / "phi4-ultrachat.yaml").require()
    clustered = no_size.model_copy(update={"compute": no_size.compute.model_copy(update={"instance_type": None})})
    (unsized,) = budget_findings(estimate(clustered, v.params, cap, PriceBook()), cap)
    assert unsized.is_error and "cannot be checked without the training size" in unsized.message


def test_a_budget_section_with_a_typo_or_a_negative_cap_is_refused() -> None:
    from gitops.spec.policy import parse_policy

    for text in ("budget: {max_hourly_usd: -1}\n", "budget: {max_hourly: 5}\n"):
        parsed, findings = parse_policy(text)
        assert parsed is None and any(f.path.startswith("budget.") for f in findings), (text, findings)


def test_a_long_lived_book_asks_a_failed_source_again_after_a_while() -> None:
    now = [0.0]
    calls: list[str] = []

    class Flaky:
        def hourly(self, region: str, sku: str) -> Price | None:
            calls.append(sku)
            if len(calls) == 1:
                raise TransientBackendError("the Azure Retail Prices API did not answer: timeout")
            return Price(sku, region, 1.0, "2026-11-25", "Azure Retail Prices API")

    book = PriceBook([Flaky(), committed_snapshot()], clock=lambda: now[0])
    assert book.hourly("eastus", "Standard_NC24ads_A100_v4").source == "snapshot"  # type: ignore[union-attr]
    now[0] = 60
    assert book.hourly("eastus", "Standard_NC48ads_A100_v4").source == "snapshot" and len(calls) == 1  # type: ignore[union-attr]
    now[0] = 60 + PriceBook.RETRY_AFTER_S
    assert book.hourly("eastus", "Standard_NC24ads_A100_v4").source == "Azure Retail Prices API"  # type: ignore[union-attr]
