"""The HTTP functions through their registration: OIDC auth, limits, validate (online checks against the
fake Azure ML API), submit (idempotent per digest), and the run record."""

from __future__ import annotations

import json
import logging

import pytest

from gitops.errors import UnsupportedError
from gitops.ledger.transitions import Asker, RunStatus
from gitops.lifecycle import job_events
from tests.conftest import REFERENCE_ON_ASSETS, REPO_ROOT

REFERENCE = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text()
POLICY = (REPO_ROOT / "gitops.yaml").read_text()


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def body_of(response) -> dict:
    return json.loads(response.get_body())


@pytest.mark.parametrize(
    ("claims", "status", "needle"),
    [
        ({"__missing__": True}, 401, "OIDC token is required"),
        ({"exp": 1_000_000_000, "iat": 999_999_000, "nbf": 999_999_000}, 401, "expired"),
        ({"aud": "api://someone-else"}, 401, "another audience"),
        ({"iss": "https://evil.example"}, 401, "not issued by GitHub"),
        ({"signer": "rogue"}, 401, "invalid"),
        ({"kid": "unknown-kid"}, 401, "unknown key"),
        ({"repository": "mallory/models"}, 403, "mallory/models may not"),
        ({"repository": None}, 401, "invalid"),
    ],
)
def test_validate_refuses_wrong_tokens_with_json_errors(app_services, call, token, caplog, claims, status, needle) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {} if claims.get("__missing__") else bearer(token(**claims))
    response = call("validate", {"specs": [{"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}]}, headers)
    assert response.status_code == status
    assert response.mimetype == "application/json" and needle in body_of(response)["error"]["message"]
    if headers:
        assert headers["Authorization"][7:] not in caplog.text  # a token never reaches a log line


def test_validate_answers_the_online_checks(app_services, call, token) -> None:
    response = call(
        "validate",
        {"specs": [{"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}], "policy": POLICY},
        bearer(token(ref="refs/pull/12/merge", event_name="pull_request")),
    )
    assert response.status_code == 200, response.get_body()
    body = body_of(response)
    assert body["ok"] is True and body["results"][0]["run"] == "phi4-ultrachat"
    plan = body["results"][0]["plan"]
    assert plan["model"] == "azureml://registries/azureml/models/Phi-4/versions/8"
    assert plan["gpus_per_node"] == 1 and plan["effective_batch_size"] == 1 and plan["endpoint"] == "ultrachat-completion"
    assert plan["idle_after"] == "24h" and plan["expire_after"] == "7d"
    assert "✅ `runs/phi4-ultrachat.yaml`" in body["markdown"]
    # Priced (no live price source here: the snapshot), and judged against the run the ledger holds (none yet).
    assert body["results"][0]["effect"] == "train" and body["results"][0]["cost"]["deploy_hourly"] == 3.673
    assert "against the run as it stands: **a new run: train, then deploy**" in body["markdown"]
    assert "- cost: training \\$3.67/h" in body["markdown"] and "(snapshot of " in body["markdown"]
    assert "  - note: `compute.instance_type`: quota: training needs 24 vCPUs (1 x Standard_NC24ads_A100_v4)" in body["markdown"]


def test_validate_and_submit_refuse_a_spec_over_the_budget_naming_file_and_line(app_services, azure_fake, call, token) -> None:
    pricey = POLICY.replace("max_hourly_usd: 20", "max_hourly_usd: 3")
    assert pricey != POLICY
    response = call("validate", {"specs": [{"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}], "policy": pricey}, bearer(token()))
    assert response.status_code == 422
    messages = body_of(response)["results"][0]["messages"]
    assert any("compute.instance_type: training costs $3.67/h, over budget.max_hourly_usd $3.00" in m for m in messages)
    submitted = call("submit", {"spec": {"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}, "policy": pricey}, bearer(token()))
    line = next(i for i, t in enumerate(REFERENCE.splitlines(), 1) if t.strip() == "instance_type: Standard_NC24ads_A100_v4")
    assert submitted.status_code == 422
    assert body_of(submitted)["error"]["message"].startswith(f"runs/phi4-ultrachat.yaml:{line}: compute.instance_type: training costs")
    assert not [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]


def test_validate_reports_online_errors_with_field_paths(app_services, azure_fake, call, token) -> None:
    azure_fake.add_cluster("gpu-cluster-big", "Standard_NC6s_v3")  # not in the model's fine-tune allow list
    response = call("validate", {"specs": [{"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}]}, bearer(token()))
    assert response.status_code == 422
    messages = body_of(response)["results"][0]["messages"]
    assert any(m.startswith("runs/phi4-ultrachat.yaml:") and "compute.instance_type" in m for m in messages)
    # The online findings as workflow commands, for the PR workflow to print: annotations on their lines in the diff.
    commands = body_of(response)["annotations"]
    assert any(c.startswith("::error title=compute.instance_type,file=runs/phi4-ultrachat.yaml,line=") for c in commands), commands
    assert all(c.startswith(("::error ", "::warning ", "::notice ")) and "\n" not in c for c in commands)


def test_a_bad_spec_gets_422_with_the_cli_messages(app_services, call, token) -> None:
    bad = REFERENCE.replace("sample_percent: 5", "sample_percnt: 5")
    response = call("validate", {"specs": [{"path": "runs/bad.yaml", "text": bad}]}, bearer(token()))
    assert response.status_code == 422
    (message,) = [m for m in body_of(response)["results"][0]["messages"] if "sample_percnt" in m]
    assert message.startswith("runs/bad.yaml:") and "did you mean 'sample_percent'" in message


@pytest.mark.parametrize(
    ("raw", "status"), [(b"x" * (64 * 1024 + 1), 413), (b"{not json", 400), (b"[1, 2]", 400), (json.dumps({"specs": "nope"}).encode(), 400)]
)
def test_malformed_and_oversized_bodies(app_services, call, token, raw, status) -> None:
    response = call("validate", headers=bearer(token()), raw=raw)
    assert response.status_code == status and "error" in body_of(response)


@pytest.mark.parametrize(
    ("claims", "needle"),
    [
        ({"ref": "refs/heads/feature"}, "refs/heads/feature"),
        ({"event_name": "pull_request"}, "pull_request"),
        ({"ref": "refs/pull/3/merge", "event_name": "pull_request"}, "push to refs/heads/main"),
    ],
)
def test_submit_only_from_a_push_to_main(app_services, azure_fake, call, token, claims, needle) -> None:
    response = call("submit", {"spec": {"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}}, bearer(token(**claims)))
    assert response.status_code == 403 and needle in body_of(response)["error"]["message"]
    assert not [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]


def test_submit_starts_one_job_per_digest(app_services, azure_fake, call, token) -> None:
    tok = token()
    payload = {"spec": {"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}, "policy": POLICY, "pr": 12}
    azure_fake.put_resource(f"{azure_fake.ws_path}/data/ultrachat-train/versions/1", {"properties": {"dataType": "uri_file"}})
    payload["spec"]["text"] = REFERENCE_ON_ASSETS  # type: ignore[index]
    first = call("submit", payload, bearer(tok))
    assert first.status_code == 202, first.get_body()
    body = body_of(first)
    assert body["job_name"].startswith("gitops-phi4-ultrachat-") and body["portal_url"].startswith("https://ml.azure.com/")
    job = azure_fake.job(body["job_name"])
    assert job["properties"]["tags"]["gitops_pr"] == "12" and job["properties"]["tags"]["gitops_commit"] == "c0ffee" * 6 + "abcd"
    again = call("submit", payload, bearer(tok))
    assert again.status_code == 200 and body_of(again)["job_name"] == body["job_name"] and body_of(again)["created"] is False
    assert len([c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]) == 1

    anonymous = call("get_run", method="GET", headers={}, route_params={"name": "phi4-ultrachat"})
    assert anonymous.status_code == 401  # the function key alone reads no record
    record = call("get_run", method="GET", headers=bearer(tok), route_params={"name": "phi4-ultrachat"})
    assert record.status_code == 200 and body_of(record)["job_name"] == body["job_name"] and body_of(record)["pr"] == "12"
    missing = call("get_run", method="GET", headers=bearer(tok), route_params={"name": "nope"})
    assert missing.status_code == 404 and "no run named" in body_of(missing)["error"]["message"]


def test_submit_refuses_a_commit_other_than_the_tokens(app_services, call, token) -> None:
    response = call("submit", {"spec": {"path": "runs/x.yaml", "text": REFERENCE}, "commit": "deadbeef"}, bearer(token()))
    assert response.status_code == 403 and "commit" in body_of(response)["error"]["message"]


def test_jwks_is_fetched_once_and_cached(app_services, call, token, oidc_keys) -> None:
    keys, _ = oidc_keys
    before = keys.fetches
    for _ in range(3):
        call("validate", {"specs": [{"path": "runs/a.yaml", "text": "name: x"}]}, bearer(token()))
    assert keys.fetches - before <= 1


def test_an_unconfigured_app_answers_500_naming_the_setting(call, monkeypatch) -> None:
    from function_app.services import use_services

    use_services(None)
    monkeypatch.delenv("GITOPS_OIDC_AUDIENCE", raising=False)
    monkeypatch.setenv("GITOPS_REPO", "acme/models")
    response = call("validate", {"specs": []}, {"Authorization": "Bearer x"})
    assert response.status_code == 500 and "GITOPS_OIDC_AUDIENCE" in body_of(response)["error"]["message"]


@pytest.mark.parametrize(
    ("policy", "status", "needle"),
    [
        (None, 400, "carries no policy"),
        ("", 400, "carries no policy"),
        ({"caps": {"max_epochs": 5}}, 400, "must be the text"),
        ("caps: {max_epochs: lots}\n", 422, "gitops.yaml is invalid"),
        ("caps: &c {max_epochs: *c}\n", 422, "gitops.yaml is invalid"),
    ],
)
def test_submit_refuses_a_missing_or_broken_policy_never_using_the_defaults(
    app_services,
    azure_fake,
    call,
    token,
    policy,
    status,
    needle,
) -> None:
    payload: dict = {"spec": {"path": "runs/phi4-ultrachat.yaml", "text": REFERENCE}, "pr": 12}
    if policy is not None:
        payload["policy"] = policy
    response = call("submit", payload, bearer(token()))
    assert response.status_code == status and needle in body_of(response)["error"]["message"], body_of(response)
    assert not [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"event_name": "workflow_dispatch"}, 202),
        ({"event_name": "pull_request"}, 403),
        ({"event_name": "workflow_dispatch", "ref": "refs/heads/dev"}, 403),
        ({"repository": "evil/fork"}, 403),
    ],
)
def test_retry_through_the_function_needs_main_and_a_failed_run(app_services, azure_fake, call, token, claims, status) -> None:
    from gitops.spec.validate import validate_text

    record = app_services.lifecycle.submit(validate_text(REFERENCE_ON_ASSETS, "runs/phi4-ultrachat.yaml"))
    got = app_services.lifecycle.ledger.get(record.run)
    app_services.lifecycle.ledger.put(got[0].moved(RunStatus.FAILED, "job failed", by=Asker.STEP), got[1])
    response = call("retry", {}, bearer(token(**claims)), route_params={"name": record.run})
    assert response.status_code == status, body_of(response)
    if status == 202:
        assert body_of(response)["attempt"] == 2 and body_of(response)["job_name"] == f"{record.job_name}-a2"
        assert "octocat via GitHub" in app_services.lifecycle.ledger.get(record.run)[0].history[-1].note


def test_a_held_candidate_is_promoted_or_rolled_back_only_from_main_with_a_reason(app_services, azure_fake, call, token) -> None:
    """The gate holds a worse candidate; a person decides through the Function, from a workflow on main."""
    from gitops.spec.validate import validate_text

    lifecycle = app_services.lifecycle
    base = REFERENCE_ON_ASSETS.replace("request_timeout_ms: 90000", "request_timeout_ms: 90000\n  gate: {conversations: 4}")
    served: set[str] = set()

    def scorer(endpoint: str, deployment: str, body: dict) -> tuple[int, object]:
        served.add(deployment)
        first = sorted(served)[0]
        return (200, [{"0": "It matters because life on Earth depends on it."}]) if deployment == first else (200, [{"0": "zzz"}])

    azure_fake.scorer = scorer
    for lr in ("5.0e-6", "6.0e-6"):
        record = lifecycle.submit(validate_text(base.replace("learning_rate: 5.0e-6", f"learning_rate: {lr}"), "runs/phi4-ultrachat.yaml"))
        azure_fake.set_job_status(record.job_name, "Completed")
        job_events.start(lifecycle, record.run, "test")
        lifecycle.settle(record.run)
    held = lifecycle.ledger.get("phi4-ultrachat")[0]
    assert held.status == "held" and held.gate is not None and not held.gate["ok"]
    route = {"name": "phi4-ultrachat"}
    dispatch = bearer(token(event_name="workflow_dispatch"))
    assert call("promote", {"reason": "ok"}, bearer(token(event_name="pull_request")), route_params=route).status_code == 403
    assert call("promote", {}, dispatch, route_params=route).status_code == 400  # no reason, no decision
    answer = call("promote", {"reason": "the new format is worth it"}, dispatch, route_params=route)
    assert answer.status_code == 202 and body_of(answer)["status"] == "deploying" and "octocat via GitHub" in body_of(answer)["decided_by"]
    live = lifecycle.settle("phi4-ultrachat")
    assert live.status == "live" and any("promoted by octocat via GitHub" in h.note for h in live.history)
    nothing = call("promote", {"reason": "again"}, dispatch, route_params=route)
    assert nothing.status_code == 409 and "not held" in body_of(nothing)["error"]["message"]


def test_a_local_spec_never_runs_in_the_function(app_services, call, token, tmp_path) -> None:
    """The local backend trains and serves on the machine it runs on: in the Function that would read the host's
    files as data (``/proc/self/environ``) and train on it. The Function refuses the backend, whatever the policy."""
    secret = tmp_path / "environ"
    secret.write_text(
        '{"messages": [{"role": "user", "content": "AZURE_CLIENT_SECRET=hunter2"}, {"role": "assistant", "content": "ok"}]}\n'
    )
    spec = (
        f"name: sneaky\nowner: mallory\nbackend: local\nmodel: {{registry: local, name: tiny-phi3}}\n"
        f"data: {{train_path: {secret}, test_path: {secret}}}\n"
    )
    payload = {"spec": {"path": "runs/sneaky.yaml", "text": spec}, "policy": POLICY}
    submitted = call("submit", payload, bearer(token()))
    answer = body_of(submitted)
    assert submitted.status_code == 200 and answer["created"] is False, answer
    assert answer["skipped"].startswith("backend 'local' is not submitted: the local backend trains and serves on the machine")
    validated = body_of(call("validate", {"specs": [payload["spec"]], "policy": POLICY}, bearer(token())))
    (note,) = [m for m in validated["results"][0]["messages"] if "merging this spec submits nothing" in m]
    assert note.startswith("runs/sneaky.yaml:3: note: backend:") and "hunter2" not in json.dumps(validated)
    assert app_services.lifecycle.ledger.get("sneaky") is None
    from gitops.backends.registry import hosted_only

    with pytest.raises(UnsupportedError, match="does not run in the Function"):  # the app's backends, whoever asks
        hosted_only(lambda name: None)("local")  # type: ignore[arg-type,return-value]
