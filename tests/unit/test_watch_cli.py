"""``gitops watch`` from a shell: its formats, and a quiet answer when nothing moved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops.watch.findings import WatchFinding, render_markdown, render_text


def test_nothing_watched_is_said_in_every_format(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    monkeypatch.chdir(tmp_path)
    text = cli("watch", "--offline")
    assert text.exit_code == 0 and text.out.startswith("no findings")
    # what was looked at, never "every spec's model, SKUs and quota hold" of no spec at all
    assert "no spec checked online (--offline" in text.out and "the endpoints of 0 run(s) in the ledger" in text.out
    data = json.loads(cli("watch", "--offline", "--format", "json").out)
    assert data["findings"] == [] and data["runs"] == 0
    assert cli("watch", "--offline", "--format", "markdown").out.startswith("<!-- finetune-gitops:watch -->")
    assert cli("watch", "--format", "yaml").exit_code == 2


def test_findings_read_with_their_fix_and_round_trip_through_json() -> None:
    finding = WatchFinding(
        "drift",
        "error",
        "chat",
        "chat-ep traffic",
        "traffic is v1 50%, v2 50% where the ledger declares v1 100%",
        "`gitops watch --fix --yes` restores it",
        fixable=True,
    )
    assert WatchFinding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding
    text = render_text([finding], specs=1, runs=1)
    assert "error   chat: chat-ep traffic: traffic is v1 50%" in text and "1 restorable with `gitops watch --fix`" in text
    assert "| ❌ | `chat` | `chat-ep traffic` | traffic is v1 50%, v2 50%" in render_markdown([finding], "now")
