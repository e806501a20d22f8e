"""Rollouts on Azure's time, on a virtual clock: the real SDK against the fake REST API, whose endpoints and
deployments take virtual minutes to provision, and a queue that hands step messages back when they are due.

What these prove, without waiting: no invocation waits on Azure (the clock never moves inside one, and each
makes a bounded number of HTTP calls), duplicates and kills never act twice, and failures and deadlines roll
back with the old deployment serving throughout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.ledger.transitions import Asker, RunStatus
from gitops.lifecycle.flow import Decision, Lifecycle
from gitops.lifecycle.parts import CLAIM_LEASE_S
from gitops.spec.validate import SpecValidation, validate_text
from tests.virtual_azure import MAX_CALLS_PER_INVOCATION, RUN, SPEC, Killed, VirtualClock, World, virtual_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with virtual_world(tmp_path) as w:
        yield w


def test_a_twenty_minute_deployment_completes_through_queue_messages_without_waiting(world: World) -> None:
    job = world.submit_completed()
    started = world.clock.now()
    (decision,) = world.lifecycle.on_job_event(world.event(job))
    assert decision.action == "scheduled" and world.clock.now() == started and len(world.queue) == 1
    world.deliver()
    live = world.record()
    assert live.status == "live" and live.cursor is None and live.claim is None
    assert world.clock.now() - started >= 20 * 60 + 90  # Azure's time passed between invocations...
    assert all(seconds == 0 for _, _, seconds in world.invocations)  # ...never inside one: nothing waited
    assert max(calls for _, calls, _ in world.invocations) <= MAX_CALLS_PER_INVOCATION
    waits = [d for d, _, _ in world.invocations if d.action == "waiting"]
    assert 15 <= len(waits) <= 40, [d.reason for d in waits]
    # create_deployment waits too: its pending mark leaves the endpoint Updating, and Azure refuses a deployment PUT
    # until the endpoint has settled (tests/contracts/reported); the one PUT below was never refused.
    assert all(d.reason.startswith(("await_endpoint", "create_deployment", "await_deployment", "await_traffic")) for d in waits), [
        d.reason for d in waits
    ]
    assert world.fake.endpoint_body(live.endpoint)["properties"]["traffic"] == {live.deployment: 100}
    assert len(world.deployment_puts()) == 1
    notes = [h.note for h in live.history]
    assert "endpoint " + str(live.endpoint) + " ready" in notes and f"deployment {live.deployment} ready" in notes
    # The model carries the content digest its job's model_digest step computed (#27): read, never downloaded.
    import json

    assert live.model_digest == json.loads(world.fake.digest_file(job))["content_digest"]


def test_redelivered_and_duplicate_events_during_a_rollout_make_one_deployment(world: World) -> None:
    job = world.submit_completed()
    world.lifecycle.on_job_event(world.event(job, "e1"))
    for minute in range(0, 25, 5):  # Event Grid redelivers (same id), and a second event type arrives (new id)
        world.clock.advance(5 * 60)
        actions = [d.action for d in world.lifecycle.on_job_event(world.event(job, "e1"))]
        actions += [d.action for d in world.lifecycle.on_job_event(world.event(job, f"status-{minute}"))]
        assert "scheduled" not in actions, actions
        for message in world.queue.due(world.clock.now()):
            world.lifecycle.advance(message.run)
    world.deliver()
    assert world.record().status == "live" and len(world.deployment_puts()) == 1
    assert len(world.fake.model_versions("Phi-4-ultrachat-200k")) == 1


@pytest.mark.parametrize(
    "dies_in",
    ["get_job", "register_model", "get_endpoint", "begin_deployment", "get_deployment", "invoke", "begin_traffic", "delete_deployment"],
)
def test_a_process_killed_in_any_step_is_resumed_by_the_timer_without_acting_twice(world: World, dies_in: str) -> None:
    old = world.live_first_version()
    job = world.submit_completed(lr="6.0e-6")

    class Dying:
        died = False

        def __getattr__(self, name: str) -> Any:
            real = getattr(world.backend, name)
            if name != dies_in or Dying.died:
                return real

            def die(*args: Any, **kwargs: Any) -> Any:
                real(*args, **kwargs)
                Dying.died = True
                raise Killed()

            return die

    dying = Lifecycle(
        world.lifecycle.ledger,
        lambda name: Dying(),
        topic=world.backend.topic,
        queue=world.queue,
        clock=world.clock.now,
        reader_for=world.fake.mlflow.reader,
    )
    world.lifecycle.on_job_event(world.event(job))
    with pytest.raises(Killed):
        world.deliver(lifecycle=dying)
    stuck = world.record()
    assert stuck.status in ("submitted", "deploying") and stuck.cursor is not None and stuck.claim is not None
    assert sum(world.fake.endpoint_body(stuck.endpoint)["properties"]["traffic"].values()) == 100  # one version serves meanwhile
    died_at = world.clock.now()
    assert world.lifecycle.reconcile() == []  # the claim's short lease still runs
    world.clock.advance(CLAIM_LEASE_S + 1)  # the next reconcile tick after the lease
    assert [d.action for d in world.lifecycle.reconcile()] == ["scheduled"]
    world.deliver()
    healed = world.record()
    assert healed.status == "live" and healed.deployment != old
    assert world.fake.endpoint_body(healed.endpoint)["properties"]["traffic"] == {healed.deployment: 100}
    assert len(world.deployment_puts()) == 2  # v1 and v2, each created once
    assert len(world.fake.model_versions("Phi-4-ultrachat-200k")) == 2
    assert world.clock.now() - died_at < 30 * 60  # healed in minutes, not after an hour's lease


def test_provisioning_that_fails_at_azure_rolls_back_and_the_old_deployment_keeps_serving(world: World) -> None:
    old = world.live_first_version()
    world.fake.deployment_state = "Failed"
    job = world.submit_completed(lr="6.0e-6")
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    after = world.record()
    assert after.status == "rolled_back" and after.deployment == old and after.cursor is None
    assert "provisioning failed" in (after.error or "") and "get-logs" in (after.error or "")
    endpoint = world.fake.endpoint_body(str(after.endpoint))
    assert endpoint["properties"]["traffic"] == {old: 100}
    world.clock.advance(600)
    assert world.fake.deployments(after.endpoint) == [old]  # the failed candidate was deleted


def test_a_deployment_past_its_deadline_rolls_back(world: World) -> None:
    old = world.live_first_version()
    world.fake.provisioning_s["deployments"] = 3 * 3600  # stuck provisioning (quota, image pulls): never finishes in time
    job = world.submit_completed(lr="6.0e-6")
    world.lifecycle.on_job_event(world.event(job))
    started = world.clock.now()
    world.deliver()
    after = world.record()
    assert after.status == "rolled_back" and after.deployment == old
    assert "did not finish within 45m" in (after.error or "")  # gitops.yaml's default deadline for a deployment
    assert 45 * 60 <= world.clock.now() - started < 50 * 60
    assert world.fake.endpoint_body(after.endpoint)["properties"]["traffic"] == {old: 100}


def test_a_spec_may_set_its_own_deadline(world: World) -> None:
    world.live_first_version()
    world.fake.provisioning_s["deployments"] = 3 * 3600
    text = SPEC.replace("learning_rate: 5.0e-6", "learning_rate: 7.0e-6").replace(
        "request_timeout_ms: 90000", "request_timeout_ms: 90000\n  timeouts: {deployment: 20m}"
    )
    validated = validate_text(text, f"runs/{RUN}.yaml")
    assert validated.ok, validated.findings
    record = world.lifecycle.submit(validated)
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    world.deliver()
    assert "did not finish within 20m" in (world.record().error or "")


def test_a_new_version_during_a_rollout_waits_for_it_then_rolls_out(world: World) -> None:
    """The rule: a rollout in progress finishes; a version merged meanwhile trains at once and rolls out after."""
    v2 = world.second_version_rolling_out()  # v2's deployment is provisioning
    v3_record = world.lifecycle.submit(world.spec(lr="7.0e-6"))
    assert v3_record.job_name == v2 and v3_record.queued is not None  # the record still rolls v2 out
    v3 = v3_record.queued.job_name
    assert world.lifecycle.on_job_event(world.event(v3, "v3-early"))[0].action == "recorded"  # its job is not done
    world.fake.set_job_status(v3, "Completed")
    endpoint = world.record().endpoint
    peak = 0
    for _ in range(400):  # deliver message by message, watching the endpoint between them
        prefix = f"{world.fake.ws_path}/onlineEndpoints/{endpoint}/deployments"
        peak = max(peak, sum(1 for d in world.fake.children(prefix) if d["properties"]["provisioningState"] != "Deleting"))
        nxt = world.queue.next_at()
        if nxt is None:
            break
        world.clock.advance(max(0.0, nxt - world.clock.now()))
        for message in world.queue.due(world.clock.now()):
            world.lifecycle.advance(message.run)
    final = world.record()
    assert final.status == "live" and final.job_name == v3 and final.queued is None and final.previous_job == v2
    assert peak == 2  # never two rollouts on one endpoint: the serving deployment and one candidate at most
    assert [h.note for h in final.history if h.note.startswith("queued version")] == [f"queued version: job {v3}"]


def test_a_record_written_before_cursors_is_continued(world: World) -> None:
    job = world.submit_completed()
    got = world.lifecycle.ledger.get(RUN)
    assert got is not None
    legacy = got[0].moved(RunStatus.DEPLOYING, "job completed", by=Asker.STEP).model_copy(update={"claimed_until": world.clock.now() - 1})
    world.lifecycle.ledger.put(legacy, got[1])  # what the one-shot handler left when its process died
    assert [d.action for d in world.lifecycle.reconcile()] == ["scheduled"]
    world.deliver()
    assert world.record().status == "live" and world.record().job_name == job


def test_a_forged_completed_event_for_a_running_job_changes_nothing(world: World) -> None:
    record = world.lifecycle.submit(world.spec())
    world.fake.set_job_status(record.job_name, "Running")
    assert world.lifecycle.on_job_event(world.event(record.job_name, "forged"))[0].action == "scheduled"
    world.deliver()
    after = world.record()
    assert after.status == "running" and after.cursor is None and world.fake.endpoint(str(after.endpoint)) is None
    assert "nothing to do until it ends" in after.history[-1].note
    # a second hint while the run is already running: the job is read again, and the run stays running, free
    assert world.lifecycle.on_job_event(world.event(record.job_name, "forged-again"))[0].action == "scheduled"
    world.deliver()
    again = world.record()
    assert again.status == "running" and again.cursor is None and again.claim is None, again.history[-1]
    world.fake.set_job_status(record.job_name, "Completed")  # the real event, later, still works
    assert world.lifecycle.on_job_event(world.event(record.job_name, "real"))[0].action == "scheduled"
    world.deliver()
    assert world.record().status == "live"


def test_a_job_check_past_its_deadline_fails_the_run_and_frees_it(world: World) -> None:
    """Checking the job is the rollout's first step: nothing is deployed yet, so a failure there (its deadline
    passed while the queue was down) fails the run at once; it never strands the run under a cursor."""
    job = world.submit_completed()
    assert world.lifecycle.on_job_event(world.event(job))[0].action == "scheduled"
    world.clock.advance(31 * 60)  # the register phase's 30 minutes, and more, before the message is taken
    world.deliver()
    after = world.record()
    assert after.status == "failed" and after.cursor is None and after.claim is None, after.history[-1]
    assert after.error == "check_job did not finish within 30m"
    assert world.fake.endpoint(str(after.endpoint)) is None  # nothing was deployed, nothing to roll back


def test_a_move_no_rule_allows_is_an_error_to_see_never_a_lost_claim(world: World) -> None:
    """A record no version writes (live, under a rollout cursor at its last step) asks for live -> live: the
    TransitionError reaches the message's host (its retries, then the poison queue) and the claim is released."""
    from gitops.errors import TransitionError
    from gitops.ledger.model import Cursor, update

    job = world.submit_completed()
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    live, now = world.record(), world.clock.now()
    cursor = Cursor(step="retire_previous", entered_at=now, not_before=now, deadline_at=now + 600, started_at=now, endpoint=live.endpoint)
    update(world.lifecycle.ledger, RUN, lambda r: r.model_copy(update={"cursor": cursor}))
    with pytest.raises(TransitionError, match="live -> live is not a move a run makes"):
        world.lifecycle.advance(RUN)
    after = world.record()
    assert after.claim is None and after.cursor is not None and after.status == "live"


