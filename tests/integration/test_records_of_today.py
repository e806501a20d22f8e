"""Records written before step state was typed (``tests/records/``: plain dicts, answers as lists) are read into
the typed models with every value kept, and a rollout stored in that shape continues to the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.ledger.model import RunRecord
from gitops.ledger.step_state import Answer, HeldShare
from tests.conftest import REPO_ROOT
from tests.integration.test_rollout_time import _ramped, _users
from tests.virtual_azure import RUN, World, virtual_world

RECORDS = REPO_ROOT / "tests" / "records"


def _stored(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDS / f"{name}.json").read_text(encoding="utf-8"))["record"])


@pytest.mark.parametrize("name", ["mid-evaluate", "mid-ramp"])
def test_a_record_of_today_reads_into_the_typed_state_with_every_value(name: str) -> None:
    raw = _stored(name)
    record = RunRecord.model_validate(raw)
    assert record.cursor is not None
    ev, stored_ev = record.cursor.evaluation, raw["cursor"]["evaluation"]
    assert ev.total == stored_ev["total"] and ev.training == stored_ev["training"]
    for side in ("candidate", "serving"):
        rows = stored_ev[side]
        assert rows and all(isinstance(row, list) and len(row) == 3 for row in rows)  # the shape of today's records
        assert getattr(ev, side) == [Answer(score=s, latency_ms=ms, answered=bool(ok)) for s, ms, ok in rows]
    stored_ramp = raw["cursor"]["ramp"]
    assert record.cursor.ramp.model_dump(exclude_defaults=True) == {
        k: [HeldShare(**s).model_dump() for s in v] if k == "seen" else v for k, v in stored_ramp.items()
    }
    # written again and read again: the same record
    assert RunRecord.model_validate_json(record.model_dump_json()) == record


def test_a_record_of_today_with_an_unknown_key_in_its_step_state_is_refused_not_dropped() -> None:
    from pydantic import ValidationError

    raw = _stored("mid-ramp")
    raw["cursor"]["ramp"]["visit_count"] = 3
    with pytest.raises(ValidationError, match="visit_count"):
        RunRecord.model_validate(raw)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with virtual_world(tmp_path) as w:
        yield w


def _as_today(path: Path) -> None:
    """Rewrite the stored record's step state in the shape the code before typed state wrote (tests/records/)."""
    stored = json.loads(path.read_text(encoding="utf-8"))
    cursor = stored["record"]["cursor"]
    ev = cursor["evaluation"]
    for side in ("candidate", "serving"):
        ev[side] = [[a["score"], a["latency_ms"], 1.0 if a["answered"] else 0.0] for a in ev[side]]
    cursor["evaluation"] = {k: v for k, v in ev.items() if v not in (None, [], 0) or k == "total"}
    cursor["ramp"] = {k: v for k, v in cursor["ramp"].items() if v not in (None, [], {})} if cursor["ramp"]["index"] else {}
    path.write_text(json.dumps(stored), encoding="utf-8")


@pytest.mark.parametrize("stop_at", ["evaluate", "ramp"])
def test_a_rollout_stored_in_todays_shape_continues_to_live(world: World, stop_at: str) -> None:
    world.live_first_version()
    world.fake.provisioning_s.update(deployments=0)
    record = world.lifecycle.submit(_ramped(world, "6.0e-6"))
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    ledger_file = Path(world.lifecycle.ledger.root) / f"{RUN}.json"  # type: ignore[attr-defined]
    rewritten: list[str] = []

    def users_and_an_upgrade(decision: Any) -> None:
        cursor = world.record().cursor
        if cursor is not None and cursor.step == stop_at and not rewritten and (cursor.evaluation.candidate or cursor.ramp.seen):
            _as_today(ledger_file)
            rewritten.append(cursor.step)
        if decision.action == "waiting" and "watched for" in decision.reason:
            _users(world, world.record().endpoint or "", 40)

    world.deliver(on_decision=users_and_an_upgrade)
    live = world.record()
    assert rewritten == [stop_at]
    assert live.status == "live" and live.job_name == record.job_name, [h.note for h in live.history[-5:]]
    assert live.gate is not None and live.gate["ok"] and [s.share for s in live.rollout_steps] == [10, 50]


