"""#27, what users declare: environments in gitops.yaml (each with its workspace, its rules and what a promotion into
it needs), one registry between them, and a spec that says which environments it goes to and what each serves."""

from __future__ import annotations

import pytest

from gitops.spec.policy import Policy, parse_policy, run_environments, serving_in
from gitops.spec.validate import validate_text
from tests.conftest import REPO_ROOT

REFERENCE = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text(encoding="utf-8")
FILE = "runs/phi4-ultrachat.yaml"
POLICY = """\
registry: {name: acme-models}
environments:
  - name: dev
    workspace: {subscription: 00000000-0000-0000-0000-000000000000, resource_group: ml, name: ws-dev}
  - name: prod
    workspace: {subscription: 00000000-0000-0000-0000-000000000000, resource_group: ml, name: ws-prod}
    policy:
      compute: {allowed_deploy_instance_types: [Standard_NC24ads_A100_v4, Standard_NC48ads_A100_v4]}
      caps: {max_instance_count: 4}
    promotion: {soak: 48h}
"""


def _policy(text: str = POLICY) -> Policy:
    policy, findings = parse_policy(text, "gitops.yaml")
    assert policy is not None, [f.format() for f in findings]
    return policy


def _errors(spec_text: str, policy: Policy) -> list[str]:
    validated = validate_text(spec_text, FILE, policy)
    return [f.format() for f in validated.findings if f.is_error]


def _with(serving: str = "", top: str = "") -> str:
    """The reference spec with ``serving`` lines under deploy: and ``top`` lines at the end."""
    return REFERENCE.replace("\ndeploy:\n", "\ndeploy:\n" + serving) + top


def _line(text: str, starts: str) -> int:
    return next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith(starts))


def test_environments_are_declared_in_order_with_their_rules_and_what_promotion_needs() -> None:
    policy = _policy()
    assert [e.name for e in policy.environments] == ["dev", "prod"] and policy.registry is not None
    prod = policy.environment("prod")
    assert prod.promotion.soak == "48h" and prod.promotion.approval and prod.promotion.gate
    assert policy.in_environment("prod").caps.max_instance_count == 4 and policy.in_environment("dev").caps.max_instance_count == 2
    assert Policy().environments == [] and Policy().registry is None  # an absent file: one workspace, as today


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (POLICY.replace("registry: {name: acme-models}\n", ""), "gitops.yaml:1: registry: two or more environments need a registry"),
        (POLICY.replace("name: prod", "name: dev"), "environments: environment dev is listed twice"),
        (
            POLICY.replace("name: ws-dev}", "name: ws-dev}\n    promotion: {soak: 1h}"),
            "environments: dev is the first environment, where a merge trains and rolls out: nothing is promoted into it",
        ),
        (
            POLICY.replace("resource_group: ml, name: ws-prod}", "resource_group: ml, name: ws-prod, directory: x}"),
            "gitops.yaml:6: environments[1].workspace: is either an Azure ML workspace",
        ),
        (POLICY.replace("{name: acme-models}", "{}"), "registry: is an Azure ML registry (name) or a local registry directory"),
        (POLICY.replace("soak: 48h", "soak: soon"), "gitops.yaml:10: environments[1].promotion.soak:"),
    ],
)
def test_a_broken_environment_declaration_is_an_error_on_its_line(text: str, expected: str) -> None:
    policy, findings = parse_policy(text, "gitops.yaml")
    assert policy is None  # never the defaults in its place
    assert any(expected in f.format() for f in findings), [f.format() for f in findings]


def test_a_spec_goes_to_every_environment_by_default_and_serves_each_as_it_says() -> None:
    policy = _policy()
    text = _with("  environments:\n    prod: {instance_type: Standard_NC48ads_A100_v4, instance_count: 2}\n")
    validated = validate_text(text, FILE, policy)
    assert validated.ok, [f.format() for f in validated.findings]
    spec = validated.require()
    assert run_environments(spec, policy) == ["dev", "prod"]
    dev, prod = serving_in(spec, "dev"), serving_in(spec, "prod")
    assert (dev.instance_type, dev.instance_count) == ("Standard_NC24ads_A100_v4", 1)
    assert (prod.instance_type, prod.instance_count) == ("Standard_NC48ads_A100_v4", 2)


def test_what_an_environment_serves_is_a_setting_of_the_first_not_a_new_deployment_or_training() -> None:
    policy = _policy()
    before = validate_text(REFERENCE, FILE, policy)
    after = validate_text(REFERENCE + "environments: [dev, prod]\n", FILE, policy)
    overridden = validate_text(_with("  environments:\n    prod: {instance_count: 3}\n"), FILE, policy)
    assert before.digests is not None and after.digests is not None and overridden.digests is not None
    assert before.digests.change_to(after.digests) == "settings"
    assert before.digests.change_to(overridden.digests) == "settings"
    assert validate_text(REFERENCE, FILE).digests == before.digests  # a spec that says nothing keeps its digest