def test_an_endpoint_of_another_run_is_never_taken_over(world: World) -> None:
    job = world.submit_completed()
    endpoint = world.record().endpoint
    world.backend.begin_endpoint(endpoint, {"managed_by": "finetune-gitops", "gitops_repo": "acme/models", "gitops_run": "someone-else"})
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    after = world.record()
    assert after.status == "rolled_back" and "belongs to run 'someone-else'" in (after.error or "")
    assert world.fake.endpoint_body(endpoint)["tags"]["gitops_run"] == "someone-else" and world.deployment_puts() == []


def test_the_repo_policy_sets_the_deadlines_a_run_keeps(world: World) -> None:
    from gitops.spec.policy import Policy, RolloutPolicy

    record = world.lifecycle.submit(world.spec(), policy=Policy(rollout=RolloutPolicy(deployment="90m")))
    assert record.timeouts.deployment == 90 * 60 and record.timeouts.endpoint == 30 * 60


def test_with_environments_a_run_keeps_the_first_environment_s_rules_and_acts_only_in_its_workspace(world: World) -> None:
    """#27: a merge trains and rolls out in the first environment, under its rules (its gate and deadlines, kept on
    the run) and with the whole policy kept for what comes after; a deployment set up for another workspace refuses."""
    from gitops.errors import ConfigurationError
    from gitops.spec.policy import parse_policy

    f = world.fake
    text = (
        "registry: {name: acme-models}\nenvironments:\n"
        f"  - name: dev\n    workspace: {{subscription: {f.subscription}, resource_group: {f.resource_group}, name: WORKSPACE}}\n"
        "    policy:\n      gate: {conversations: 8}\n      rollout: {deployment: 90m}\n"
        f"  - name: prod\n    workspace: {{subscription: {f.subscription}, resource_group: {f.resource_group}, name: ws-prod}}\n"
    )
    elsewhere, _ = parse_policy(text.replace("WORKSPACE", "ws-elsewhere"), "gitops.yaml")
    assert elsewhere is not None
    with pytest.raises(ConfigurationError, match="trains and rolls out in dev"):
        world.lifecycle.submit(world.spec(), policy=elsewhere)
    assert world.lifecycle.ledger.list() == [] and not [u for m, u in f.calls if m == "PUT" and "/jobs/" in u]
    here, _ = parse_policy(text.replace("WORKSPACE", f.workspace), "gitops.yaml")
    assert here is not None
    record = world.lifecycle.submit(world.spec(), policy=here)
    assert record.gate_rules.conversations == 8 and record.timeouts.deployment == 90 * 60
    assert [e["name"] for e in (record.policy or {})["environments"]] == ["dev", "prod"]


