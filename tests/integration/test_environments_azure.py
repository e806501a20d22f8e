"""#27 on the Azure ML backend, in the virtual Azure world (the real SDK against the fake REST API, a virtual clock):
a version live in dev is shared into the organisation's Azure ML registry (the import started, not awaited: it
copies for a while), its promotion made due once the registry has it, and, released, rolled out in prod's own
workspace from the registry's copy, held to the content digest the job's model_digest step wrote; nothing trains
again and dev is untouched. No invocation waits on Azure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.lifecycle.parts import Action
from gitops.spec.policy import Policy, parse_policy
from tests.fakes.azureml_api import azure_backend_for
from tests.virtual_azure import RUN, World, virtual_world

HOUR = 3600.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with virtual_world(tmp_path) as w:
        w.fake.add_registry("acme-models")
        w.fake.add_workspace("rg-prod", "ws-prod")
        w.fake.provisioning_s["import"] = 20 * 60.0  # the registry copies the model for 20 minutes
        w.lifecycle.backend_in = lambda name, ref: azure_backend_for(w.fake, ref)
        yield w


def _policy(world: World) -> Policy:
    f = world.fake
    text = (
        "registry: {name: acme-models}\nenvironments:\n"
        f"  - name: dev\n    workspace: {{subscription: {f.subscription}, resource_group: {f.resource_group}, name: {f.workspace}}}\n"
        f"  - name: prod\n    workspace: {{subscription: {f.subscription}, resource_group: rg-prod, name: ws-prod}}\n"
        "    promotion: {soak: 1h}\n"
    )
    policy, findings = parse_policy(text, "gitops.yaml")
    assert policy is not None, findings
    return policy


def test_a_version_proven_in_dev_is_shared_released_and_rolled_out_in_prod_from_the_registry(world: World) -> None:
    policy = _policy(world)
    durations = dict(world.fake.provisioning_s)
    world.fake.provisioning_s.update(onlineendpoints=0, deployments=0)
    record = world.lifecycle.submit(world.spec(), commit="c0ffee", pr="7", policy=policy)
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    world.deliver()
    dev = world.record()
    assert dev.status == "live" and dev.model_digest == json.loads(world.fake.digest_file(record.job_name))["content_digest"]
    assert dev.gate is not None and dev.gate.get("on_evidence") is True, dev.gate
    world.fake.provisioning_s.update(durations)

    world.clock.advance(2 * HOUR)  # the soak
    calls = len(world.fake.calls)
    decided = world.lifecycle.reconcile()
    assert [d.action for d in decided if d.run == RUN and d.action == Action.PROMOTION_DUE] == []  # the copy takes a while
    (sharing,) = world.record().promotions
    assert sharing.state == "sharing" and sharing.version == dev.model_version and len(world.fake.import_requests) == 1
    assert len(world.fake.calls) - calls < 20  # a few calls, none of them a wait on the copy
    world.lifecycle.reconcile()
    assert len(world.fake.import_requests) == 1 and world.record().promotions[0].state == "sharing"  # not started twice

    world.clock.advance(21 * 60)
    (due,) = [d for d in world.lifecycle.reconcile() if d.action == Action.PROMOTION_DUE]
    (promotion,) = world.record().promotions
    assert promotion.state == "due" and promotion.digest == dev.model_digest
    (listed,) = world.lifecycle.due()
    assert listed.promotion.job_name == record.job_name

    started = world.lifecycle.release(RUN, "prod", by="a reviewer of GitHub Environment prod", job=record.job_name)
    assert started.key == f"{RUN}.prod" and started.cursor is not None
    invocations = len(world.invocations)
    world.deliver()  # prod's endpoint and deployment provision for Azure's minutes, between invocations
    assert all(seconds == 0 for _, _, seconds in world.invocations[invocations:])  # none waited inside
    prod = world.lifecycle.ledger.get(f"{RUN}.prod")
    assert prod is not None
    live = prod[0]
    assert live.status == "live", (live.error, [h.note for h in live.history][-6:])
    assert live.model_digest == dev.model_digest and live.model_version == dev.model_version
    # Prod serves the registry's copy, from its own workspace, on an endpoint of its own.
    stored = world.fake.resources
    suffix = f"/onlineendpoints/{live.endpoint}/deployments/{live.deployment}".lower()
    (deployment,) = [body for path, body in stored.items() if "/workspaces/ws-prod/" in path and path.endswith(suffix)]
    assert deployment["properties"]["model"] == f"azureml://registries/acme-models/models/{promotion.model}/versions/{promotion.version}"
    assert live.endpoint != dev.endpoint and world.record().deployment == dev.deployment  # dev untouched
    assert [p for p in stored if "/workspaces/ws-prod/jobs/" in p] == []  # nothing trained in prod
    assert len([p for p in stored if "/workspaces/ws-ml/jobs/" in p]) == 1  # one job in all
