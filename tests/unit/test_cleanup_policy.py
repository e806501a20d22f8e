"""The cleanup policy on its own: every rule, and the safety rules first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gitops.cleanup.policy import DeploymentFacts, EndpointFacts, Rules, decide, judge

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RULES = Rules(
    idle_after=timedelta(hours=24),
    expire_after=timedelta(days=7),
    stuck_grace=timedelta(hours=2),
    prune_orphans=False,
    max_deletions_per_run=2,
)
REPO = "acme/models"
MANAGED = {"managed_by": "finetune-gitops", "gitops_repo": REPO, "gitops_run": "r"}


def facts(
    name: str = "ep",
    *,
    deployed_h: float = 1,
    last_request_h: float | None = 0.5,
    known: bool = True,
    tags: dict[str, str] | None = None,
    **kw: object,
) -> EndpointFacts:
    deployed = NOW - timedelta(hours=deployed_h)
    base = dict(
        name=name,
        tags=MANAGED if tags is None else tags,
        created_at=deployed,
        deployments=(DeploymentFacts("blue", 100, deployed),),
        usage_known=known,
        repo=REPO,
        last_request_at=None if last_request_h is None else NOW - timedelta(hours=last_request_h),
        run="r",
    )
    base.update(kw)
    return EndpointFacts(**base)  # type: ignore[arg-type]


def test_active_endpoint_is_kept() -> None:
    assert judge(facts(), RULES, NOW).action == "keep"


def test_idle_endpoint_is_deleted() -> None:
    v = judge(facts(deployed_h=48, last_request_h=30), RULES, NOW)
    assert v.action == "delete" and v.reasons == ("idle: no requests for 1.2d (idle_after 1d)",)


def test_never_called_counts_from_the_last_deployment() -> None:
    assert judge(facts(deployed_h=5, last_request_h=None), RULES, NOW).action == "keep"
    assert judge(facts(deployed_h=30, last_request_h=None), RULES, NOW).action == "delete"


def test_unknown_usage_is_active_never_deleted() -> None:
    v = judge(facts(deployed_h=48, last_request_h=None, known=False), RULES, NOW)
    assert v.action == "keep" and v.reasons == ("usage unknown: counted as active",)


def test_expired_even_when_busy() -> None:
    v = judge(facts(deployed_h=8 * 24, last_request_h=0.1), RULES, NOW)
    assert v.action == "delete" and v.reasons[0].startswith("expired: last deployed 8d ago")


def test_spec_lifetimes_override_the_repo_defaults() -> None:
    assert judge(facts(deployed_h=3, last_request_h=2, idle_after=timedelta(hours=1)), RULES, NOW).action == "delete"
    assert judge(facts(deployed_h=8 * 24, last_request_h=0.1, expire_after=timedelta(days=30)), RULES, NOW).action == "keep"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"keep": True}, "kept by lifecycle.keep"),
        ({"tags": {**MANAGED, "gitops_keep": "true"}}, "kept by the gitops_keep tag"),
    ],
)
def test_keep_protects(kw: dict, reason: str) -> None:
    v = judge(facts(deployed_h=30 * 24, last_request_h=None, **kw), RULES, NOW)
    assert v.action == "keep" and v.reasons == (reason,)


def test_unmanaged_is_never_touched() -> None:
    v = judge(facts(deployed_h=30 * 24, tags={"team": "other"}), RULES, NOW)
    assert v.action == "skip" and "never touched" in v.reasons[0]


@pytest.mark.parametrize(
    ("tags", "held", "action", "reason"),
    [
        ({**MANAGED, "gitops_repo": "globex/llm"}, False, "skip", "managed by repository globex/llm, not this one (acme/models)"),
        ({**MANAGED, "gitops_repo": "ACME/Models"}, False, "delete", "expired"),  # GitHub names ignore case
        ({**MANAGED, "gitops_repo": ""}, False, "skip", "managed by repository (none named)"),
        ({"managed_by": "finetune-gitops", "gitops_run": "r"}, False, "skip", "names no repository (gitops_repo is missing)"),
        ({"managed_by": "finetune-gitops", "gitops_run": "r"}, True, "delete", "expired"),  # from before the tag: the ledger's
        ({"managed_by": "finetune-gitops", "gitops_keep": "true"}, False, "skip", "names no repository"),  # keep is no claim
    ],
)
def test_only_this_repositorys_endpoints_are_touched(tags: dict[str, str], held: bool, action: str, reason: str) -> None:
    v = judge(facts(deployed_h=30 * 24, last_request_h=None, tags=tags, held=held), RULES, NOW)
    assert v.action == action and v.reasons[0].startswith(reason), v


def test_deploy_in_progress_is_skipped() -> None:
    v = judge(facts(deployed_h=30 * 24, run_status="deploying"), RULES, NOW)
    assert v.action == "skip" and v.reasons == ("run r is mid-deploy",)


@pytest.mark.parametrize(
    "kw",
    [
        {"run_status": "rolling_back"},
        {"run_status": "completed", "rollout_step": "check_job"},
        {"run_status": "deploying", "rollout_step": "await_deployment"},
    ],
)
def test_a_rollout_in_progress_is_never_cleaned_up(kw: dict) -> None:
    v = judge(facts(deployed_h=30 * 24, **kw), RULES, NOW)
    assert v.action == "skip" and v.reasons[0].startswith("run r is mid-deploy")


@pytest.mark.parametrize(
    ("prune", "on_main", "action"), [(False, False, "keep"), (True, False, "delete"), (True, True, "keep"), (True, None, "keep")]
)
def test_orphans_only_with_prune_on(prune: bool, on_main: bool | None, action: str) -> None:
    rules = Rules(RULES.idle_after, RULES.expire_after, RULES.stuck_grace, prune_orphans=prune)
    assert judge(facts(spec_on_main=on_main), rules, NOW).action == action


def test_stuck_zero_traffic_deployments_after_the_grace() -> None:
    old = NOW - timedelta(hours=3)
    deployments = (
        DeploymentFacts("blue", 100, NOW - timedelta(hours=5)),
        DeploymentFacts("green", 0, old),
        DeploymentFacts("fresh", 0, NOW - timedelta(minutes=10)),
    )
    v = judge(facts(deployments=deployments), RULES, NOW)
    assert v.action == "delete_deployments" and v.deployments == ("green",)


def test_deletion_cap_defers_the_rest_oldest_first() -> None:
    endpoints = [facts(f"ep{i}", deployed_h=48 + i, last_request_h=40) for i in range(4)]
    verdicts = {v.endpoint: v for v in decide(endpoints, RULES, NOW)}
    assert {n for n, v in verdicts.items() if v.action == "delete"} == {"ep3", "ep2"}
    assert all("deletion cap of 2 per run reached" in verdicts[n].reasons[-1] for n in ("ep0", "ep1"))
    assert [v.endpoint for v in decide(endpoints, RULES, NOW)] == ["ep0", "ep1", "ep2", "ep3"]  # input order kept


def test_a_deployment_kept_for_rollback_is_not_stuck_until_its_time_runs_out() -> None:
    deployments = (DeploymentFacts("blue", 100, NOW - timedelta(hours=3)), DeploymentFacts("green", 0, NOW - timedelta(hours=4)))
    kept = facts(deployments=deployments, kept_deployment="green", kept_until=NOW + timedelta(hours=3))
    assert judge(kept, RULES, NOW).action == "keep"
    ran_out = facts(deployments=deployments, kept_deployment="green", kept_until=NOW - timedelta(minutes=1))
    v = judge(ran_out, RULES, NOW)
    assert v.action == "delete_deployments" and v.deployments == ("green",)