class EventGrid:
    """Event Grid's push delivery, on the virtual clock: a delivery the handler has not acknowledged within 30 s
    (or that raised) is delivered again after 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, then hourly."""

    ACK_S = 30.0
    RETRIES = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0) + (3600.0,) * 23

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.deliveries = 0

    def deliver(self, event: dict[str, Any], handler: Any, limit: int = 12) -> int:
        """Deliver until acknowledged in time; returns how many deliveries it took."""
        for attempt in range(limit):
            self.deliveries += 1
            started = self.clock.now()
            try:
                handler(event)
                acknowledged = self.clock.now() - started <= self.ACK_S
            except Exception:  # noqa: BLE001  (any failure is a delivery Event Grid retries)
                acknowledged = False
            if acknowledged:
                return attempt + 1
            self.clock.advance(self.RETRIES[attempt])
        return limit


def test_event_grid_needs_one_delivery_where_the_in_handler_flow_was_redelivered(world: World) -> None:
    grid = EventGrid(world.clock)
    job = world.submit_completed()
    assert grid.deliver(world.event(job, "e1"), world.lifecycle.on_job_event) == 1
    world.deliver()
    assert world.record().status == "live"

    # The flow as it was: the whole rollout inside the handler, waiting on Azure; Event Grid gives up waiting.
    job2 = world.submit_completed(lr="6.0e-6")

    def in_handler(event: dict[str, Any]) -> None:
        for decision in world.lifecycle.on_job_event(event):
            if decision.action == "scheduled" and decision.run:
                world.lifecycle.settle(decision.run, sleep=world.clock.advance)

    deliveries = grid.deliver(world.event(job2, "e2"), in_handler)
    assert deliveries > 1  # redelivered while the deployment provisioned
    assert world.record().status == "live" and len(world.deployment_puts()) == 2  # and still one deployment per version


