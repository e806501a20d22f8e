"""``gitops plan`` over real git repositories: classification, derived names, field changes, output."""

import json

import pytest

from gitops.review.plan import build_plan
from gitops.review.plan_render import PLAN_MARKER, render_json, render_markdown, render_text
from gitops.spec.validate import validate_text


@pytest.fixture
def repo(git_repo, azure_spec_text, local_spec_text):
    git_repo.write("gitops.yaml", "required: [owner]\n")
    git_repo.write("runs/keep-me.yaml", local_spec_text("keep-me"))
    git_repo.write("runs/change-me.yaml", azure_spec_text("change-me"))
    git_repo.write("runs/move-me.yaml", local_spec_text("move-me"))
    git_repo.write("runs/drop-me.yaml", local_spec_text("drop-me"))
    git_repo.write("README.md", "not a spec\n")
    base = git_repo.commit("base")
    git_repo.write("runs/new-one.yaml", azure_spec_text("new-one"))
    git_repo.write(
        "runs/change-me.yaml",
        azure_spec_text("change-me")
        .replace("learning_rate: 5.0e-6", "learning_rate: 1.0e-5")
        .replace("apply_lora: true", "apply_lora: 'true'"),
    )
    git_repo.git("mv", "runs/move-me.yaml", "runs/moved-one.yaml")
    git_repo.write("runs/moved-one.yaml", local_spec_text("moved-one").replace("moved-one-ep", "move-me-ep"))
    (git_repo.root / "runs/drop-me.yaml").unlink()
    git_repo.write("runs/notes.txt", "ignored\n")
    git_repo.commit("head")
    return git_repo, base


def test_classification(repo) -> None:
    git_repo, base = repo
    plan = build_plan(git_repo.root, base)
    status = {s.path: s.status for s in plan.specs}
    assert status == {
        "runs/new-one.yaml": "added",
        "runs/change-me.yaml": "changed",
        "runs/moved-one.yaml": "renamed",
        "runs/drop-me.yaml": "removed",
        "runs/keep-me.yaml": "unchanged",
    }
    moved = next(s for s in plan.specs if s.status == "renamed")
    assert moved.old_path == "runs/move-me.yaml"
    assert plan.ok


def test_changed_fields_are_normalised(repo) -> None:
    git_repo, base = repo
    plan = build_plan(git_repo.root, base)
    changed = next(s for s in plan.specs if s.status == "changed")
    # apply_lora true -> 'true' is the same value once normalised: only the learning rate changed
    assert [(c.path, c.old, c.new) for c in changed.changes] == [("finetune.params.learning_rate", 5e-6, 1e-5)]


def test_derived_values(repo) -> None:
    git_repo, base = repo
    plan = build_plan(git_repo.root, base)
    new = next(s for s in plan.specs if s.status == "added")
    d = new.derived
    assert d is not None and new.digest is not None
    assert d.display_name == "Phi-4-ultrachat_200k-bs1-cosine-ds2-lora"  # unset limits are left out
    validated = validate_text((git_repo.root / "runs/new-one.yaml").read_text(), "runs/new-one.yaml")
    assert d.job_name == f"gitops-new-one-{validated.training_digest[:12]}"  # the job follows what is trained
    assert d.gpus_per_node == 1 and d.effective_batch_size == 1
    assert d.model == "azureml://registries/azureml/models/Phi-4/versions/8"
    assert d.endpoint == "new-one-ep"
    assert d.idle_after == "24h" and d.expire_after == "7d"


def test_effective_batch_size_uses_gpus_nodes_and_accumulation(git_repo, azure_spec_text) -> None:
    base = git_repo.commit("empty")
    text = (
        azure_spec_text("big")
        .replace("Standard_NC24ads_A100_v4", "Standard_NC96ads_A100_v4")
        .replace("nodes: 1", "nodes: 2")
        .replace("per_device_train_batch_size: 1", "per_device_train_batch_size: 2, gradient_accumulation_steps: 4")
    )
    git_repo.write("runs/big.yaml", text)
    git_repo.commit()
    (spec,) = build_plan(git_repo.root, base).specs
    assert spec.derived is not None
    assert spec.derived.effective_batch_size == 2 * 4 * 4 * 2
    assert spec.derived.display_name.startswith("Phi-4-ultrachat_200k-bs64-cosine-ds2-lora")


