"""Find what moved: the online checks again over every spec (archived or retired models, retired or unlisted SKUs,
quota now short, a newer version of the same model), and drift between each live run's record and its endpoint
(traffic, serving deployment, model version, size and count, tags, deployments nobody asked for, an endpoint gone).
``restore`` puts back what may be put back, on endpoints this repository manages only."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from gitops.backends.base import Backend, EndpointInfo, Provisioning, ServerlessInfo, ServesServerless
from gitops.errors import CorruptRecordError, GitopsError
from gitops.ledger.model import Ledger, RunRecord, stored_spec
from gitops.ownership import claim_endpoint
from gitops.spec import naming
from gitops.spec.capabilities import ONLINE_CHECKED
from gitops.spec.findings import Code
from gitops.spec.model import RunSpec
from gitops.spec.validate import ValidSpec
from gitops.watch.findings import Kind, WatchFinding


def _version_order(version: str) -> tuple[int, int | str]:
    return (1, int(version)) if version.isdigit() else (0, version)


# The watch's kind of each spec finding, by its code (a quota finding is filed apart from the model's retirement).
_KIND_OF: dict[Code, Kind] = {
    Code.QUOTA: "quota",
    Code.MODEL: "model",
    Code.MODEL_ARCHIVED: "model",
    Code.MODEL_RETIRED: "model",
    Code.MODEL_DEPRECATED: "model",
    Code.MODEL_UNPINNED: "model",
    Code.SKU_RETIRED: "sku",
    Code.SKU_UNAVAILABLE: "sku",
}


def world_findings(
    run: str, validated: ValidSpec, backend: Backend, newest_of: Callable[[RunSpec], str | None] | None = None
) -> list[WatchFinding]:
    """The online checks of a spec, again (errors and warnings: what a merge today would be told), and a newer
    version of its model when the registry has one (``newest_of``: a shared lookup, asked once per model)."""
    from gitops.review.check import online_findings

    spec = validated.spec
    out = []
    archived: list[WatchFinding] = []  # those of an archived version: a newer version of the same model fixes them
    for f in online_findings(validated, backend):
        if f.severity.value == "note":
            continue
        found = WatchFinding(
            _KIND_OF.get(f.code, "compute"),
            "error" if f.is_error else "warning",
            run,
            f.path or "spec",
            f.message,
            f.hint or "edit the spec",
            f.since,
        )
        out.append(found)
        if f.code is Code.MODEL_ARCHIVED:
            archived.append(found)
    if spec.model.version and spec.model.registry != "local":
        newest = (newest_of or backend.newest_model_version)(spec)
        if newest is not None and _version_order(newest) > _version_order(spec.model.version):
            edit = f'model.version: "{newest}"'
            if archived:  # the same model has a current version: that edit, before any successor
                current = f"{edit} (a current version of the same model)"
                out = [replace(f, fix=current) if f in archived else f for f in out]
            else:
                out.append(
                    WatchFinding(
                        "model",
                        "note",
                        run,
                        "model.version",
                        f"{spec.model.name} version {newest} is in registry {spec.model.registry} (the spec pins {spec.model.version})",
                        edit,
                    )
                )
    return out


@dataclass
class Declared:
    """What a live run's record says its endpoint runs, and whether the watch may touch it."""

    record: RunRecord
    kept: str | None  # the replaced deployment kept at 0% for an instant rollback (deploy.keep_previous_for)
    spec: RunSpec | None
    hands_off: str | None = None  # why `--fix` leaves it alone

    @classmethod
    def of(cls, record: RunRecord, now: float) -> Declared:
        kept = record.previous_deployment if (record.previous_kept_until or 0) > now else None
        try:
            spec = stored_spec(record) if record.spec else None
        except CorruptRecordError:
            spec = None
        hands_off = (
            "lifecycle.keep is set"
            if spec is not None and spec.lifecycle.keep
            else f"its {record.cursor.plan} is in progress"
            if record.cursor is not None
            else None
        )
        return cls(record, kept, spec, hands_off)


