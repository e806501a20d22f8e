"""Class 14 of CASES.md: one repository never touches another's resources.

Two repositories whose ledgers share one Azure ML workspace (the real SDK against the fake REST API), each with a
run ``phi4-ultrachat`` on ``deploy.endpoint: ultrachat-completion``. Before resources carried the repository's
identity, the second took the first one's live endpoint to 100% and deleted its deployment, and its cleanup with
``prune_orphans`` would have deleted the first one's endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitops.cleanup.run import run_cleanup
from gitops.errors import ConfigurationError, ConflictError
from gitops.ledger.local import LocalLedger
from gitops.lifecycle.flow import Lifecycle
from gitops.spec.policy import Policy
from gitops.watch.scan import drift_findings, restore
from tests.virtual_azure import RUN, World, virtual_world

ENDPOINT = "ultrachat-completion"
OURS, THEIRS = "acme/models", "globex/llm-platform"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with virtual_world(tmp_path) as w:
        assert w.lifecycle.repo == OURS  # tests/conftest.py pins GITOPS_REPO
        yield w


def neighbour(world: World, tmp_path: Path, repo: str = THEIRS) -> Lifecycle:
    """Another repository's lifecycle: its own ledger, the same workspace, the same run and endpoint names."""
    return Lifecycle(
        LocalLedger(tmp_path / "their-ledger"),
        lambda name: world.backend,
        topic=world.backend.topic,
        clock=world.clock.now,
        reader_for=world.fake.mlflow.reader if world.fake.mlflow else None,
        repo=repo,
        name_salt=repo,
    )


def live_first(world: World) -> tuple[str, dict[str, int]]:
    serving = world.live_first_version()
    body = world.fake.endpoint_body(ENDPOINT)
    assert body["tags"]["gitops_repo"] == OURS and body["tags"]["gitops_run"] == RUN
    return serving, dict(body["properties"]["traffic"])


def test_every_resource_the_product_creates_names_the_repository(world: World) -> None:
    serving, _ = live_first(world)
    job = world.record().job_name
    assert world.fake.job(job)["properties"]["tags"]["gitops_repo"] == OURS
    deployment = world.fake.get_resource(f"{world.fake.ws_path}/onlineEndpoints/{ENDPOINT}/deployments/{serving}")
    assert deployment is not None and deployment["tags"]["gitops_repo"] == OURS


def test_a_second_repository_never_takes_the_first_ones_live_endpoint(world: World, tmp_path: Path) -> None:
    serving, traffic = live_first(world)
    theirs = neighbour(world, tmp_path)
    # The same spec in their repository is the same deterministic job name: it is not adopted as theirs.
    with pytest.raises(ConflictError, match=f"submitted by repository {OURS}"):
        theirs.submit(world.spec())
    # A spec of their own (another learning rate) trains; its rollout stops at our endpoint, naming us.
    record = theirs.submit(world.spec(lr="7.0e-6"))
    world.fake.set_job_status(record.job_name, "Completed")
    theirs.on_job_event(world.fake.job_event(record.job_name))
    calls = len(world.fake.calls)
    ended = theirs.settle(RUN, sleep=world.clock.advance)
    assert ended.status == "rolled_back" and ended.deployment is None, ended.history[-3:]
    refusal = " ".join(h.note for h in ended.history)
    assert f"endpoint {ENDPOINT}: managed by repository {OURS}, not this one ({THEIRS})" in refusal
    assert not [c for c in world.fake.calls[calls:] if c[0] != "GET" and f"/onlineEndpoints/{ENDPOINT}" in c[1]]
    # Nothing of ours moved: the same traffic, the same deployments, and our ledger still tells the truth.
    assert world.fake.endpoint_body(ENDPOINT)["properties"]["traffic"] == traffic
    assert world.fake.deployments(ENDPOINT) == [serving]
    assert world.record().status == "live" and world.record().deployment == serving


def test_their_job_events_are_not_ours_even_with_our_run_name(world: World, tmp_path: Path) -> None:
    live_first(world)
    theirs = neighbour(world, tmp_path)
    record = theirs.submit(world.spec(lr="7.0e-6"))
    world.fake.set_job_status(record.job_name, "Completed")
    (decision,) = world.lifecycle.on_job_event(world.fake.job_event(record.job_name))
    assert decision.action == "ignored" and decision.reason == f"a run of repository {THEIRS}, not this one"


def test_their_cleanup_and_watch_never_touch_our_endpoint(world: World, tmp_path: Path) -> None:
    serving, traffic = live_first(world)
    theirs = neighbour(world, tmp_path)
    pruning = Policy.model_validate({"cleanup": {"prune_orphans": True}})
    years_on = datetime.now(UTC) + timedelta(days=400)  # expired and idle by every rule, and no spec of it on main
    (verdict,) = run_cleanup(world.backend, theirs.ledger, pruning, specs_on_main=set(), now=years_on, repo=THEIRS)
    assert verdict.action == "skip" and verdict.reasons == (f"managed by repository {OURS}, not this one ({THEIRS})",)
    assert world.fake.deployments(ENDPOINT) == [serving]
    # A copy of our record in their ledger (a neighbour who copied ours) still gives their watch no right to fix.
    copied = world.record()
    world.backend.begin_traffic(ENDPOINT, {serving: 0})  # drift, by hand
    drifted = dict(world.fake.endpoint_body(ENDPOINT)["properties"]["traffic"])
    (finding,) = drift_findings(copied, world.backend, world.clock.now(), repo=THEIRS)
    assert "no longer tagged as run phi4-ultrachat's of this repository" in finding.what
    assert restore(copied, world.backend, world.clock.now(), apply=True, repo=THEIRS) == []
    assert world.fake.endpoint_body(ENDPOINT)["properties"]["traffic"] == drifted != traffic
    assert restore(copied, world.backend, world.clock.now(), apply=True, repo=OURS) != []  # ours restores it
    assert world.fake.endpoint_body(ENDPOINT)["properties"]["traffic"] == traffic