@pytest.mark.parametrize(
    ("text", "path", "on", "message"),
    [
        (_with(top="environments: [prod]\n"), "environments[0]", "environments:", "the first environment, dev; 'prod' is not it"),
        (_with(top="environments: [dev, staging]\n"), "environments[1]", "environments:", "'staging' is not declared in gitops.yaml"),
        (_with(top="environments: [dev, dev]\n"), "environments", "environments:", "names an environment twice"),
        (
            _with("  environments:\n    prod: {instance_count: 2}\n", "environments: [dev]\n"),
            "deploy.environments.prod",
            "prod:",
            "the run does not go to environment 'prod'",
        ),
        (
            _with("  environments:\n    dev: {instance_count: 2}\n"),
            "deploy.environments.dev",
            "dev:",
            "dev is the first environment: it serves the spec's own deploy settings",
        ),
        (
            _with("  environments:\n    prod: {instance_type: Standard_NC96ads_A100_v4}\n"),
            "deploy.environments.prod.instance_type",
            "prod:",
            "SKU 'Standard_NC96ads_A100_v4' is not allowed for serving in prod",
        ),
        (
            _with("  environments:\n    prod:\n      instance_count: 5\n"),
            "deploy.environments.prod.instance_count",
            "instance_count: 5",
            "5 instances exceeds the cap of 4 in prod",
        ),
    ],
)
def test_a_spec_that_does_not_fit_the_environments_is_an_error_on_its_line(text: str, path: str, on: str, message: str) -> None:
    errors = _errors(text, _policy())
    assert any(e.startswith(f"{FILE}:{_line(text, on)}: {path}: ") and message in e for e in errors), errors


def test_a_local_run_cannot_go_to_azure_workspaces_and_naming_environments_needs_them_declared() -> None:
    local = (REPO_ROOT / "runs" / "local-tiny.yaml").read_text(encoding="utf-8")
    errors = _errors(local, _policy())
    assert any("environment dev is an Azure ML workspace: it cannot run the local backend" in e for e in errors), errors
    assert any("the registry of gitops.yaml is an Azure ML registry" in e for e in errors), errors
    errors = _errors(_with(top="environments: [dev]\n"), Policy())
    assert any(": environments: gitops.yaml declares no environments" in e for e in errors), errors


def test_the_plan_shows_the_path_a_merge_starts_and_what_serving_costs_in_each_environment(git_repo, azure_spec_text) -> None:
    """The plan comment with environments, byte for byte (regenerate with GITOPS_UPDATE_GOLDEN=1): the path (dev now;
    prod after its soak, gate and approval), the name the registry carries the model under, and each environment's
    serving cost at its own region's prices."""
    from gitops.review.plan import build_plan
    from gitops.review.plan_render import render_markdown, render_text
    from tests.conftest import assert_golden

    git_repo.write("gitops.yaml", POLICY)
    base = git_repo.commit("base")
    prod = "  environments:\n    prod: {instance_type: Standard_NC48ads_A100_v4, instance_count: 2}\n"
    dev = "  instance_type: Standard_NC24ads_A100_v4\n"
    text = azure_spec_text("serving").replace("  instance_type: Standard_NC48ads_A100_v4\n", dev + prod)
    git_repo.write("runs/serving.yaml", text)
    git_repo.commit("head")
    plan = build_plan(git_repo.root, base)
    assert plan.ok, render_text(plan)
    (spec,) = plan.specs
    assert spec.derived is not None and spec.derived.registry_model is not None
    assert spec.derived.registry_model.startswith("serving-") and spec.cost is not None
    (later,) = spec.cost.later
    assert (later.environment, later.region, later.deploy_sku, later.instances) == ("prod", "eastus", "Standard_NC48ads_A100_v4", 2)
    assert_golden("plan-comment-environments.md", render_markdown(plan).replace(plan.base[:10], "BASE").replace(plan.head[:10], "HEAD"))
    printed = render_text(plan)
    assert "  path       dev: trains and rolls out on merge → prod: after 48h live in dev, the gate passed there" in printed
    assert "  serving in prod: $" in printed