def test_a_name_azure_has_not_released_yet_is_waited_for_then_the_rollout_goes_on(world: World) -> None:
    """Cleanup deleted the endpoint; the run comes back and re-creates the name at once (reported: 404
    InferencingClientCallFailed for a while): the step waits and tries again instead of failing."""
    body = {
        "code": "NotFound",
        "message": "Resource not found",
        "details": [{"code": "InferencingClientCallFailed", "message": "The endpoint could not be created"}],
    }
    world.fake.fail_next.extend([(r"^PUT .*onlineEndpoints/ultrachat-completion\?", 404, {}, body)] * 2)
    job = world.submit_completed()
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    live = world.record()
    assert live.status == "live"
    waited = [d.reason for d, _, _ in world.invocations if d.action == "waiting" and d.reason.startswith("ensure_endpoint")]
    assert len(waited) == 2 and "deleted recently" in waited[0]


def test_a_second_spec_on_the_same_endpoint_is_refused_at_submit(world: World) -> None:
    from gitops.errors import ConflictError

    world.lifecycle.submit(world.spec())
    other = validate_text(SPEC.replace(f"name: {RUN}", "name: copycat").replace("Phi-4-ultrachat-200k", "copycat"), "runs/copycat.yaml")
    assert other.ok, other.findings
    with pytest.raises(ConflictError, match=f"already serves run '{RUN}'"):
        world.lifecycle.submit(other)
    assert world.lifecycle.ledger.get("copycat") is None and len([u for m, u in world.fake.calls if m == "PUT" and "/jobs/" in u]) == 1


