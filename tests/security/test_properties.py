"""Every entry point answers arbitrary input with its one-line error, the right exit code or 4xx: never a
traceback, never a 500. Property-based (hypothesis), with bounded example counts so the suite adds seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops.spec.policy import parse_policy
from gitops.spec.validate import validate_text

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SCALARS = st.none() | st.booleans() | st.integers(-(10**40), 10**40) | st.floats() | st.text(max_size=30)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20
)
KEYS = st.sampled_from(
    [
        "name",
        "backend",
        "model",
        "data",
        "compute",
        "finetune",
        "params",
        "deploy",
        "lifecycle",
        "runTags",
        "data",
        "runId",
        "eventType",
        "type",
        "topic",
        "runStatus",
        "max_steps",
        "registry",
        "version",
    ]
)
SHAPED = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=25)


def as_yaml(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True) if not isinstance(value, float) or value == value else "x: .nan\n"


@FEW
@given(st.text(max_size=300) | SHAPED.map(as_yaml))
def test_any_spec_text_gives_findings_never_an_exception(text: str) -> None:
    result = validate_text(text, "runs/x.yaml")
    assert result.ok or all(f.file == "runs/x.yaml" and "\n" not in f.message for f in result.findings)


@FEW
@given(st.text(max_size=300) | SHAPED.map(as_yaml))
def test_any_policy_text_gives_a_policy_or_findings(text: str) -> None:
    policy, findings = parse_policy(text)
    assert policy is not None or any(f.is_error for f in findings)


@FEW
@given(JSON | SHAPED)
def test_any_event_body_gets_decisions_never_an_exception(tmp_path_factory, body: Any) -> None:
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle

    lifecycle = Lifecycle(LocalLedger(tmp_path_factory.mktemp("ledger")), lambda name: None, topic="/t", name_salt="")  # type: ignore[arg-type, return-value]
    for decision in lifecycle.on_job_event(json.dumps(body)):
        assert decision.action in ("ignored", "duplicate", "scheduled", "recorded") and "\n" not in decision.reason


@FEW
@given(JSON | SHAPED)
def test_gitops_event_exits_0_or_1_with_one_line_per_event(cli, tmp_path: Path, monkeypatch, body: Any) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(body))
    for args in (("event", str(path)), ("event", str(path), "--dry-run")):
        result = cli(*args)
        assert result.exit_code in (0, 1), result
        assert "Traceback" not in result.err + result.out
