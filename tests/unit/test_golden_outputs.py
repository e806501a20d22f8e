"""What users read, byte for byte, from fixed inputs (as Atlantis keeps its comments): the run report in Markdown
and text, the validation output of `gitops validate`, and the online checks' Markdown of the PR comment. The plan
comment's golden file is in test_plan.py. Regenerate with GITOPS_UPDATE_GOLDEN=1 after a deliberate change."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.report.build import RunReport, compare
from gitops.report.render import render_markdown, render_text
from tests.conftest import REPO_ROOT, assert_golden


def _report(job: str, final: float, lr: str, gate: dict | None = None) -> RunReport:
    curves = {"train_loss": [(10, 2.9), (20, 2.4), (30, final - 0.1)], "eval_loss": [(30, final)]}
    return RunReport(
        run="support-chat",
        job_name=job,
        status="live",
        params={"learning_rate": lr, "lora_r": "8"},
        duration_s=3725.0,
        final_train_loss=final - 0.1,
        best_train_loss=final - 0.15,
        final_eval_loss=final,
        best_eval_loss=final,
        eval_perplexity=round(2.718281828**final, 4),
        tokens_seen=1234567,
        smoke_ok=True,
        smoke_latency_ms=812.4,
        smoke_reply="Rain falls when clouds hold more water than air can.",
        model="support-chat v3",
        endpoint="support-chat-ep",
        deployment="v3-1a2b3c4d",
        curves=curves,
        gate=gate,
    )


GATE = {
    "ok": True,
    "reasons": [],
    "notes": [
        "eval loss 2.3100 -> 2.2500 (-0.0600; at most +0.1)",
        "ROUGE-L 0.412 vs 0.398 over 32 conversations (lower bound -0.006 > -0.02)",
    ],
    "numbers": {},
}


def test_the_run_report_reads_as_its_golden_files() -> None:
    previous = _report("gitops-support-chat-aaaaaaaaaaaa", 2.31, "2e-05")
    report = _report("gitops-support-chat-bbbbbbbbbbbb", 2.25, "5e-05", GATE)
    report.lineage = {  # where it came from and what it is: the same in every environment (#27)
        "commit": "0f1e2d3c",
        "pull request": "42",
        "data": "HuggingFaceH4/ultrachat_200k (train_sft, 5%)",
        "content digest": "sha256:" + "ab" * 32,
    }
    deltas = compare(report, previous)
    assert_golden("run-report.md", render_markdown(report, deltas, against=previous.job_name, png="loss.png"))
    assert_golden("run-report.txt", render_text(report, deltas, against=previous.job_name))


BROKEN = """\
name: support-chat
owner: ml-platform
backend: azureml
model: {registry: azureml, name: Phi-4, label: latest}
data: {dataset: HuggingFaceH4/ultrachat_200k, sample_percent: 5}
compute: {cluster: gpu-cluster-big, instance_type: Standard_NC24ads_A100_v4, nodes: 1}
finetune:
  params: {learning_rate: 5.0e-6, lora_rank: 8, num_train_epochs: 9}
deploy:
  endpoint: support-chat-ep
  instance_type: Standard_NC24ads_A100_v4
  rollout: {steps: [50, 10, 100]}
lifecycle: {idle_after: 2x}
"""


def test_the_validation_output_reads_as_its_golden_file(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "support-chat.yaml").write_text(BROKEN)
    (tmp_path / "gitops.yaml").write_text((REPO_ROOT / "gitops.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    result = cli("validate", "runs/support-chat.yaml")
    assert result.exit_code == 1
    assert_golden("validate-output.txt", result.out + result.err)


def test_the_online_checks_markdown_reads_as_its_golden_file(azure_backend) -> None:
    from gitops.review.check import SpecText, check_specs, render_checks
    from gitops.spec.policy import Policy

    seed = (REPO_ROOT / "examples" / "phi3-mini-ultrachat.yaml").read_text()
    reference = (REPO_ROOT / "runs" / "phi4-ultrachat.yaml").read_text()
    specs = [
        SpecText("runs/phi3-mini-ultrachat.yaml", seed),
        SpecText("runs/phi4-ultrachat.yaml", reference),
        SpecText("runs/support-chat.yaml", BROKEN),
    ]
    checks = check_specs(specs, Policy(), lambda _: azure_backend, salt="acme/models", previous=lambda _: None)
    assert_golden("online-checks.md", render_checks(checks))