def test_a_failed_job_is_retried_as_a_new_attempt_with_a_cap(world: World) -> None:
    from gitops.errors import ConflictError

    record = world.lifecycle.submit(world.spec())
    first = record.job_name
    world.fake.set_job_status(first, "Failed")
    world.lifecycle.on_job_event(world.event(first))
    world.deliver()
    assert world.record().status == "failed"
    retried = world.lifecycle.retry(RUN, who="tester")
    assert retried.job_name == f"{first}-a2" and retried.attempt == 2 and retried.status == "submitted"
    assert world.lifecycle.retry(RUN).job_name == f"{first}-a2"  # asked twice: one new job
    assert len([u for m, u in world.fake.calls if m == "PUT" and "/jobs/" in u]) == 2
    world.fake.set_job_status(retried.job_name, "Failed")
    world.lifecycle.reconcile()
    world.deliver()
    assert world.lifecycle.submit(world.spec()).job_name == f"{first}-a3"  # the same spec merged again: the next attempt
    world.fake.set_job_status(f"{first}-a3", "Completed")
    world.lifecycle.on_job_event(world.event(f"{first}-a3"))
    world.deliver()
    assert world.record().status == "live"
    world.fake.set_job_status(f"{first}-a3", "Failed")  # (pretend) so the cap can be shown
    got = world.lifecycle.ledger.get(RUN)
    assert got is not None
    world.lifecycle.ledger.put(got[0].model_copy(update={"status": "failed"}), got[1])  # a record as a failed attempt leaves it
    with pytest.raises(ConflictError, match="3 attempts"):
        world.lifecycle.retry(RUN)


def test_a_deployment_change_during_a_rollout_waits_and_then_redeploys_the_same_model(world: World) -> None:
    """A redeploy-only version merged while a rollout runs starts no job: it is queued with the job it follows."""
    v2 = world.second_version_rolling_out()
    text = world.spec(lr="6.0e-6").source or ""
    redeploy = validate_text(text.replace("request_timeout_ms: 90000", "request_timeout_ms: 60000"), f"runs/{RUN}.yaml")
    assert redeploy.ok, redeploy.findings
    queued = world.lifecycle.submit(redeploy).queued
    assert queued is not None and queued.job_name == v2  # no second job for the same training
    jobs_before = [u for m, u in world.fake.calls if m == "PUT" and "/jobs/" in u]
    world.deliver()
    final = world.record()
    assert final.status == "live" and final.job_name == v2 and final.queued is None
    assert final.spec["deploy"]["request_timeout_ms"] == 60000
    assert [u for m, u in world.fake.calls if m == "PUT" and "/jobs/" in u] == jobs_before
    notes = [h.note for h in final.history if h.note.startswith("queued version")]
    assert notes == [f"queued version: redeploy of job {v2}"]
    assert len({u.rsplit("/deployments/", 1)[1].split("?")[0] for u in world.deployment_puts()}) == 3  # v1, v2, v2 again


def test_a_new_version_while_one_is_held_removes_the_held_candidate_and_rolls_out(world: World) -> None:
    serving = world.live_first_version()
    world.fake.scorer = lambda endpoint, deployment, body: (
        200,
        [{"0": "It matters because life on Earth depends on it."}] if deployment == serving else [{"0": "zzz"}],
    )
    v2 = world.submit_completed(lr="6.0e-6")
    world.lifecycle.on_job_event(world.event(v2))
    world.deliver(until="held")
    held = world.record()
    assert held.status == "held" and held.cursor is not None and held.cursor.plan == "hold"
    assert all(seconds == 0 for _, _, seconds in world.invocations)  # the evaluation too: slices, none waiting
    slices = [calls for d, calls, _ in world.invocations if d.reason.startswith("evaluate: gate (online): ") and " of " in d.reason]
    assert slices and max(slices) <= 4  # two conversations, to the candidate and to the serving deployment
    world.fake.scorer = lambda endpoint, deployment, body: (200, [{"0": "It matters because life on Earth depends on it."}])
    v3 = world.lifecycle.submit(world.spec(lr="7.0e-6"))
    assert v3.status == "rolling_back" and v3.queued is not None
    world.fake.set_job_status(v3.queued.job_name, "Completed")
    world.deliver()
    final = world.record()
    assert final.status == "live" and final.job_name == v3.queued.job_name and final.deployment != serving
    assert any(h.status == "rejected" and h.note.startswith("superseded by a new version while held") for h in final.history)