def test_an_endpoint_from_before_the_tag_stays_ours_by_the_ledger_and_is_adopted(world: World, tmp_path: Path) -> None:
    """The upgrade: endpoints tagged before gitops_repo existed keep working for the repository whose ledger records
    their deployment; the next rollout writes the tag. Another repository cannot claim them."""
    serving, _ = live_first(world)
    del world.fake.endpoint_body(ENDPOINT)["tags"]["gitops_repo"]  # as every endpoint was before the tag
    theirs = neighbour(world, tmp_path)
    pruning = Policy.model_validate({"cleanup": {"prune_orphans": True}})
    years_on = datetime.now(UTC) + timedelta(days=400)
    (skipped,) = run_cleanup(world.backend, theirs.ledger, pruning, specs_on_main=set(), dry_run=True, now=years_on, repo=THEIRS)
    assert skipped.action == "skip" and skipped.reasons[0].startswith("names no repository (gitops_repo is missing)")
    (ours,) = run_cleanup(world.backend, world.lifecycle.ledger, Policy(), dry_run=True, now=years_on, repo=OURS)
    assert ours.action == "delete"  # held by our ledger: ours to clean up, as before the upgrade
    # Their rollout is refused (no deployment of theirs on it), with the tag that would settle it named.
    record = theirs.submit(world.spec(lr="7.0e-6"))
    world.fake.set_job_status(record.job_name, "Completed")
    theirs.on_job_event(world.fake.job_event(record.job_name))
    ended = theirs.settle(RUN, sleep=world.clock.advance)
    assert ended.status == "rolled_back"
    assert f"tag it gitops_repo={THEIRS}" in " ".join(h.note for h in ended.history)
    assert world.fake.deployments(ENDPOINT) == [serving]
    # Our next version rolls out as before, and the endpoint now names us.
    world.fake.provisioning_s.update(onlineendpoints=0, deployments=0)
    job = world.submit_completed(lr="6.0e-6")
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    assert world.record().status == "live" and world.record().deployment != serving
    assert world.fake.endpoint_body(ENDPOINT)["tags"]["gitops_repo"] == OURS


def test_a_shared_workspace_gets_nothing_without_a_repository_identity(world: World, tmp_path: Path) -> None:
    nameless = neighbour(world, tmp_path, repo="")
    calls = len(world.fake.calls)
    with pytest.raises(ConfigurationError, match="GITOPS_REPO is not set"):
        nameless.submit(world.spec(lr="7.0e-6"))
    assert not [c for c in world.fake.calls[calls:] if c[0] in ("PUT", "POST", "DELETE", "PATCH")]


def test_gitops_delete_refuses_an_endpoint_of_another_repository(cli, monkeypatch, tmp_path: Path) -> None:
    from gitops.backends.local.backend import LocalBackend

    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    backend = LocalBackend(tmp_path / "ws")
    backend.begin_endpoint("their-ep", {"managed_by": "finetune-gitops", "gitops_repo": THEIRS, "gitops_run": RUN})
    try:
        refused = cli("delete", "their-ep")
        assert refused.exit_code != 0 and f"endpoint their-ep: managed by repository {THEIRS}" in refused.err
        assert backend.get_endpoint("their-ep") is not None
    finally:
        backend.delete_endpoint("their-ep")


def test_a_laptop_without_gitops_repo_acts_as_the_repository_its_plan_names(git_repo, monkeypatch, tmp_path: Path) -> None:
    """Once, `gitops plan` salted derived names with the checkout's remote while the CLI's lifecycle used GITOPS_REPO
    alone: a laptop without it was shown one endpoint name and deployed to another, tagged with no repository."""
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.review.gitrepo import repository_salt
    from gitops.spec import naming
    from gitops.spec.validate import validate_text

    git_repo.git("remote", "add", "origin", "git@github.com:acme/laptop.git")
    monkeypatch.delenv("GITOPS_REPO", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    monkeypatch.chdir(git_repo.root)
    lifecycle = local_lifecycle(str(tmp_path / "ws"))
    assert repository_salt(git_repo.root, "") == ("acme/laptop", "the git remote origin")
    assert lifecycle.repo == lifecycle.name_salt == "acme/laptop"
    text = "name: laptop-run\nbackend: local\nmodel: {registry: local, name: tiny-phi3}\ndata: {train_path: t.jsonl}\n"
    spec = validate_text(text, "r.yaml").require()
    assert naming.endpoint_name(spec, lifecycle.name_salt) == naming.endpoint_name(spec, "acme/laptop") != naming.endpoint_name(spec, "")
