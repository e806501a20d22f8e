"""``gitops validate``: FILE:LINE: field.path: message (+ hint), exit codes, never a traceback."""

from pathlib import Path

from gitops.ledger.transitions import Asker, RunStatus

REPO = Path(__file__).resolve().parents[2]


def test_valid_examples_exit_zero(cli) -> None:
    result = cli("validate", str(REPO / "runs" / "phi4-ultrachat.yaml"), str(REPO / "runs" / "local-tiny.yaml"))
    assert result.exit_code == 0, result.out + result.err
    assert "phi4-ultrachat.yaml: ok" in result.out


def test_every_problem_is_printed_with_file_line_and_path(cli, write) -> None:
    path = write(
        "runs/bad.yaml",
        """
        name: Bad_Name
        backend: azureml
        model: {registry: azureml, name: Phi-4, version: "8"}
        data: {dataset: x}
        finetune:
          params: {learning_rat: 1, apply_lora: maybe}
        lifecycle: {idle_afte: 2h}
        """,
    )
    result = cli("validate", str(path), "--repo", str(path.parent))
    assert result.exit_code == 1
    lines = result.out.splitlines()
    assert f"{path}:1: name: 'Bad_Name' does not match the required pattern ^[a-z][a-z0-9-]*[a-z0-9]$ (hint: 3-24 characters" in lines[0]
    assert (
        f"{path}:6: finetune.params.learning_rat: unknown parameter of chat_completion_pipeline 0.0.82 "
        "(hint: did you mean 'learning_rate'?)" in lines
    )
    assert f"{path}:6: finetune.params.apply_lora: 'maybe' is not allowed; allowed: true, false (hint: use one of: true, false)" in lines
    assert f"{path}:7: lifecycle.idle_afte: unknown field (hint: did you mean 'idle_after'?)" in lines
    assert "Traceback" not in result.out + result.err


def test_one_bad_file_among_good_ones_fails_the_run(cli, write, local_spec_text) -> None:
    good = write("runs/tiny-run.yaml", local_spec_text())
    bad = write("runs/empty.yaml", "")
    result = cli("validate", str(good), str(bad), "--repo", str(good.parent))
    assert result.exit_code == 1
    assert f"{bad}:1: (document): the file is empty" in result.out
    assert f"{good}: ok" in result.out


def test_warnings_do_not_fail(cli, write, azure_spec_text) -> None:
    path = write("runs/azure-run.yaml", azure_spec_text().replace('version: "8"', "label: latest"))
    result = cli("validate", str(path), "--repo", str(path.parent))
    assert result.exit_code == 0
    assert "warning: model.label: label 'latest' is not reproducible" in result.out


def test_policy_from_repo_root_is_applied(cli, write, azure_spec_text) -> None:
    write("gitops.yaml", "compute: {allowed_clusters: [other]}\n")
    path = write("runs/azure-run.yaml", azure_spec_text())
    result = cli("validate", str(path), "--repo", str(path.parent.parent))
    assert result.exit_code == 1
    assert "compute.cluster: cluster 'gpu-cluster-big' is not allowed (hint: use one of: other)" in result.out


def test_usage_errors_are_one_line_not_a_traceback(cli) -> None:
    unknown = cli("no-such-command")
    assert unknown.exit_code == 2 and "No such command 'no-such-command'" in unknown.err and "Traceback" not in unknown.err
    bad_option = cli("plan", "--format", "yaml", "--base", "HEAD")
    assert bad_option.exit_code == 2 and "'yaml' is not one of" in bad_option.err


def test_status_says_when_there_are_no_runs_and_names_a_missing_one_and_pipes_plain_columns(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    empty = cli("status")
    assert empty.exit_code == 0 and empty.out.startswith("no runs yet:") and "gitops run runs/local-tiny.yaml" in empty.out
    missing = cli("status", "nope")
    assert missing.exit_code == 4 and "no run named 'nope'" in missing.err
    from gitops.ledger.local import LocalLedger
    from gitops.ledger.model import RunRecord

    LocalLedger(tmp_path / "ws" / "ledger").put(
        RunRecord(run="a-rather-long-run-name", backend="local", digest="d", job_name="gitops-a-rather-long-run-name-0123456789ab").moved(
            RunStatus.SUBMITTED, by=Asker.VERSION
        ),
        None,
    )
    piped = cli("status")
    header, row = piped.out.splitlines()
    assert header.split("\t")[:4] == ["run", "status", "step", "job"]
    assert row.split("\t")[:4] == ["a-rather-long-run-name", "submitted", "-", "gitops-a-rather-long-run-name-0123456789ab"]
    version = cli("--version")
    assert version.exit_code == 0 and version.out.startswith("finetune-gitops ")


def test_the_cli_and_the_function_find_the_same_things(cli, write, monkeypatch) -> None:
    """#26, one spec check: `gitops validate` and the validate Function (check_specs) run the same check and print
    the same findings, budget caps and conflicts between the specs included."""
    from gitops.cost.prices import PriceBook
    from gitops.review.check import SpecText, check_specs
    from gitops.spec.findings import Code
    from gitops.spec.policy import parse_policy

    monkeypatch.setenv("GITOPS_WORKSPACE", str(write("ws/.keep", "").parent))  # no ledger here: no durations
    monkeypatch.setenv("GITOPS_REPO", "acme/models")
    policy_text = "budget: {max_hourly_usd: 1}\n"
    write("gitops.yaml", policy_text)
    base = (REPO / "runs" / "phi4-ultrachat.yaml").read_text(encoding="utf-8")
    one = write("runs/one.yaml", base.replace("name: phi4-ultrachat", "name: one"))
    two = write("runs/two.yaml", base.replace("name: phi4-ultrachat", "name: two"))  # the same deploy.endpoint as one
    result = cli("validate", str(one), str(two), "--repo", str(one.parent.parent))
    printed = [line for line in result.out.splitlines() if ": ok" not in line]
    policy, _ = parse_policy(policy_text, "gitops.yaml")
    assert policy is not None
    checks = check_specs(
        [SpecText(str(p), p.read_text(encoding="utf-8")) for p in (one, two)],
        policy,
        None,  # no backend: no online checks, as `gitops validate` without --online
        frozenset(),
        "acme/models",
        PriceBook(),
    )
    expected = [f.format() for c in checks for f in sorted(c.findings, key=lambda f: f.line or 0)]
    assert printed == expected and len(expected) >= 3, (printed, expected)
    assert any("max_hourly_usd" in line for line in printed) and any("deploy.endpoint" in line for line in printed), printed
    assert result.exit_code == 1
    # Each finding says what kind of problem it is by its code, which a program reads instead of the words.
    codes = {(f.path, f.code) for c in checks for f in c.findings}
    assert {("deploy.endpoint", Code.CONFLICT), ("deploy.instance_type", Code.BUDGET)} <= codes, codes
    assert all(c.to_dict()["findings"][i]["code"] == f.code.value for c in checks for i, f in enumerate(c.findings))
