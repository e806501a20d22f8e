"""#27: the approval path through the Function. ``GET /api/promotions`` lists what is due (for promote.yml);
``POST /api/runs/{name}/release/{env}`` lets one in, only from a job bound to that GitHub Environment (the token's
``environment`` claim, shaped as GitHub documents it: tests/contracts/github-docs/oidc_environment_claims.md). A
request names the version it was approved for: a superseded one is refused, one released already changes nothing.
Promoting a held candidate over a later environment's gate needs that environment's job too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitops.ledger.model import HistoryEntry, Promotion, PromotionState, RunRecord
from gitops.spec.policy import parse_policy
from tests.functions.conftest import REPO

POLICY = """
registry: {name: acme-registry}
environments:
  - name: dev
    workspace: {subscription: 00000000-0000-0000-0000-000000000000, resource_group: rg-dev, name: ws-dev}
  - name: prod
    workspace: {subscription: 00000000-0000-0000-0000-000000000000, resource_group: rg-prod, name: ws-prod}
"""
OLD, NEW = "gitops-phi4-000000000001", "gitops-phi4-000000000002"


def _error(answer: Any) -> str:
    return str(json.loads(answer.get_body())["error"]["message"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _in(environment: str | None, token: Any, **more: Any) -> dict[str, str]:
    """A promote.yml job's token: bound to ``environment`` (None: a job bound to none), on its schedule, from main."""
    sub = f"repo:{REPO}:environment:{environment}" if environment else f"repo:{REPO}:ref:refs/heads/main"
    return _bearer(token(environment=environment, sub=sub, event_name="schedule", run_id="4242", **more))


@pytest.fixture
def due(app_services: Any, azure_spec_text: Any) -> RunRecord:
    """A run live in dev whose newest version's promotion to prod is due, an older one's superseded."""
    from gitops.spec.validate import validate_text

    policy, findings = parse_policy(POLICY, "gitops.yaml")
    assert policy is not None, findings
    spec = validate_text(azure_spec_text("phi4"), "runs/phi4.yaml", policy).require()

    def promotion(job: str, version: str, state: PromotionState) -> Promotion:
        return Promotion(
            to="prod", job_name=job, model="phi4-chat-1a2b3c", version=version, digest=f"sha256:{version * 64}", due_at=1.0, state=state
        )

    record = RunRecord(
        run="phi4",
        backend="azureml",
        digest="d" * 64,
        job_name=NEW,
        status="live",
        spec=spec.model_dump(mode="json"),
        policy=policy.model_dump(mode="json"),
        history=[HistoryEntry(at=1.0, status="live", note="")],
        promotions=[promotion(OLD, "1", PromotionState.SUPERSEDED), promotion(NEW, "2", PromotionState.DUE)],
    )
    app_services.lifecycle.ledger.put(record, None)
    return record


def test_the_due_promotions_are_listed_for_the_workflow(call: Any, token: Any, due: RunRecord) -> None:
    answer = call("list_promotions", None, _in(None, token), method="GET")
    assert answer.status_code == 200, answer.get_body()
    (listed,) = json.loads(answer.get_body())["promotions"]
    assert listed == {
        "run": "phi4",
        "to": "prod",
        "job": NEW,
        "model": "phi4-chat-1a2b3c",
        "version": "2",
        "digest": "sha256:" + "2" * 64,
        "due_at": 1.0,
        "approval": True,
    }


@pytest.mark.parametrize(
    ("environment", "refusal"),
    [(None, "the token's job ran in none"), ("dev", "not dev"), ("staging", "not staging")],
)
def test_a_release_needs_a_job_of_the_target_environment(
    call: Any, token: Any, due: RunRecord, app_services: Any, environment: str | None, refusal: str
) -> None:
    route = {"name": "phi4", "env": "prod"}
    answer = call("release", {"job": NEW}, _in(environment, token), route_params=route)
    assert answer.status_code == 403 and refusal in _error(answer)
    # Nothing was released: the promotion is still due, and no record in prod exists.
    assert app_services.lifecycle.ledger.get("phi4.prod") is None
    assert [p.state for p in app_services.lifecycle.ledger.get("phi4")[0].promotions][-1] is PromotionState.DUE


def test_a_superseded_or_unknown_version_is_refused_and_a_request_must_name_one(call: Any, token: Any, due: RunRecord) -> None:
    route = {"name": "phi4", "env": "prod"}
    stale = call("release", {"job": OLD, "reason": "approved last week"}, _in("prod", token), route_params=route)
    assert stale.status_code == 409 and "superseded by a newer version" in _error(stale)
    unknown = call("release", {"job": "gitops-phi4-nope"}, _in("prod", token), route_params=route)
    assert unknown.status_code == 409 and "no promotion of job gitops-phi4-nope's model to prod" in _error(unknown)
    nameless = call("release", {"reason": "x"}, _in("prod", token), route_params=route)
    assert nameless.status_code == 400 and "'job' must name the version approved" in _error(nameless)


def test_promoting_over_a_later_environments_gate_needs_that_environments_job(call: Any, token: Any, due: RunRecord) -> None:
    route = {"name": "phi4.prod"}
    by_hand = _bearer(token(event_name="workflow_dispatch"))  # a workflow run on main, bound to no environment
    refused = call("promote", {"reason": "looks fine"}, by_hand, route_params=route)
    assert refused.status_code == 403 and "GitHub Environment prod" in _error(refused)
    # The prod job's token passes the check; there is no held candidate in prod to promote.
    dispatched = _bearer(token(environment="prod", sub=f"repo:{REPO}:environment:prod", event_name="workflow_dispatch"))
    answer = call("promote", {"reason": "looks fine"}, dispatched, route_params=route)
    assert answer.status_code == 404, answer.get_body()


def test_the_runs_listed_for_reports_are_where_each_run_trains(call: Any, token: Any, due: RunRecord, app_services: Any) -> None:
    """A later environment's state is read by its own name, never listed as a second run of the same pull request
    (the report workflow would post one run's two reports over each other)."""
    prod = due.model_copy(update={"environment": "prod", "promotions": [], "pr": "7"})
    app_services.lifecycle.ledger.put(prod, None)
    listed = json.loads(call("list_runs", None, _bearer(token()), method="GET").get_body())["runs"]
    assert [r["run"] for r in listed] == ["phi4"]
    one = call("get_run", None, _bearer(token()), method="GET", route_params={"name": "phi4.prod"})
    assert one.status_code == 200 and json.loads(one.get_body())["environment"] == "prod"
