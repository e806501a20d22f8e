"""Releases: a promotion that became due (``gitops.lifecycle.promotions``) let into its environment, by a person's
approval or, where the environment asks for none, by the policy. The environment's state is a record of its own
(``<run>.<environment>``) that the same step machine walks: receive the registry model (held to its content
digest), endpoint, deployment at 0%, smoke test, gate against what serves there, ramp, promote or hold or roll
back, with that environment's deadlines and gate. Nothing trains again.

Who may release is the caller's to check before it calls (the Function: the OIDC token of a job that ran in the
target's GitHub Environment; the CLI: the local backend, or admin mode). This module checks what the ledger and the
registry say: a promotion that is not due, was superseded by a newer version, or whose registry model no longer
carries the digest that was proven is refused. Asked again, a release changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops.backends.base import SharesModels
from gitops.errors import ConflictError, NotFoundError, UnsupportedError
from gitops.ledger.model import (
    Approval,
    HistoryEntry,
    Promotion,
    PromotionState,
    QueuedVersion,
    RunRecord,
    endpoint_move,
    environment_key,
    stored_spec,
    update,
)
from gitops.ledger.transitions import Asker, RunStatus
from gitops.lifecycle.moves import rolling_back, with_cursor
from gitops.lifecycle.parts import Parts
from gitops.spec import naming
from gitops.spec.policy import Policy, run_environments, spec_in


@dataclass(frozen=True)
class Due:
    """A promotion waiting for its release: the run, the record it leaves from, and whether a person must approve."""

    run: str
    source: str  # the ledger key of the environment it leaves (the run's own for the first)
    promotion: Promotion
    approval: bool  # the target's promotion.approval: a reviewer of its GitHub Environment must approve

    def to_dict(self) -> dict[str, Any]:
        p = self.promotion
        return {
            "run": self.run,
            "to": p.to,
            "job": p.job_name,
            "model": p.model,
            "version": p.version,
            "digest": p.digest,
            "due_at": p.due_at,
            "approval": self.approval,
        }


def path_of(record: RunRecord) -> tuple[Policy, list[str]]:
    """The policy a run's version was checked against and the environments it goes through, in order."""
    policy = Policy.model_validate(record.policy or {})
    return policy, run_environments(stored_spec(record), policy) if policy.environments else []


def due(lc: Parts) -> list[Due]:
    """Every promotion due now, oldest first (what the promote workflow asks for approval)."""
    found = []
    for record in lc.ledger.list():
        if not record.promotions:
            continue
        policy = Policy.model_validate(record.policy or {})
        for p in record.promotions:
            if p.state is PromotionState.DUE:
                needs = policy.environment(p.to).promotion.approval if p.to in {e.name for e in policy.environments} else True
                found.append(Due(record.run, record.key, p, needs))
    return sorted(found, key=lambda d: d.promotion.due_at)


def release(lc: Parts, run: str, to: str, *, by: str, reason: str = "", via: str = "", job: str | None = None) -> RunRecord:
    """Let the promotion of ``run`` into ``to`` in (the newest, or that of ``job``: a request names the version it
    was approved for): the target's record takes the version, and its rollout starts, or waits for the one in
    progress there. Returns the target's record. Refused when nothing is due, when the version was superseded, or
    when the registry's model is not the one proven."""
    got = lc.ledger.get(run)
    if got is None:
        raise NotFoundError(f"no run named '{run}' in the ledger")
    first = got[0]
    policy, names = path_of(first)
    if to not in names[1:]:
        raise ConflictError(
            f"run '{run}' is not promoted to '{to}'",
            hint=f"it goes through {', '.join(names)}" if names else "gitops.yaml declares no environments for it",
        )
    before = names[names.index(to) - 1]
    source_key = environment_key(run, None if before == names[0] else before)
    source = lc.ledger.get(source_key)
    # Without a job named (a shell), the promotion due now; a request for a job (the workflow's) finds it whatever its
    # state: released already is an answer, superseded a refusal.
    offers = [
        p
        for p in (source[0].promotions if source else [])
        if p.to == to and (p.job_name == job if job is not None else p.state is PromotionState.DUE)
    ]
    if not offers:
        what = f"job {job}'s model" if job else f"run '{run}'"
        raise ConflictError(f"no promotion of {what} to {to} is due", hint=f"gitops status {run} shows what its promotion waits for")
    promotion = offers[-1]
    if promotion.state is PromotionState.SHARING:
        raise ConflictError(
            f"the promotion of job {promotion.job_name} to {to} is not due yet: its model is still being shared into the registry",
            hint="the reconcile pass makes it due once the registry has it; approve it then",
        )
    if promotion.state is PromotionState.SUPERSEDED:
        raise ConflictError(
            f"the promotion of job {promotion.job_name} to {to} was superseded by a newer version: this request is stale",
            hint="approve the newer version's promotion instead (the promote workflow asks for it)",
        )
    target_key = environment_key(run, to)
    if promotion.state is PromotionState.RELEASED:  # asked again: nothing changes
        target = lc.ledger.get(target_key)
        if target is None:
            raise NotFoundError(f"no record of run '{run}' in {to}")
        return target[0]
    _hold_to_digest(lc, first, policy, to, promotion)
    now = lc.clock()
    released = promotion.model_copy(update={"state": PromotionState.RELEASED, "approval": Approval(by=by, at=now, reason=reason, via=via)})
    entered = _let_in(lc, first, policy, to, released, now)

    def mark(r: RunRecord) -> RunRecord | None:
        if not any(p == promotion for p in r.promotions):
            return None
        return r.model_copy(update={"promotions": [released if p == promotion else p for p in r.promotions], "updated_at": now})

    update(lc.ledger, source_key, mark)
    lc.schedule(entered, now)
    return entered