def _split(traffic: dict[str, int]) -> str:
    return ", ".join(f"{d} {p}%" for d, p in sorted(traffic.items())) or "no traffic"


def _ours(info: EndpointInfo, record: RunRecord, repo: str) -> bool:
    """This repository's endpoint (``gitops.ownership``), tagged as this run's."""
    return claim_endpoint(info, record, repo).ours and info.tags.get(naming.TAG_RUN) == record.run


def _live_traffic(info: EndpointInfo) -> dict[str, int]:
    """The endpoint's split without the deployments at 0%."""
    return {k: int(v) for k, v in info.traffic.items() if int(v)}


def _unasked(info: EndpointInfo, d: Declared) -> list[str]:
    """Deployments of the endpoint the record did not ask for (neither serving nor kept), not already going."""
    keep = (d.record.deployment, d.kept)
    return sorted(x.name for x in info.deployments if x.name not in keep and x.state is not Provisioning.DELETING)


def drift_findings(record: RunRecord, backend: Backend, now: float, *, repo: str) -> list[WatchFinding]:
    """A serving run's endpoint against its record. Runs that roll out, are held or retired are not compared."""
    if not record.serves or not record.endpoint or not record.deployment:
        return []
    if record.serving_kind == "serverless":
        return serverless_drift(record, backend, now, repo=repo)
    d = Declared.of(record, now)
    run, ep, dep = record.key, record.endpoint, record.deployment  # a later environment's: <run>.<environment>
    restore = f"`gitops watch --fix --yes` (or `gitops reconcile {run}`) restores it"
    info = backend.get_endpoint(ep)
    if info is None:
        return [_gone(run, ep, "endpoint")]
    if not _ours(info, record, repo):
        tags = ", ".join(f"{k}={info.tags.get(k)}" for k in (naming.MANAGED_BY_TAG, naming.TAG_REPO, naming.TAG_RUN))
        return [
            WatchFinding(
                "drift",
                "error",
                run,
                ep,
                f"endpoint {ep} is no longer tagged as run {run}'s of this repository ({tags}): the watch and cleanup leave it alone",
                f"put the tags back ({naming.MANAGED_BY_TAG}={naming.MANAGED_BY_VALUE}, {naming.TAG_REPO}={repo}, "
                f"{naming.TAG_RUN}={run}) or move the spec to another endpoint",
            )
        ]
    out = []
    serving = info.deployment(dep)
    if serving is None:
        out.append(
            WatchFinding(
                "drift",
                "error",
                run,
                f"{ep}/{dep}",
                f"the serving deployment {dep} is gone from {ep}",
                f"merge the spec again with a deployment change, or `gitops rollback {run}`",
            )
        )
    traffic = _live_traffic(info)
    if serving is not None and traffic != {dep: 100}:
        out.append(
            WatchFinding(
                "drift",
                "error",
                run,
                f"{ep} traffic",
                f"traffic is {_split(traffic)} where the ledger declares {dep} 100%",
                restore,
                fixable=d.hands_off is None,
            )
        )
    extra = _unasked(info, d)
    if extra:
        out.append(
            WatchFinding(
                "drift",
                "warning",
                run,
                f"{ep} deployments",
                f"deployments nobody asked for: {', '.join(extra)}",
                restore.replace("restores it", "deletes them"),
                fixable=d.hands_off is None,
            )
        )
    if serving is not None and d.spec is not None:
        want_type, want_count = d.spec.deploy.instance_type, d.spec.deploy.instance_count
        if serving.instance_type and want_type and serving.instance_type.lower() != want_type.lower():
            out.append(
                WatchFinding(
                    "drift",
                    "warning",
                    run,
                    f"{ep}/{dep} size",
                    f"runs on {serving.instance_type} where deploy.instance_type is {want_type}",
                    f"merge the spec again with a deployment change to redeploy, or set deploy.instance_type: {serving.instance_type}",
                )
            )
        if serving.instance_count is not None and serving.instance_count != want_count:
            out.append(
                WatchFinding(
                    "drift",
                    "warning",
                    run,
                    f"{ep}/{dep} instances",
                    f"runs {serving.instance_count} instance(s) where deploy.instance_count is {want_count}",
                    f"merge the spec again with a deployment change, or set deploy.instance_count: {serving.instance_count}",
                )
            )
        version = record.serving_version  # what serves, not a held or rolled-back candidate's version
        if version and serving.model_uri and not serving.model_uri.rstrip("/").endswith((f"/{version}", f":{version}")):
            out.append(
                WatchFinding(
                    "drift",
                    "error",
                    run,
                    f"{ep}/{dep} model",
                    f"serves {serving.model_uri} where the ledger says {record.model_name} version {version}",
                    "merge the spec again with a deployment change to redeploy the recorded model",
                )
            )
    return out