def test_each_environment_s_budget_caps_what_serving_there_costs() -> None:
    from gitops.cost.estimate import assess
    from gitops.cost.prices import PriceBook

    policy = _policy(
        POLICY.replace("      caps: {max_instance_count: 4}\n", "      caps: {max_instance_count: 4}\n      budget: {max_hourly_usd: 5}\n")
    )
    text = _with("  environments:\n    prod: {instance_type: Standard_NC48ads_A100_v4, instance_count: 2}\n")
    validated = validate_text(text, FILE, policy)
    cost, found = assess(validated.valid(), policy, PriceBook())
    assert cost.later and cost.later[0].deploy_hourly is not None and cost.later[0].deploy_hourly > 5
    (over,) = found
    assert over.path == "deploy.environments.prod.instance_type" and over.code.value == "budget"
    assert "serving in prod costs $" in over.message and over.line == _line(text, "prod:")
    _, within = assess(validate_text(REFERENCE, FILE, policy).valid(), policy, PriceBook())
    assert within == []  # dev has no cap; prod serves one NC24ads there, under $5/h


def test_each_backend_knows_whether_an_environment_is_its_workspace(azure_fake, azure_backend, tmp_path) -> None:
    from gitops.backends.local.backend import LocalBackend
    from gitops.spec.policy import WorkspaceRef

    ours = WorkspaceRef(subscription=azure_fake.subscription, resource_group=azure_fake.resource_group.upper(), name=azure_fake.workspace)
    assert azure_backend.is_workspace(ours)  # ARM names compare without case
    assert not azure_backend.is_workspace(ours.model_copy(update={"name": "ws-prod"}))
    assert not azure_backend.is_workspace(WorkspaceRef(directory=str(tmp_path)))
    local = LocalBackend(tmp_path / "dev")
    assert local.is_workspace(WorkspaceRef(directory=str(tmp_path / "dev" / ".." / "dev")))
    assert not local.is_workspace(WorkspaceRef(directory=str(tmp_path / "prod")))


def test_a_merge_is_acted_on_only_where_the_first_environment_is(tmp_path, local_spec_text) -> None:
    """Declaring environments never makes a lifecycle set up for another workspace train or deploy there: a local
    shell pointed at prod's directory refuses a run, naming the first environment, before anything starts."""
    from gitops.backends.local.backend import LocalBackend
    from gitops.errors import ConfigurationError
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle

    policy = _policy(
        f"registry: {{directory: {tmp_path / 'registry'}}}\nenvironments:\n"
        f"  - name: dev\n    workspace: {{directory: {tmp_path / 'dev'}}}\n"
        f"  - name: prod\n    workspace: {{directory: {tmp_path / 'prod'}}}\n"
    )
    validated = validate_text(local_spec_text("tiny"), "runs/tiny.yaml", policy)
    assert validated.ok, [f.format() for f in validated.findings]
    prod = Lifecycle(LocalLedger(tmp_path / "prod" / "ledger"), lambda _: LocalBackend(tmp_path / "prod"), name_salt="acme/models")
    with pytest.raises(
        ConfigurationError, match=r"a merge of tiny trains and rolls out in dev \(.*dev\), which is not the workspace"
    ) as refused:
        prod.submit(validated, policy=policy)
    assert "GITOPS_WORKSPACE" in (refused.value.hint or "")
    assert prod.ledger.list() == [] and not (tmp_path / "prod" / "jobs").exists()  # nothing recorded, nothing started


def test_the_first_environment_s_rules_are_the_ones_a_merge_trains_and_rolls_out_under() -> None:
    """Its gate, deadlines and caps (each section of its policy replacing the repository's) apply to the run: to its
    checks, to the plan's gate row, and to the rules and deadlines kept on the run at submit."""
    from gitops.review.derive import derive

    text = POLICY.replace(
        "name: ws-dev}\n",
        "name: ws-dev}\n    policy:\n      gate: {conversations: 8}\n      rollout: {deployment: 90m}\n      caps: {max_nodes: 1}\n",
    )
    policy = _policy(text)
    rules = policy.first_environment()
    assert rules.gate.conversations == 8 and rules.caps.max_nodes == 1 and policy.gate.conversations == 32
    validated = validate_text(REFERENCE, FILE, policy)
    spec = validated.require()
    assert rules.rollout.deadlines(spec, rules.gate.hold_for).deployment == 90 * 60
    assert "decides on training metrics and 8 held-out conversations" in derive(spec, validated.params, "d", policy).gate
    two_nodes = validate_text(REFERENCE.replace("nodes: 1", "nodes: 2"), FILE, policy)
    assert any("2 nodes exceeds the cap of 1" in f.message for f in two_nodes.findings if f.is_error)


def test_a_policy_with_environments_reads_back_as_a_run_keeps_it() -> None:
    """The run keeps the policy it was checked against (cleanup and promotion read it back): its dump, defaults
    written out, is the same policy, never a refusal."""
    policy = _policy()
    assert Policy.model_validate(policy.model_dump(mode="json")) == policy
