"""Promotions: when a run is live in one environment and what the next environment asks for holds (its soak, the
gate passed on evidence, a content digest to hold the target to), its model is shared into the registry once and
the promotion to the next environment becomes due. Nothing trains again. A newer version going live before a due
promotion is released supersedes it.

Which environments a run goes through, and what each asks for, is the policy its version was checked against
(kept on the run at submit). Approval and the rollout in the next environment come after this module.
"""

from __future__ import annotations

from gitops.backends.base import RegisteredModel, SharesModels
from gitops.errors import ConflictError, NotFoundError, UnsupportedError
from gitops.ledger.model import Promotion, PromotionState, RunRecord, stored_spec, update
from gitops.lifecycle.parts import Parts
from gitops.spec import naming
from gitops.spec.capabilities import Feature, kind_of
from gitops.spec.model import parse_duration
from gitops.spec.policy import Policy, run_environments


def next_environment(record: RunRecord) -> tuple[Policy, str] | None:
    """The policy the run's version was checked against and the environment after the record's own that the run
    goes to (None: the last, one environment, or none declared)."""
    if not record.policy or not record.policy.get("environments"):
        return None
    policy = Policy.model_validate(record.policy)
    names = run_environments(stored_spec(record), policy)
    here = record.environment or (names[0] if names else "")
    at = names.index(here) if here in names else len(names)
    return (policy, names[at + 1]) if at + 1 < len(names) else None


def waiting_for(record: RunRecord, policy: Policy, target: str, now: float) -> list[str]:
    """What the promotion of the serving version into ``target`` still waits for (empty: nothing). Each condition
    needs positive evidence: a missing time, verdict or digest waits, never passes."""
    rules = policy.environment(target).promotion
    here = record.environment or policy.environments[0].name
    missing = []
    unbuilt = kind_of(record.backend).unsupported.get(Feature.PROMOTION)
    if unbuilt:  # what the backend cannot do is said as such, every time the promotion is looked at
        missing.append(f"the {record.backend} backend: {unbuilt}")
    if record.status != "live":
        missing.append(f"the run to be live in {here} (it is {record.status})")
        return missing
    since = record.entered("live")  # when the version that serves went live
    soak = parse_duration(rules.soak).total_seconds()
    if since is None or now - since < soak:
        missing.append(f"{rules.soak} live in {here}" + (f" ({(now - since) / 3600:.1f} h so far)" if since is not None else ""))
    verdict = record.gate or {}
    if rules.gate and not (verdict.get("ok") is True and verdict.get("on_evidence") is True):
        missing.append(f"the gate passed in {here} on its evidence (a person's promote, or no gate, is not enough)")
    if not record.model_digest:
        missing.append("a content digest of the model (computed where it was trained)")
    return missing


# An Azure ML import into a registry runs for up to an hour (its operation's timeout, as recorded): one not there
# after twice that is started again.
SHARE_RETRY_S = 2 * 3600.0


def propose(lc: Parts, run: str) -> Promotion | None:
    """Make the serving version's promotion due when its conditions hold: its model shared into the registry (once)
    and the promotion recorded; an older due one superseded. A share that takes longer than a call (an Azure ML
    import) is recorded as sharing, and a later pass finds the registry's version and makes it due. The promotion,
    or None while it waits, shares or does not apply. Idempotent: asked again, the same promotion."""
    got = lc.ledger.get(run)
    if got is None:
        return None
    record = got[0]
    found = next_environment(record)
    if found is None:
        return None
    policy, target = found
    current = next((p for p in record.promotions if p.to == target and p.job_name == record.job_name), None)
    if current is not None and current.state is not PromotionState.SHARING:
        return current
    now = lc.clock()
    if current is not None:
        shared = _shared_since(lc, record, policy, current, now)
    else:
        if waiting_for(record, policy, target, now):
            return None
        sharing = Promotion(
            to=target,
            job_name=record.job_name,
            model=naming.registry_model_name(stored_spec(record), lc.name_salt),
            version=record.model_version or "",
            digest=record.model_digest or "",
            due_at=now,
            state=PromotionState.SHARING,
        )
        # Recorded before anything is shared: of two passes at once, one records it and shares, the other finds it
        # recorded (an import started twice would copy the model twice).
        if update(lc.ledger, run, lambda r: _with(r, target, sharing, now)) is None:
            return None
        try:
            shared = _shared(lc, record, policy)
        except Exception:  # nothing under way: the record says so, and the next pass tries again
            update(lc.ledger, run, lambda r: r.model_copy(update={"promotions": [p for p in r.promotions if p != sharing]}))
            raise
    if shared is None:  # under way: a later pass finds the registry's version
        return None
    promotion = Promotion(
        to=target, job_name=record.job_name, model=shared.name, version=shared.version, digest=record.model_digest or "", due_at=now
    )
    update(lc.ledger, run, lambda r: _with(r, target, promotion, now))
    return promotion