def _gone(run: str, name: str, what: str) -> WatchFinding:
    return WatchFinding(
        "gone",
        "error",
        run,
        name,
        f"{what} {name}, which the ledger says serves run {run}, is gone",
        f"`gitops reconcile {run}` records the run retired; merge the spec again to deploy it anew",
    )


def _serverless_of_run(backend: ServesServerless, record: RunRecord, repo: str) -> list[ServerlessInfo]:
    """The serverless endpoints of this repository tagged as this run's."""
    from gitops.ownership import claim

    return [s for s in backend.list_serverless() if s.tags.get(naming.TAG_RUN) == record.run and claim(s.tags, repo).ours]


def _unasked_serverless(backend: ServesServerless, d: Declared, repo: str) -> list[str]:
    """Serverless endpoints of the run that neither serve nor are kept for a rollback: each bills its hosting fee."""
    keep = (d.record.deployment, d.kept if d.record.previous_serving_kind == "serverless" else None)
    return sorted(s.name for s in _serverless_of_run(backend, d.record, repo) if s.name not in keep)


def serverless_drift(record: RunRecord, backend: Backend, now: float, *, repo: str) -> list[WatchFinding]:
    """A run served by a serverless endpoint against its record: the endpoint there, this repository's, online (not
    ``Suspended`` or ``CreationFailed``: a marketplace subscription gone suspends it), serving the recorded model; and
    no other serverless endpoint of the run left billing its hosting fee."""
    from gitops.ownership import claim

    run, name = record.key, record.deployment or ""
    if not isinstance(backend, ServesServerless):
        return [
            WatchFinding("unreadable", "warning", run, name, f"the {backend.name} backend has no serverless endpoints", "check the spec")
        ]
    found = backend.get_serverless(name)
    if found is None:
        return [_gone(run, name, "serverless endpoint")]
    if not claim(found.tags, repo).ours or found.tags.get(naming.TAG_RUN) != record.run:
        return [
            WatchFinding(
                "drift",
                "error",
                run,
                name,
                f"serverless endpoint {name} is no longer tagged as run {run}'s of this repository: the watch and cleanup leave it alone",
                f"put the tags back ({naming.MANAGED_BY_TAG}={naming.MANAGED_BY_VALUE}, {naming.TAG_REPO}={repo}, {naming.TAG_RUN}={run})",
            )
        ]
    out = []
    if not found.serving:
        why = f"{found.state.value}, {found.endpoint_state.value}" + (f": {found.error}" if found.error else "")
        out.append(
            WatchFinding(
                "drift",
                "error",
                run,
                name,
                f"serverless endpoint {name} does not serve ({why})",
                "a suspended endpoint follows a marketplace subscription gone or a billing stop: put it right in the workspace, "
                "or merge the spec again with a deployment change to create another",
            )
        )
    version = record.serving_version
    if version and found.model_id and not found.model_id.rstrip("/").endswith((f"/{version}", f":{version}")):
        out.append(
            WatchFinding(
                "drift",
                "error",
                run,
                f"{name} model",
                f"serves {found.model_id} where the ledger says {record.model_name} version {version}",
                "merge the spec again with a deployment change to deploy the recorded model",
            )
        )
    d = Declared.of(record, now)
    extra = _unasked_serverless(backend, d, repo)
    if extra:
        out.append(
            WatchFinding(
                "drift",
                "warning",
                run,
                f"{record.endpoint} serverless endpoints",
                f"serverless endpoints nobody asked for, each billing its hosting fee: {', '.join(extra)}",
                f"`gitops watch --fix --yes` (or `gitops reconcile {run}`) deletes them",
                fixable=d.hands_off is None,
            )
        )
    return out


