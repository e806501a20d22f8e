"""Cost so far and expected, from a record's history: the hours each version trained and each deployment existed,
priced as the plan prices them (gitops/cost/spend.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.cost.prices import committed_snapshot
from gitops.cost.spend import hours, run_estimate, spend
from gitops.ledger.model import HistoryEntry, RunRecord
from gitops.spec.validate import validate_text
from tests.conftest import REFERENCE_ON_ASSETS

H = 3600.0
A100 = 3.673  # the committed snapshot's Standard_NC24ads_A100_v4 in eastus, per hour


def record(*steps: tuple[float, str], **fields: Any) -> RunRecord:
    spec = validate_text(REFERENCE_ON_ASSETS, "runs/phi4-ultrachat.yaml")
    assert spec.ok and spec.spec is not None
    data = {
        "run": "phi4-ultrachat",
        "backend": "azureml",
        "job_name": "job-1",
        "digest": "d",
        "spec": spec.spec.model_dump(mode="json"),
        "params": dict(spec.params),
        "history": [HistoryEntry(at=at * H, status=status) for at, status in steps],
        "status": steps[-1][1],
        **fields,
    }
    return RunRecord.model_validate(data)


def test_a_version_trained_then_served_bills_its_job_hours_and_one_instance_while_live() -> None:
    r = record((0, "submitted"), (2, "running"), (5, "deploying"), (5.5, "live"), deployment="v1")
    h = hours(r, 10 * H)
    assert h.training == pytest.approx(5) and h.training_now == 0
    assert h.deployed == pytest.approx(5)  # 5.0 -> 10.0: the candidate from its creation, then serving
    s = spend(r, run_estimate(r, committed_snapshot()), 10 * H)
    assert s.billed and s.instance_hours == pytest.approx(5)
    assert s.training_usd == pytest.approx(5 * A100) and s.serving_usd == pytest.approx(5 * A100)
    assert s.so_far_usd == pytest.approx(10 * A100)
    # expected: what is spent, plus serving until expire_after (7d) from the last deployment (at 5 h)
    assert s.expected_usd == pytest.approx(10 * A100 + (7 * 24 - 5) * A100)
    assert "expire_after 7d" in s.expected_basis and "snapshot" in s.prices_from


def test_a_candidate_beside_the_serving_deployment_bills_twice_until_it_replaces_it() -> None:
    r = record(
        (0, "submitted"),
        (1, "deploying"),
        (2, "live"),  # v1 serves from 1 h
        (10, "submitted"),
        (11, "deploying"),
        (13, "live"),  # v2 trained 1 h, beside v1 for 2 h
        deployment="v2",
    )
    h = hours(r, 20 * H)
    assert h.training == pytest.approx(2)
    assert h.deployed == pytest.approx((20 - 1) + (13 - 11))


def test_a_held_candidate_bills_until_it_is_rejected_and_retirement_stops_everything() -> None:
    r = record(
        (0, "submitted"),
        (1, "deploying"),
        (2, "live"),
        (4, "submitted"),
        (5, "deploying"),
        (6, "held"),
        (8, "rolling_back"),
        (9, "rejected"),
        (12, "retired"),
    )
    h = hours(r, 30 * H)
    assert h.deployed == pytest.approx((12 - 1) + (9 - 5))  # v1 until retired; the candidate 5 -> 9


def test_a_training_in_progress_is_expected_to_cost_the_rest_of_its_estimate() -> None:
    before = {"job_name": "job-0", "duration_s": 4 * H, "tokens_seen": 10}
    r = record((0, "submitted"), (1, "running"), previous_report=before, previous_job="job-0")
    s = spend(r, run_estimate(r, committed_snapshot()), 3 * H)
    assert hours(r, 3 * H).training_now == pytest.approx(3)
    assert s.training_usd == pytest.approx(3 * A100) and s.serving_usd == 0
    assert s.expected_usd == pytest.approx(4 * A100)  # 3 h spent + the 1 h left of the previous version's 4 h
    assert "the rest of the training" in s.expected_basis


def test_an_unknown_price_is_unknown_never_zero() -> None:
    r = record((0, "submitted"), (1, "deploying"), (2, "live"), deployment="v1")
    cost = run_estimate(r, committed_snapshot())
    unpriced = spend(r, cost.__class__(**{**cost.__dict__, "deploy_price": None}), 5 * H)
    assert unpriced.serving_usd is None and unpriced.so_far_usd is None and unpriced.expected_usd is None
    assert unpriced.instance_hours == pytest.approx(4)


def test_a_kept_run_has_no_expected_total_but_its_monthly_serving() -> None:
    r = record((0, "submitted"), (1, "deploying"), (2, "live"), deployment="v1")
    r = r.model_copy(update={"spec": {**r.spec, "lifecycle": {**r.spec["lifecycle"], "keep": True}}})
    s = spend(r, run_estimate(r, committed_snapshot()), 5 * H)
    assert s.expected_usd is None and "per 30 days" in s.expected_basis


def test_the_local_backend_costs_nothing_but_its_hours_are_counted() -> None:
    r = record((0, "submitted"), (1, "deploying"), (2, "live"), deployment="v1")
    local = r.model_copy(update={"spec": {**r.spec, "backend": "local"}, "backend": "local"})
    cost = run_estimate(local, committed_snapshot())
    s = spend(local, cost, 5 * H) if not cost.billed else pytest.fail("the local backend is billed?")
    assert not s.billed and s.so_far_usd == 0 and s.instance_hours == pytest.approx(4)


def test_idle_hours_count_from_the_last_request_or_from_going_live() -> None:
    from gitops.cost.spend import idle_hours

    r = record((0, "submitted"), (1, "deploying"), (2, "live"), deployment="v1", endpoint="ep")
    assert idle_hours(r, None, 10 * H) == pytest.approx(8)  # never called since it went live
    assert idle_hours(r, 7 * H, 10 * H) == pytest.approx(3)
    assert idle_hours(r, 1 * H, 10 * H) == pytest.approx(8)  # a request before this version went live is not its
    assert idle_hours(r.model_copy(update={"deployment": None}), None, 10 * H) is None  # nothing serves


def test_one_line_says_what_was_spent_on_what_and_what_is_expected() -> None:
    r = record((0, "submitted"), (1, "deploying"), (2, "live"), deployment="v1")
    line = spend(r, run_estimate(r, committed_snapshot()), 5 * H).line()
    assert line.startswith(f"${5 * A100:,.2f} so far (1.0 h of training, 4.0 instance-hours); expected $")
    local = r.model_copy(update={"spec": {**r.spec, "backend": "local"}, "backend": "local"})
    assert spend(local, run_estimate(local, committed_snapshot()), 5 * H).line() == (
        "no cloud cost (this machine): 1.0 h of training, 4.0 instance-hours"
    )