def _with(r: RunRecord, target: str, promotion: Promotion, now: float) -> RunRecord | None:
    """The run with ``promotion`` recorded (a due one in place of the same version's share under way); a due one of an
    older version superseded when this one is due. None when another version took the run meanwhile, or the version's
    promotion was recorded already (a share under way is recorded once)."""
    same = [p for p in r.promotions if p.to == target and p.job_name == promotion.job_name]
    sharing = promotion.state is PromotionState.SHARING
    if r.job_name != promotion.job_name or (same and sharing) or any(p.state is not PromotionState.SHARING for p in same):
        return None
    due = promotion.state is PromotionState.DUE
    kept = [
        p.model_copy(update={"state": PromotionState.SUPERSEDED}) if due and p.to == target and p.state is PromotionState.DUE else p
        for p in r.promotions
        if not (p.to == target and p.job_name == promotion.job_name)
    ]
    return r.model_copy(update={"promotions": [*kept, promotion], "updated_at": now})


def _shared_since(lc: Parts, record: RunRecord, policy: Policy, sharing: Promotion, now: float) -> RegisteredModel | None:
    """The registry's version of a share under way, held to the content digest proven here; None while it is not
    there (a share not there after ``SHARE_RETRY_S`` is started again)."""
    backend = lc.backend_for(record.backend)
    if not isinstance(backend, SharesModels) or policy.registry is None:
        return None
    try:
        there = backend.registry_model(policy.registry, sharing.model, sharing.version)
    except NotFoundError:
        if now - sharing.due_at < SHARE_RETRY_S:
            return None
        update(
            lc.ledger,
            record.key,
            lambda r: r.model_copy(
                update={"promotions": [p.model_copy(update={"due_at": now}) if p == sharing else p for p in r.promotions]}
            ),
        )
        return _shared(lc, record, policy)
    if there.tags.get(naming.TAG_CONTENT) != record.model_digest:
        raise ConflictError(
            f"registry model {there.name} v{there.version} carries digest {there.tags.get(naming.TAG_CONTENT) or '(none)'}, "
            f"not {record.model_digest}, the one proven here",
            hint="its promotion is never made due; train or share the version again",
        )
    return there


def _shared(lc: Parts, record: RunRecord, policy: Policy) -> RegisteredModel | None:
    """The serving version's model in the registry: shared from the first environment once; a later environment
    serves the registry's model already, and passes it on as it is."""
    if record.environment is not None:
        return RegisteredModel(record.model_name or "", record.model_version or "", "", {naming.TAG_CONTENT: record.model_digest or ""})
    backend = lc.backend_for(record.backend)
    if not isinstance(backend, SharesModels) or policy.registry is None:
        why = kind_of(record.backend).unsupported.get(Feature.PROMOTION) or "it shares no model into a registry"
        raise UnsupportedError(f"the {record.backend} backend cannot promote: {why}", hint="see docs/spec.md (Environments)")
    spec = stored_spec(record)
    model = RegisteredModel(
        record.model_name or naming.model_name(spec), record.model_version or "", "", {naming.TAG_CONTENT: record.model_digest or ""}
    )
    return backend.share_model(
        model,
        policy.registry,
        naming.registry_model_name(spec, lc.name_salt),
        {
            naming.TAG_RUN: record.run,
            naming.TAG_REPO: lc.repo,
            naming.TAG_JOB: record.job_name,
            naming.TAG_COMMIT: record.commit or "",
            naming.TAG_PR: record.pr or "",
            naming.TAG_DATA: str(spec.data.dataset or spec.data.train_path or ""),
        },
    )