@dataclass
class Scan:
    findings: list[WatchFinding] = field(default_factory=list)
    specs: int = 0
    runs: int = 0

    def document(self, now: float) -> dict[str, Any]:
        """What the ledger keeps of the latest scan (``WATCH_DOCUMENT``): `GET /api/watch` and the dashboard read it."""
        from datetime import UTC, datetime

        at = datetime.fromtimestamp(now, UTC).isoformat()
        return {"at": at, "specs": self.specs, "runs": self.runs, "findings": [f.to_dict() for f in self.findings]}


def scan(
    specs: Iterable[tuple[str, ValidSpec]],
    ledger: Ledger,
    backend_for: Callable[[str], Backend],
    now: float,
    online_backends: frozenset[str] = ONLINE_CHECKED,
    *,
    repo: str,
    backend_of: Callable[[RunRecord], Backend] | None = None,
) -> Scan:
    """Every spec's online checks (``(run, validated)``; backends with online checks only) and every live run's
    drift, each in its own workspace (``backend_of``: a later environment's record in that environment's; default:
    ``backend_for`` of its backend). A spec or endpoint that cannot be looked at is a finding of its own, never a
    silent pass."""
    where = backend_of or (lambda record: backend_for(record.backend))
    result = Scan()
    newest: dict[tuple[str, str, str], str | None] = {}  # (backend, registry, model): asked once, however many specs

    def newest_of(spec: RunSpec) -> str | None:
        key = (spec.backend, spec.model.registry, spec.model.name)
        if key not in newest:
            newest[key] = backend_for(spec.backend).newest_model_version(spec)
        return newest[key]

    for run, validated in specs:
        if validated.spec.backend not in online_backends:
            continue
        result.specs += 1
        try:
            result.findings += world_findings(run, validated, backend_for(validated.spec.backend), newest_of)
        except GitopsError as exc:
            result.findings.append(
                WatchFinding(
                    "unreadable",
                    "warning",
                    run,
                    "spec",
                    f"the online checks could not run: {exc.headline}",
                    exc.hint or "check the workspace settings and access",
                )
            )
    records = ledger.list()
    result.findings += [
        WatchFinding("unreadable", "warning", "-", where, why, "restore or delete the record") for where, why in ledger.damaged
    ]
    for record in records:
        result.runs += 1
        try:
            result.findings += drift_findings(record, where(record), now, repo=repo)
        except GitopsError as exc:
            result.findings.append(
                WatchFinding(
                    "unreadable",
                    "warning",
                    record.key,
                    record.endpoint or "-",
                    f"its endpoint could not be read: {exc.headline}",
                    exc.hint or "try again",
                )
            )
    return result


def ledger_specs(records: Iterable[RunRecord]) -> list[tuple[str, ValidSpec]]:
    """The specs the default branch last merged, as the ledger keeps them (for the Function, which has no checkout):
    each run's newest version (a queued one first). Retired runs are not watched."""
    out = []
    for r in records:
        version = r.queued or r
        if r.status == "retired" or not version.spec or r.environment is not None:  # a spec is watched once, where it trains
            continue
        try:
            spec = stored_spec(version, r.run)
        except CorruptRecordError:  # the watch reports unreadable records on their own
            continue
        out.append((r.run, ValidSpec(f"runs/{r.run}.yaml", spec, dict(version.params), version.digests())))
    return out