def test_invalid_spec_fails_plan_and_cli(repo, cli) -> None:
    git_repo, base = repo
    git_repo.write("runs/broken.yaml", "name: broken\nmodel: [\n")
    git_repo.commit("broken")
    plan = build_plan(git_repo.root, base)
    assert not plan.ok
    result = cli("plan", "--base", base, "--repo", str(git_repo.root), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.out)
    broken = next(s for s in data["specs"] if s["path"] == "runs/broken.yaml")
    assert broken["valid"] is False and broken["findings"][0]["message"].startswith("invalid YAML")


def test_text_output(repo, cli) -> None:
    git_repo, base = repo
    result = cli("plan", "--base", base, "--repo", str(git_repo.root))
    assert result.exit_code == 0, result.err
    assert "1 added, 1 changed, 1 renamed, 1 removed, 1 unchanged; all valid" in result.out
    assert "~ finetune.params.learning_rate: 5e-06 -> 1e-05" in result.out
    assert "RENAMED   runs/moved-one.yaml (from runs/move-me.yaml)" in result.out


def test_markdown_is_one_sticky_comment(repo) -> None:
    git_repo, base = repo
    text = render_markdown(build_plan(git_repo.root, base))
    assert text.startswith(PLAN_MARKER + "\n")
    assert "| Effective batch size | 1 |" in text
    assert "`finetune.params.learning_rate`" in text
    assert "1 unchanged valid spec(s) not shown." in text


def test_markdown_truncates_gracefully_and_keeps_errors(git_repo, local_spec_text) -> None:
    base = git_repo.commit("empty")
    for i in range(120):
        git_repo.write(f"runs/run-{i:03d}.yaml", local_spec_text(f"run-{i:03d}"))
    git_repo.write("runs/zz-bad.yaml", "name: zz-bad\nbackend: nope\n")
    git_repo.commit()
    plan = build_plan(git_repo.root, base)
    text = render_markdown(plan, limit=8000)
    assert len(text) <= 8000
    assert "more spec(s) not shown (comment size limit)" in text
    assert "runs/zz-bad.yaml" in text  # invalid specs come first, so truncation never hides them
    full = render_markdown(plan)
    assert len(full) <= 65000


def test_unknown_revision_is_a_clear_error(git_repo, cli) -> None:
    git_repo.commit("empty")
    result = cli("plan", "--base", "nope", "--repo", str(git_repo.root))
    assert result.exit_code == 1
    assert "error: git rev-parse failed" in result.err
    assert "hint: check that the revisions exist" in result.err


def test_render_text_hides_unchanged(repo) -> None:
    git_repo, base = repo
    text = render_text(build_plan(git_repo.root, base))
    assert "keep-me" not in text and "1 spec(s) unchanged and valid." in text


def test_two_specs_on_one_endpoint_or_model_name_are_refused_naming_both(git_repo, local_spec_text, cli) -> None:
    """A copy of a spec under another name with the same deploy.endpoint used to validate and plan clean, then take
    over the first run's endpoint."""
    base = git_repo.commit("empty")
    git_repo.write("runs/tiny-run.yaml", local_spec_text("tiny-run"))
    git_repo.write("runs/tiny-copy.yaml", local_spec_text("tiny-copy").replace("endpoint: tiny-copy-ep", "endpoint: tiny-run-ep"))
    git_repo.commit("copy")
    plan = build_plan(git_repo.root, base)
    assert not plan.ok
    by_path = {p.path: p for p in plan.specs}
    for mine, other in (("runs/tiny-copy.yaml", "runs/tiny-run.yaml"), ("runs/tiny-run.yaml", "runs/tiny-copy.yaml")):
        (finding,) = [f for f in by_path[mine].findings if f.path == "deploy.endpoint"]
        assert f"endpoint 'tiny-run-ep' is also used by {other}:" in finding.message and finding.line is not None
    result = cli("validate", str(git_repo.root / "runs" / "tiny-run.yaml"), str(git_repo.root / "runs" / "tiny-copy.yaml"))
    assert result.exit_code == 1 and result.out.count("is also used by") == 2 and ": ok" not in result.out