def test_a_rollback_while_the_job_is_being_checked_says_nothing_is_deployed_yet(world: World) -> None:
    from gitops.errors import ConflictError

    job = world.submit_completed()
    world.lifecycle.on_job_event(world.event(job))  # the cursor is on check_job: nothing deployed yet
    with pytest.raises(ConflictError, match="nothing is deployed yet") as refused:
        world.lifecycle.rollback(RUN, who="dave", reason="changed my mind")
    assert "gitops status" in (refused.value.hint or "")
    world.deliver()
    assert world.record().status == "live"  # the refusal changed nothing


def test_a_kept_previous_deployment_makes_a_rollback_of_a_live_run_instant(world: World) -> None:
    first = world.live_first_version()
    kept = SPEC.replace("learning_rate: 5.0e-6", "learning_rate: 6.0e-6").replace(
        "request_timeout_ms: 90000", "request_timeout_ms: 90000\n  keep_previous_for: 6h"
    )
    record = world.lifecycle.submit(validate_text(kept, f"runs/{RUN}.yaml"))
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    world.deliver()
    live = world.record()
    assert live.status == "live" and live.previous_deployment == first and live.previous_kept_until is not None
    endpoint = live.endpoint or ""
    assert first in world.fake.deployments(endpoint)  # kept at 0%
    world.lifecycle.rollback(RUN, "carol", "the new one is rude")
    world.deliver()
    back = world.record()
    assert back.status == "rolled_back" and back.deployment == first
    assert world.fake.endpoint_body(endpoint)["properties"]["traffic"] == {first: 100}


def test_a_rollback_of_a_live_run_whose_previous_deployment_is_gone_deploys_the_previous_model_again(world: World) -> None:
    world.live_first_version()
    v1 = world.record()
    v2 = world.submit_completed(lr="6.0e-6")
    world.lifecycle.on_job_event(world.event(v2))
    world.deliver()
    assert world.record().status == "live" and world.record().job_name == v2
    jobs = [u for m, u in world.fake.calls if m == "PUT" and "/jobs/" in u]
    world.lifecycle.rollback(RUN, "dave", "v2 answers badly")
    world.deliver()
    back = world.record()
    assert back.status == "live" and back.job_name == v1.job_name and back.model_version == v1.model_version
    assert any(h.note.startswith("rolled back by dave: v2 answers badly") for h in back.history)
    # its deployment is named whole (once `v1-rolled-b`), and the person's decision is said once, not by each gate step
    assert back.deployment is not None and back.deployment.startswith(f"v{v1.model_version}-rollback")
    assert sum("decided by dave" in h.note for h in back.history) == 1, [h.note for h in back.history]
    # The spec of v2 merged again is v2 again: deployed from its existing job, no second training.
    again = world.lifecycle.submit(world.spec(lr="6.0e-6"))
    assert again.job_name == v2
    world.fake.set_job_status(v2, "Completed")
    world.lifecycle.on_job_event(world.event(v2, "v2-again"))
    world.deliver()
    final = world.record()
    assert final.status == "live" and final.job_name == v2, [h.note for h in final.history[-6:]]
    assert [u for m, u in world.fake.calls if m == "PUT" and "/jobs/" in u] == jobs


RAMP = "request_timeout_ms: 90000\n  rollout: {steps: [10, 50, 100], hold: 10m}"


def _ramped(world: World, lr: str, rollout: str = RAMP) -> SpecValidation:
    result = validate_text(
        SPEC.replace("learning_rate: 5.0e-6", f"learning_rate: {lr}").replace("request_timeout_ms: 90000", rollout), f"runs/{RUN}.yaml"
    )
    assert result.ok, result.findings
    return result


def _users(world: World, endpoint: str, n: int) -> None:
    """Users' requests to the endpoint (split by its traffic), at the virtual time Azure Monitor stamps them with."""
    key = world.fake.endpoint_body(endpoint)["_keys"]["primaryKey"]
    import requests

    for _ in range(n):
        requests.post(
            f"https://{endpoint}.{world.fake.location}.inference.ml.azure.com/score",
            timeout=5,
            headers={"Authorization": f"Bearer {key}"},
            json={"input_data": {"input_string": [{"role": "user", "content": "hi"}], "parameters": {}}},
        )


