"""``gitops watch`` and its timer: the world moved (a model archived and retired, a SKU retired, a newer version
published) and endpoints drifted (traffic moved by hand, a deployment added in the portal). Azure through the real
SDK against the fake REST API on a virtual clock; the local backend with a real endpoint server."""

from __future__ import annotations

import copy
from typing import Any

from gitops.spec.validate import validate_file, validate_text
from gitops.watch.findings import WATCH_MARKER, render_markdown
from gitops.watch.scan import ledger_specs, restore, retire_if_gone, scan
from tests.conftest import REPO_ROOT
from tests.integration.test_rollout_time import RUN, SPEC, World, world  # noqa: F401  (the fixture)

SEED = REPO_ROOT / "examples" / "phi3-mini-ultrachat.yaml"


def _scan(w: World, specs: list[tuple[str, Any]]) -> Any:
    return scan(specs, w.lifecycle.ledger, lambda _: w.backend, w.clock.now(), repo=w.lifecycle.repo)


def _restore(w: World, record: Any, apply: bool) -> list[str]:
    return restore(record, w.backend, w.clock.now(), apply=apply, repo=w.lifecycle.repo)


def test_the_seeds_spec_is_found_archived_and_retired_with_phi4_named(world: World) -> None:  # noqa: F811
    result = _scan(world, [("phi3-mini-ultrachat", validate_file(SEED).valid())])
    by_subject = {(f.kind, f.subject): f for f in result.findings}
    archived = by_subject[("model", "model.version")]
    assert archived.severity == "error" and "archived" in archived.what and "Phi-4" in archived.fix
    retired = [f for f in result.findings if f.kind == "model" and "retired on 2025-08-30" in f.what]
    assert retired and all(f.since == "2025-08-30" for f in retired)
    sku = by_subject[("sku", "deploy.instance_type")]
    assert "Standard_NC6s_v3" in sku.what and sku.since == "2025-09-30"
    body = render_markdown(result.findings, "2026-11-25 06:00 UTC")
    assert body.startswith(WATCH_MARKER) and "| ❌ | `phi3-mini-ultrachat` | `model.version` |" in body


def test_a_newer_unarchived_version_of_the_model_is_a_note_naming_the_edit(world: World) -> None:  # noqa: F811
    v8 = world.fake.get_resource(f"{world.fake.registry_path}/models/Phi-4/versions/8")
    assert v8 is not None
    newer, archived = copy.deepcopy(v8), copy.deepcopy(v8)
    archived["properties"]["isArchived"] = True
    world.fake.add_model(newer, "Phi-4", "9")
    world.fake.add_model(archived, "Phi-4", "10")
    result = _scan(world, [(RUN, world.spec().valid())])
    (note,) = [f for f in result.findings if f.subject == "model.version"]
    assert note.severity == "note" and note.fix == 'model.version: "9"' and "pins 8" in note.what