def test_without_gitops_repo_endpoint_names_come_from_the_git_remote(git_repo, azure_spec_text, cli, monkeypatch) -> None:
    from gitops.spec import naming
    from gitops.spec.validate import validate_text

    monkeypatch.delenv("GITOPS_REPO", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    git_repo.git("remote", "add", "origin", "git@github.com:acme/models.git")
    base = git_repo.commit("empty")
    text = azure_spec_text("derived").replace("  endpoint: derived-ep\n", "")
    git_repo.write("runs/derived.yaml", text)
    git_repo.commit("spec")
    result = cli("plan", "--base", base, "--repo", str(git_repo.root))
    expected = naming.endpoint_name(validate_text(text, "runs/derived.yaml").require(), "acme/models")
    assert expected in result.out and "endpoint names derived for acme/models (the git remote origin)" in result.out


# -- what merging each spec takes, and what it costs ------------------------------------------------
def test_each_changed_spec_says_whether_it_retrains_redeploys_or_only_changes_settings(git_repo, azure_spec_text) -> None:
    for name in ("params", "sku", "idle", "same"):
        git_repo.write(f"runs/{name}.yaml", azure_spec_text(name))
    base = git_repo.commit("base")
    git_repo.write("runs/params.yaml", azure_spec_text("params").replace("learning_rate: 5.0e-6", "learning_rate: 6.0e-6"))
    git_repo.write(
        "runs/sku.yaml",
        azure_spec_text("sku").replace("instance_type: Standard_NC48ads_A100_v4", "instance_type: Standard_NC24ads_A100_v4"),
    )
    git_repo.write("runs/idle.yaml", azure_spec_text("idle").replace("idle_after: 24h", "idle_after: 6h"))
    git_repo.write("runs/fresh.yaml", azure_spec_text("fresh"))
    git_repo.commit("head")
    plan = build_plan(git_repo.root, base)
    effects = {s.path: s.effect for s in plan.specs}
    assert effects == {
        "runs/params.yaml": "retrain",
        "runs/sku.yaml": "redeploy",
        "runs/idle.yaml": "settings",
        "runs/same.yaml": "none",
        "runs/fresh.yaml": "train",
    }
    text = render_text(plan)
    assert "effect     retrain at $3.67/h, then deploy" in text
    assert "effect     redeploy only: the trained model is deployed again, no training" in text
    assert "effect     settings only: nothing is trained or deployed" in text
    sku = next(s for s in plan.specs if s.path == "runs/sku.yaml")
    assert sku.cost is not None and sku.cost.deploy_hourly == pytest.approx(3.673)
    data = json.loads(render_json(plan))
    assert {s["path"]: s["effect"] for s in data["specs"]} == effects
    assert next(s for s in data["specs"] if s["path"] == "runs/sku.yaml")["cost"]["prices_from"].startswith("snapshot of ")


def test_a_retrain_is_priced_from_the_previous_version_in_the_ledger(git_repo, azure_spec_text) -> None:
    from gitops.ledger.model import RunRecord

    git_repo.write("runs/priced.yaml", azure_spec_text("priced"))
    base = git_repo.commit("base")
    old = validate_text(azure_spec_text("priced"), "runs/priced.yaml")
    git_repo.write("runs/priced.yaml", azure_spec_text("priced").replace("sample_percent: 5", "sample_percent: 10"))
    git_repo.commit("double the data")
    record = RunRecord(
        run="priced",
        backend="azureml",
        digest="d",
        job_name="j",
        spec=old.require().model_dump(mode="json"),
        params=old.params,
        report={"duration_s": 3600},
    )
    plan = build_plan(git_repo.root, base, previous=lambda run: record if run == "priced" else None)
    (spec,) = plan.specs
    assert spec.effect == "retrain" and spec.cost is not None and spec.cost.training_usd == pytest.approx(2 * 3.673)
    assert "effect     retrain ~$7.35, then deploy" in render_text(plan)


def test_a_spec_over_the_budget_fails_the_plan_on_its_line(git_repo, azure_spec_text) -> None:
    git_repo.write("gitops.yaml", "budget: {max_hourly_usd: 5}\n")
    base = git_repo.commit("policy")
    git_repo.write("runs/pricey.yaml", azure_spec_text("pricey"))  # serves on NC48ads_A100_v4: $7.35/h
    git_repo.commit("spec")
    plan = build_plan(git_repo.root, base)
    assert not plan.ok
    (finding,) = [f for f in plan.specs[0].findings if f.source == "budget"]
    line = next(i for i, t in enumerate(azure_spec_text("pricey").splitlines(), 1) if "Standard_NC48ads_A100_v4" in t)
    assert (finding.path, finding.line, finding.file) == ("deploy.instance_type", line, "runs/pricey.yaml")
    assert "serving costs \\$7.35/h, over budget.max_hourly_usd \\$5.00" in render_markdown(plan)  # escaped: \$ opens no math


def test_unreachable_live_prices_fall_back_to_the_snapshot_and_the_plan_says_so(git_repo, azure_spec_text) -> None:
    from gitops.cost.prices import PriceBook, committed_snapshot
    from gitops.errors import TransientBackendError

    class Down:
        def hourly(self, region: str, sku: str) -> None:
            raise TransientBackendError("the Azure Retail Prices API did not answer: connection refused")

    base = git_repo.commit("empty")
    git_repo.write("runs/offline.yaml", azure_spec_text("offline"))
    git_repo.commit("spec")
    plan = build_plan(git_repo.root, base, prices=PriceBook([Down(), committed_snapshot()]))
    assert plan.ok and plan.price_notes == ["the Azure Retail Prices API did not answer: connection refused"]
    assert "- ⚠️ prices: the Azure Retail Prices API did not answer" in render_markdown(plan)
    assert plan.specs[0].cost is not None and plan.specs[0].cost.prices_from.startswith("snapshot of ")


def test_the_plan_comment_matches_its_golden_file(git_repo, azure_spec_text, local_spec_text) -> None:
    """What a reviewer reads, byte for byte (regenerate with GITOPS_UPDATE_GOLDEN=1 after a deliberate change)."""
    from tests.conftest import assert_golden

    git_repo.write("gitops.yaml", "required: [owner]\nbudget: {max_hourly_usd: 10}\n")
    git_repo.write("runs/serving.yaml", azure_spec_text("serving"))
    git_repo.write("runs/tiny.yaml", local_spec_text("tiny"))
    base = git_repo.commit("base")
    git_repo.write(
        "runs/serving.yaml",
        azure_spec_text("serving").replace("instance_type: Standard_NC48ads_A100_v4", "instance_type: Standard_NC24ads_A100_v4"),
    )
    git_repo.write("runs/tiny.yaml", local_spec_text("tiny").replace("max_steps: 10", "max_steps: 20"))
    git_repo.write("runs/grown.yaml", azure_spec_text("grown").replace("nodes: 1", "nodes: 2"))
    git_repo.commit("head")
    plan = build_plan(git_repo.root, base)
    text = render_markdown(plan).replace(plan.base[:10], "BASE").replace(plan.head[:10], "HEAD")
    assert_golden("plan-comment.md", text)


def test_without_base_the_plan_is_made_against_the_merge_base_with_the_default_branch(git_repo, local_spec_text, cli) -> None:
    git_repo.git("checkout", "-q", "-b", "main")
    git_repo.write("runs/first.yaml", local_spec_text("first"))
    git_repo.commit("on main")
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.write("runs/second.yaml", local_spec_text("second"))
    git_repo.commit("on the branch")
    result = cli("plan", "--repo", str(git_repo.root))
    assert result.exit_code == 0, result.err
    assert "planning against the merge base with main" in result.err
    assert "ADDED     runs/second.yaml" in result.out and "ADDED     runs/first.yaml" not in result.out


def test_the_display_name_says_the_runs_data_and_leaves_out_what_is_unset() -> None:
    from gitops.spec import naming
    from gitops.spec.model import RunSpec

    base = {"name": "slug", "model": {"name": "Phi-4", "version": "8"}}
    for data, slug in (
        ({"dataset": "HuggingFaceH4/ultrachat_200k"}, "ultrachat_200k"),
        ({"train_path": "azureml:support-chats:3"}, "support-chats"),
        ({"train_path": ".gitops/data/synth/train_sft.jsonl"}, "synth"),
    ):
        spec = RunSpec.model_validate({**base, "data": data})
        assert naming.display_name(spec, {"max_seq_length": 512}, 1) == f"Phi-4-{slug}-bs1-linear-nods-nolora-seqlen512"