def test_gradual_traffic_takes_three_holds_of_ten_minutes_without_an_invocation_waiting(world: World) -> None:
    first = world.live_first_version()
    world.fake.provisioning_s.update(deployments=0)
    record = world.lifecycle.submit(_ramped(world, "6.0e-6"))
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    started, splits = world.clock.now(), []

    def users(decision: Decision) -> None:  # while a share is held, users send requests
        if decision.action == "waiting" and "watched for" in decision.reason:
            endpoint = world.record().endpoint or ""
            splits.append(dict(world.fake.endpoint_body(endpoint)["properties"]["traffic"]))
            _users(world, endpoint, 40)

    world.deliver(on_decision=users)
    assert all(seconds == 0 for _, _, seconds in world.invocations)  # no invocation waited for a hold
    live = world.record()
    assert live.status == "live" and live.job_name == record.job_name, [h.note for h in live.history[-5:]]
    assert [s.get(live.deployment) for s in splits] == [10, 50] and all(s.get(first) == 100 - s[live.deployment] for s in splits)
    assert [s.share for s in live.rollout_steps] == [10, 50] and all(s.ok for s in live.rollout_steps)
    assert world.clock.now() - started >= 20 * 60  # two holds of ten minutes passed between invocations
    assert world.fake.endpoint_body(live.endpoint or "")["properties"]["traffic"] == {live.deployment: 100}


def test_unreadable_traffic_metrics_never_promote_the_ramp_times_out_and_rolls_back(world: World) -> None:
    first = world.live_first_version()
    world.fake.provisioning_s.update(deployments=0)
    world.fake.metric_errors[world.record().endpoint or ""] = "InsufficientPermissions"
    record = world.lifecycle.submit(_ramped(world, "6.0e-6", "request_timeout_ms: 90000\n  rollout: {steps: [20, 100], hold: 5m}"))
    world.fake.set_job_status(record.job_name, "Completed")
    world.lifecycle.on_job_event(world.event(record.job_name))
    world.deliver()
    after = world.record()
    assert after.status == "rolled_back" and after.deployment == first, [h.note for h in after.history[-4:]]
    assert "ramp did not finish" in (after.error or "") and "cannot be read" in (after.error or "")
    assert world.fake.endpoint_body(after.endpoint or "")["properties"]["traffic"] == {first: 100}


def test_a_forged_failed_event_for_a_running_job_marks_nothing_failed(world: World) -> None:
    record = world.lifecycle.submit(world.spec())
    world.fake.set_job_status(record.job_name, "Running")
    forged = world.fake.job_event(record.job_name, "failed")
    assert world.lifecycle.on_job_event(forged)[0].action == "scheduled"
    world.deliver()
    after = world.record()
    assert after.status == "running" and after.error is None and after.cursor is None  # the job's own state decided


def test_a_job_that_stops_responding_is_a_failure_not_ignored(world: World) -> None:
    """NotResponding is a terminal JobStatus of azure-ai-ml: its RunStatusChanged event once needed "no action"."""
    record = world.lifecycle.submit(world.spec())
    world.fake.set_job_status(record.job_name, "NotResponding")
    event = world.fake.job_event(record.job_name, "NotResponding")
    assert world.lifecycle.on_job_event(event)[0].action == "scheduled"
    world.deliver()
    assert world.record().status == "failed" and world.record().cursor is None


def test_an_event_without_a_topic_is_not_ours(world: World) -> None:
    record = world.lifecycle.submit(world.spec())
    world.fake.set_job_status(record.job_name, "Completed")
    event = world.event(record.job_name)
    del event["topic"]
    (decision,) = world.lifecycle.on_job_event(event)
    assert decision.action == "ignored" and "topic (none)" in decision.reason
    assert world.record().cursor is None and len(world.queue) == 0