@pytest.mark.parametrize("queued_by", ["this release", "an older release"])
def test_a_queued_version_takes_the_run_under_the_names_it_was_checked_with(world: World, queued_by: str) -> None:
    """#26, one version of a run: a version's names are computed once, when it is submitted, and kept with it while it
    waits; one queued by a release that kept only its spec gets them from that spec, once, when it starts."""
    from gitops.spec.validate import validate_text

    v2 = world.second_version_rolling_out()
    text = world.spec(lr="6.0e-6").source or ""
    redeploy = validate_text(text.replace("request_timeout_ms: 90000", "request_timeout_ms: 60000"), f"runs/{RUN}.yaml")
    queued = world.lifecycle.submit(redeploy).queued
    assert queued is not None and queued.job_name == v2
    serving = world.record()
    assert (queued.model_name, queued.endpoint) == (serving.model_name, serving.endpoint) and queued.endpoint
    if queued_by == "an older release":
        ledger_file = Path(world.lifecycle.ledger.root) / f"{RUN}.json"  # type: ignore[attr-defined]
        stored = json.loads(ledger_file.read_text(encoding="utf-8"))
        for name in ("model_name", "endpoint"):
            del stored["record"]["queued"][name]
        ledger_file.write_text(json.dumps(stored), encoding="utf-8")
        assert world.record().queued is not None and world.record().queued.endpoint is None
    world.deliver()
    final = world.record()
    assert final.status == "live" and final.queued is None and final.spec["deploy"]["request_timeout_ms"] == 60000
    assert (final.model_name, final.endpoint) == (serving.model_name, serving.endpoint)


def test_a_live_run_of_before_environments_becomes_the_first_environments_state_with_no_redeploy(world: World) -> None:
    """#27: a record as the code before environments wrote it (tests/records/live-before-environments.json) is the
    first environment's state: read as it is, it redeploys nothing when gitops.yaml gains environments, and it is not
    promoted on evidence it never had (no content digest, a gate verdict that does not say it was on evidence)."""
    from gitops.lifecycle.parts import Action
    from gitops.lifecycle.promotions import waiting_for
    from gitops.spec.policy import parse_policy

    stored = _stored("live-before-environments")
    old = RunRecord.model_validate(stored)
    assert (old.environment, old.key, old.status, old.promotions, old.model_digest) == (None, RUN, "live", [], None)
    # The same run live in this world, stored in that shape: today's fields dropped, as that code never wrote them.
    world.live_first_version()
    ledger_file = Path(world.lifecycle.ledger.root) / f"{RUN}.json"  # type: ignore[attr-defined]
    current = json.loads(ledger_file.read_text(encoding="utf-8"))
    current["record"] = {k: v for k, v in current["record"].items() if k in stored}
    current["record"]["gate"] = {k: v for k, v in current["record"]["gate"].items() if k in stored["gate"]}
    ledger_file.write_text(json.dumps(current), encoding="utf-8")
    before, puts, calls = world.record(), len(world.deployment_puts()), len(world.fake.calls)
    fake = world.fake
    dev = f"{{subscription: {fake.subscription}, resource_group: {fake.resource_group}, name: {fake.workspace}}}"
    prod = f"{{subscription: {fake.subscription}, resource_group: rg-prod, name: ws-prod}}"
    policy, findings = parse_policy(
        "registry: {name: acme-models}\nenvironments:\n"
        f"  - name: dev\n    workspace: {dev}\n  - name: prod\n    workspace: {prod}\n    promotion: {{soak: 1h}}\n",
        "gitops.yaml",
    )
    assert policy is not None, findings
    after = world.lifecycle.submit(world.spec(), commit="c0ffee", pr="7", policy=policy)  # deploy.yml, gitops.yaml changed
    assert after.status == "live" and after.job_name == before.job_name and after.deployment == before.deployment
    assert after.environment is None and after.key == RUN and after.policy is not None
    assert [e["name"] for e in after.policy["environments"]] == ["dev", "prod"]
    assert after.history[-1].note == "gitops.yaml applied, nothing redeployed (environments: dev, prod)"
    assert len(world.deployment_puts()) == puts and not [u for m, u in world.fake.calls[calls:] if m == "PUT"]
    assert world.lifecycle.submit(world.spec(), policy=policy) == world.record()  # asked again: nothing more
    world.clock.advance(3 * 24 * 3600)
    decided = world.lifecycle.reconcile()
    assert [d for d in decided if d.action in (Action.PROMOTION_DUE, Action.RELEASED, Action.SKIPPED)] == []
    waits = waiting_for(world.record(), policy, "prod", world.clock.now())
    assert any("on its evidence" in w for w in waits) and any("content digest" in w for w in waits)
    # What it waits for is said where a person looks (gitops status NAME), not as a failure each pass.
    from gitops.cli.describe_cmds import describe

    (line,) = [x for x in describe(world.lifecycle, world.record(), now=world.clock.now()).splitlines() if "promotion" in x]
    assert line.startswith("promotion  to prod: waits for the gate passed in dev on its evidence"), line
    assert "a content digest of the model" in line