def restore(record: RunRecord, backend: Backend, now: float, apply: bool, *, repo: str) -> list[str]:
    """What ``--fix`` does for one live run (done only when ``apply``): its serving deployment back to 100%, and the
    deployments nobody asked for deleted once they take no traffic. Never on an endpoint not tagged as this run's,
    a ``keep`` run, or one that rolls out or is held."""
    if not record.serves or not record.endpoint or not record.deployment:
        return []
    d = Declared.of(record, now)
    if record.serving_kind == "serverless":
        if not isinstance(backend, ServesServerless) or backend.get_serverless(record.deployment) is None:
            return []
        unasked = _unasked_serverless(backend, d, repo)
        if unasked and d.hands_off is not None:
            return [f"{record.key}: left alone ({d.hands_off})"]
        for name in unasked if apply else ():
            backend.delete_serverless(name)
        return [f"{record.key}: delete serverless endpoint {name} (nobody asked for it)" for name in unasked]
    info = backend.get_endpoint(record.endpoint)
    if info is None or not _ours(info, record, repo) or info.deployment(record.deployment) is None:
        return []
    ep, dep = record.endpoint, record.deployment
    traffic, extras = _live_traffic(info), _unasked(info, d)
    if traffic == {dep: 100} and not extras:
        return []
    if d.hands_off is not None:  # read from the endpoint already in hand, not a second look
        return [f"{record.key}: left alone ({d.hands_off})"]
    done = []
    if traffic != {dep: 100}:
        if apply:
            backend.begin_traffic(ep, {dep: 100})
        done.append(f"{record.key}: {ep} traffic {_split(traffic)} -> {dep} 100%")
    for extra in extras:
        if traffic.get(extra, 0) and traffic != {dep: 100}:
            done.append(f"{record.key}: {ep}/{extra} deleted on the next --fix, once it takes no traffic")
            continue
        if apply:
            backend.delete_deployment(ep, extra)
        done.append(f"{record.key}: delete {ep}/{extra} (nobody asked for it)")
    return done


def retire_if_gone(ledger: Ledger, run: str, backend: Backend, now: float) -> str | None:
    """A live run whose endpoint is gone is recorded retired (a later merge of its spec deploys it anew); what was
    done, or None when the endpoint is there (or the run is not live and idle)."""
    from gitops.ledger.model import update
    from gitops.ledger.transitions import AWAITING_JOB

    got = ledger.get(run)
    if got is None or not got[0].serves or not got[0].endpoint or got[0].status in AWAITING_JOB:
        return None  # a run whose next job trains keeps its record: its rollout makes an endpoint again
    endpoint = got[0].serving_endpoint or got[0].endpoint
    if got[0].serving_kind == "serverless":
        there = isinstance(backend, ServesServerless) and backend.get_serverless(endpoint) is not None
    else:
        there = backend.get_endpoint(endpoint) is not None
    if there or (got[0].serving_kind == "serverless" and not isinstance(backend, ServesServerless)):
        return None
    update(
        ledger,
        run,
        lambda r: (
            r.retired(f"endpoint {endpoint} is gone (found by reconcile)", now) if r.serves and r.status not in AWAITING_JOB else None
        ),
    )
    return f"{run}: endpoint {endpoint} is gone: the run is recorded retired"


def restore_run(ledger: Ledger, backend: Backend, record: RunRecord, now: float, *, repo: str) -> list[str]:
    """``gitops reconcile NAME``'s drift half: the run's endpoint back to what its record declares; an endpoint that is
    gone moves the run to retired (a later merge of its spec deploys it anew)."""
    retired = retire_if_gone(ledger, record.key, backend, now)
    return [retired] if retired else restore(record, backend, now, apply=True, repo=repo)