def test_a_serving_run_is_never_moved_to_another_endpoint_that_would_orphan_the_old_one(world: World) -> None:
    from gitops.errors import SpecError
    from gitops.ledger.model import lookup, update
    from gitops.review.check import SpecText, check_specs
    from gitops.spec.policy import Policy

    world.live_first_version()
    served_on = str(world.record().endpoint)
    moved = SPEC.replace(f"endpoint: {served_on}", "endpoint: ultrachat-moved")
    assert moved != SPEC
    with pytest.raises(SpecError, match=f"serves on endpoint {served_on}; moving it to ultrachat-moved"):
        world.lifecycle.submit(validate_text(moved, f"runs/{RUN}.yaml"))
    assert world.fake.endpoint("ultrachat-moved") is None and world.record().endpoint == served_on
    (check,) = check_specs(
        [SpecText(f"runs/{RUN}.yaml", moved)], Policy(), lambda _: world.backend, previous=lookup(world.lifecycle.ledger)
    )
    (finding,) = [f for f in check.online if f.path == "deploy.endpoint"]
    assert finding.is_error and finding.line is not None and "retire the run first" in (finding.hint or "")
    # Once the run is retired (its endpoint deleted by cleanup), the new endpoint is a fresh start.
    update(world.lifecycle.ledger, RUN, lambda r: r.retired("cleanup", world.clock.now()))
    assert world.lifecycle.submit(validate_text(moved, f"runs/{RUN}.yaml")).endpoint == "ultrachat-moved"


def test_an_endpoint_still_updating_is_waited_out_never_a_failed_rollout(world: World) -> None:
    """Azure refuses a deployment PUT into an endpoint that is Updating (tests/contracts/reported). The pending mark
    is never written right before the PUT, and the refusal itself, on a deployment or a traffic write, is a wait."""
    from pathlib import Path

    from tests.fakes.azureml_routes import busy_endpoint

    reported = (Path(__file__).parents[1] / "contracts/reported/deployment_put_endpoint_updating.txt").read_text()
    refusal = busy_endpoint("ultrachat-completion", "Updating")[2]["error"]
    assert refusal["message"].split(" in endpoint ")[0] in reported and "because it is in Updating provisioning state." in reported
    job = world.submit_completed()
    # The endpoint reads Updating (a write of ours or of Azure's own) when the rollout writes a deployment and the endpoint.
    world.fake.fail_next += [
        (r"PUT .*/onlineEndpoints/[^/]+/deployments/", 409, {}, refusal),
        (r"PUT .*/onlineEndpoints/[^/?]+\?", 400, {}, {**refusal, "code": "UserError"}),
    ]
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    live = world.record()
    assert live.status == "live", [h.note for h in live.history]
    assert not world.fake.fail_next  # both refusals were met, and waited out
    notes = " ".join(d.reason for d, _, _ in world.invocations)
    assert "still provisioning (Updating)" in notes and "failed" not in live.history[-1].note


def test_status_prices_what_the_run_has_cost_and_how_long_it_idled(world: World) -> None:
    """`gitops status NAME`: the run's cost so far and expected at the plan's prices, and the hours its deployment has
    been paid for since its last request (Azure Monitor's request figures, on the fake)."""
    from gitops.cli.describe_cmds import describe

    world.live_first_version()
    world.clock.advance(3 * 3600)
    (cost,) = [x for x in describe(world.lifecycle, world.record(), now=world.clock.now()).splitlines() if x.startswith("cost ")]
    assert cost.startswith("cost       $") and " so far (" in cost and "instance-hours); expected $" in cost, cost
    assert cost.endswith("; idle for 3h ($11.02) since its last request"), cost  # 3 h of one A100 instance, never called


def test_a_second_version_is_looked_at_near_when_its_deployment_is_expected_and_acted_on_within_seconds(world: World) -> None:
    """The record keeps how long its deployment took; the next version's waits use it (gitops.lifecycle.pacing):
    its deployment is seen within the target lag of becoming ready, in fewer looks than the backoff's."""
    from gitops.lifecycle.pacing import TARGET_LAG_S, backoff_looks

    job = world.submit_completed()
    world.lifecycle.on_job_event(world.event(job))
    world.deliver()
    first = world.record()
    (past,) = first.provisioned["deployment standard_nc24ads_a100_v4"]
    assert 20 * 60 <= past <= 20 * 60 + 60  # 20 minutes, as the fake took, seen within the backoff's minute
    v2 = world.submit_completed(lr="6.0e-6")
    world.lifecycle.on_job_event(world.event(v2))
    world.invocations.clear()
    world.deliver()
    second = world.record()
    name = str(second.deployment)
    created = next(h.at for h in second.history if h.note.startswith(f"deployment {name} ") and "ready" not in h.note)
    seen = next(h.at for h in second.history if h.note == f"deployment {name} ready")
    assert 0 <= seen - (created + 20 * 60) <= TARGET_LAG_S
    looks = [d for d, _, _ in world.invocations if d.reason.startswith("await_deployment")]
    assert len(looks) < backoff_looks(20 * 60), [d.reason for d in looks]
    assert second.provisioned["deployment standard_nc24ads_a100_v4"][0] == past  # the past is carried, and grows
    assert len(second.provisioned["deployment standard_nc24ads_a100_v4"]) == 2