def _hold_to_digest(lc: Parts, first: RunRecord, policy: Policy, to: str, promotion: Promotion) -> None:
    """The registry's model carries the content digest that was proven: anything else is refused before a rollout."""
    backend = lc.backend_in(first.backend, policy.environment(to).workspace)
    if policy.registry is None or not isinstance(backend, SharesModels):
        raise UnsupportedError(f"the {first.backend} backend cannot read a model from a registry")
    model = backend.registry_model(policy.registry, promotion.model, promotion.version)
    found = model.tags.get(naming.TAG_CONTENT)
    if not promotion.digest or found != promotion.digest:
        raise ConflictError(
            f"refused: registry model {promotion.model} v{promotion.version} carries digest {found or '(none)'}, "
            f"not {promotion.digest or '(none recorded)'}, the one proven before",
            hint="the registry's model changed after it was shared; let a new version become due",
        )


def _version_in(lc: Parts, first: RunRecord, policy: Policy, to: str, promotion: Promotion) -> dict[str, Any]:
    """What the version is in environment ``to``: the spec with that environment's deploy override, its gate and
    deadlines, its endpoint, and the registry model it serves."""
    spec = spec_in(stored_spec(first), to)
    rules = policy.in_environment(to)
    return {
        "digest": first.digest,
        "training_digest": first.training_digest,
        "deployment_digest": first.deployment_digest,
        "spec": spec.model_dump(mode="json"),
        "params": first.params,
        "timeouts": rules.rollout.deadlines(spec, spec.deploy.gate.hold_for or rules.gate.hold_for),
        "gate_rules": rules.gate.resolve(spec),
        "policy": first.policy,
        "model_name": promotion.model,
        "endpoint": naming.endpoint_name(spec, lc.name_salt, to),
        "job_name": promotion.job_name,
        "commit": first.commit,
        "pr": first.pr,
        "test_path": first.test_path,
        "model_version": promotion.version,
        "model_digest": promotion.digest,
        "approval": promotion.approval,
    }


def _let_in(lc: Parts, first: RunRecord, policy: Policy, to: str, promotion: Promotion, now: float) -> RunRecord:
    """The target's record takes the version: a first record, the next version of an ended one, or the version
    queued behind the rollout in progress there (one rollout per endpoint; a held candidate is superseded)."""
    fields = _version_in(lc, first, policy, to, promotion)
    approval = promotion.approval
    assert approval is not None
    note = f"released into {to} by {approval.by}" + (f": {approval.reason}" if approval.reason else "")
    note += f" ({promotion.model} v{promotion.version}, job {promotion.job_name})"
    key = environment_key(first.run, to)

    def take(current: RunRecord | None) -> RunRecord | None:
        if current is None:
            record = RunRecord(run=first.run, environment=to, backend=first.backend, **fields, received=[promotion])
            return with_cursor(lc, record.moved(RunStatus.COMPLETED, note, now, by=Asker.RELEASE), now)
        if promotion.job_name in (current.job_name, current.queued.job_name if current.queued else None) and any(
            p.job_name == promotion.job_name and p.version == promotion.version for p in current.received
        ):
            return None  # this release was taken before (a crash before the promotion was marked): nothing twice
        moved = endpoint_move(current, str(fields["endpoint"]))
        if moved is not None:  # deploy.endpoint changed: the old endpoint there would go on serving the old model
            raise ConflictError(*moved)
        received = [*current.received, promotion]
        if current.cursor is not None:
            queued = QueuedVersion(**{k: v for k, v in fields.items() if k in QueuedVersion.model_fields}, submitted_at=now)
            history = [*current.history, HistoryEntry(at=now, status=current.status, note=f"{note}; it waits for the rollout in progress")]
            waiting = current.model_copy(update={"queued": queued, "received": received, "history": history})
            c = current.cursor
            if c.plan == "hold":  # the newer version is the decision: the held candidate is removed
                why = f"superseded by a newer release while held ({c.reason or 'gate failed'})"
                return rolling_back(waiting, c, why, now, by=Asker.VERSION, ending=RunStatus.REJECTED)
            return waiting
        nxt = current.model_copy(
            update={**fields, "previous_job": current.job_name, "received": received, "smoke": None, "gate": None, "error": None}
        )
        return with_cursor(lc, nxt.moved(RunStatus.COMPLETED, note, now, by=Asker.RELEASE), now)

    got = lc.ledger.get(key)
    if got is None:
        record = take(None)
        assert record is not None
        lc.ledger.put(record, None)
        return record
    taken = update(lc.ledger, key, take)
    return taken if taken is not None else got[0]