def test_traffic_moved_by_hand_is_drift_and_fix_restores_it_on_managed_endpoints_only(world: World) -> None:  # noqa: F811
    serving = world.live_first_version()
    record = world.record()
    endpoint = str(record.endpoint)
    # Someone, in the portal: a deployment of their own on our endpoint, half the traffic to it...
    extra = copy.deepcopy(world.fake.get_resource(f"{world.fake.ws_path}/onlineEndpoints/{endpoint}/deployments/{serving}"))
    assert extra is not None
    extra["name"] = "handmade"
    world.fake.put_resource(f"{world.fake.ws_path}/onlineEndpoints/{endpoint}/deployments/handmade", extra)
    body = world.fake.endpoint_body(endpoint)
    body["properties"]["traffic"] = {serving: 50, "handmade": 50}
    # ...and an endpoint nobody here manages, drifting as it likes.
    world.fake.put_resource(f"{world.fake.ws_path}/onlineEndpoints/theirs", {**copy.deepcopy(body), "name": "theirs", "tags": {}})
    result = _scan(world, ledger_specs(world.lifecycle.ledger.list()))
    drift = {f.subject: f for f in result.findings if f.kind == "drift"}
    assert set(drift) == {f"{endpoint} traffic", f"{endpoint} deployments"}, result.findings
    assert "handmade 50%" in drift[f"{endpoint} traffic"].what and drift[f"{endpoint} traffic"].fixable
    assert all("theirs" not in f.subject for f in result.findings)

    calls = len(world.fake.calls)
    dry = _restore(world, record, apply=False)
    assert any("-> " + serving + " 100%" in line for line in dry)
    assert not [c for c in world.fake.calls[calls:] if c[0] in ("PUT", "POST", "DELETE", "PATCH")]  # a dry run writes nothing
    _restore(world, record, apply=True)
    world.deliver()
    world.clock.advance(300)
    restore(
        record, world.backend, world.clock.now(), apply=True, repo=world.lifecycle.repo
    )  # the handmade one goes once it takes no traffic
    world.clock.advance(300)
    assert world.fake.endpoint_body(endpoint)["properties"]["traffic"] == {serving: 100, "handmade": 0} or world.fake.endpoint_body(
        endpoint
    )["properties"]["traffic"] == {serving: 100}
    assert world.fake.deployments(endpoint) == [serving]
    assert world.fake.endpoint_body("theirs")["properties"]["traffic"] == {serving: 50, "handmade": 50}
    writes = [c for c in world.fake.calls if c[0] in ("PUT", "DELETE", "PATCH") and "/onlineEndpoints/theirs" in c[1]]
    assert writes == [] and not [f for f in _scan(world, []).findings if f.kind == "drift"]


def test_a_keep_run_is_reported_and_never_fixed(world: World) -> None:  # noqa: F811
    assert "  keep: false" in SPEC
    kept = validate_text(SPEC.replace("  keep: false", "  keep: true"), f"runs/{RUN}.yaml")
    assert kept.ok, kept.findings
    record = world.lifecycle.submit(kept)
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    world.deliver()
    live = world.record()
    world.fake.endpoint_body(str(live.endpoint))["properties"]["traffic"] = {}
    result = _scan(world, [])
    (traffic,) = [f for f in result.findings if f.subject.endswith("traffic")]
    assert not traffic.fixable
    assert _restore(world, live, apply=True) == [f"{RUN}: left alone (lifecycle.keep is set)"]
    assert world.fake.endpoint_body(str(live.endpoint))["properties"]["traffic"] == {}


def test_an_endpoint_gone_is_found_and_reconcile_records_the_run_retired(world: World) -> None:  # noqa: F811
    world.live_first_version()
    endpoint = str(world.record().endpoint)
    world.fake.resources = {k: v for k, v in world.fake.resources.items() if f"/onlineendpoints/{endpoint}".lower() not in k}
    result = _scan(world, [])
    (gone,) = [f for f in result.findings if f.kind == "gone"]
    assert gone.severity == "error" and f"`gitops reconcile {RUN}`" in gone.fix
    assert retire_if_gone(world.lifecycle.ledger, RUN, world.backend, world.clock.now()) is not None
    assert world.record().status == "retired"
    back = world.lifecycle.submit(world.spec())  # the same spec merged again deploys its trained model anew
    assert back.status == "completed" and back.cursor is not None and "brought back" in back.history[-1].note


def test_an_archived_version_with_a_current_one_names_that_version_not_a_successor(world: World) -> None:  # noqa: F811
    v8 = world.fake.get_resource(f"{world.fake.registry_path}/models/Phi-4/versions/8")
    assert v8 is not None
    current = copy.deepcopy(v8)
    v8["properties"]["isArchived"] = True  # the pinned version, archived since the merge
    world.fake.add_model(current, "Phi-4", "9")
    result = _scan(world, [(RUN, world.spec().valid())])
    (archived,) = [f for f in result.findings if f.subject == "model.version"]
    assert archived.severity == "error" and "archived" in archived.what
    assert archived.fix == 'model.version: "9" (a current version of the same model)'
