"""Foundation models from a registry (metadata, findings) and registration of a job's trained model.

Where Azure keeps a foundation model's metadata (2026): ``systemMetadata`` of the registry version (each
top-level value a JSON string, or a Python literal for lists: azureml-assets' ``stringify_dictionary``)
holds the SKUs (``SKU.*Recommended Skus``, ``supportedComputes.*``) and the dates
(``deprecation.finetuneRetirementDate``...); ``properties.isArchived`` marks an archived version;
``tags.model_specific_defaults`` stays a tag. Older versions carry the allow lists and dates in tags and
properties, which are still read. azure-ai-ml drops system metadata on a registry GET, so the version's REST
body is read through the SDK's own registry client (same pipeline, same credential).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from gitops.backends.azureml.catalog import successor
from gitops.backends.azureml.clients import AzureClients
from gitops.backends.azureml.errors import call
from gitops.backends.base import FoundationModel, RegisteredModel
from gitops.errors import ConflictError, NotFoundError
from gitops.spec import naming
from gitops.spec.findings import Code, Finding, error, warning
from gitops.spec.model import RunSpec

FINETUNE_ALLOW, INFERENCE_ALLOW, MODEL_DEFAULTS = ("finetune_compute_allow_list", "inference_compute_allow_list", "model_specific_defaults")
# Dates: system metadata's ``deprecation`` keys, then the tags older versions carried.
DATE_KEYS = {
    "finetune_deprecated": ("finetuneDeprecationDate", "FinetuneDeprecationDate"),
    "finetune_retired": ("finetuneRetirementDate", "FinetuneRetirementDate", "finetune_retirement_date"),
    "inference_deprecated": ("inferenceDeprecationDate", "InferenceDeprecationDate"),
    "inference_retired": ("inferenceRetirementDate", "InferenceRetirementDate"),
}


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return value


def _sku_list(value: Any) -> tuple[str, ...] | None:
    value = _literal(value)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return None


def _union(*lists: tuple[str, ...] | None) -> tuple[str, ...] | None:
    present = [lst for lst in lists if lst is not None]
    if not present:
        return None
    seen: dict[str, str] = {}
    for lst in present:
        for sku in lst:
            seen.setdefault(sku.lower(), sku)
    return tuple(seen.values())


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ModelFacts:
    """What a registry version says about itself, wherever it says it."""

    archived: bool = False
    finetune_skus: tuple[str, ...] | None = None
    inference_skus: tuple[str, ...] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    finetune_deprecated: date | None = None
    finetune_retired: date | None = None
    inference_deprecated: date | None = None
    inference_retired: date | None = None
    serverless_regions: tuple[str, ...] | None = None  # tag maas-finetuning-deploy-regions: where it is fine-tuned serverless
    deployment_options: tuple[str, ...] | None = None  # systemMetadata.deploymentOptions (ServerlessMaaS, MaaP...)
    publisher: str | None = None  # systemMetadata.publisher: a model not Microsoft's needs a marketplace subscription


SERVERLESS_REGIONS_TAG = "maas-finetuning-deploy-regions"
# Where serverless fine-tuning is offered when the model's own tag says nothing: the dated region table of the docs
# (MicrosoftDocs/azure-ai-docs includes/region-availability-maas.md, 2025-11-24), regions as Azure names them.
REGION_TABLE_DATE = "2025-11-24"
_PHI_REGIONS = ("eastus2", "eastus", "northcentralus", "southcentralus", "westus", "westus3")
SERVERLESS_REGION_TABLE: dict[str, tuple[str, ...]] = {
    "phi-4": _PHI_REGIONS,
    "phi-4-mini-instruct": _PHI_REGIONS,
    "phi-4-multimodal-instruct": _PHI_REGIONS,
    "ministral-3b": _PHI_REGIONS,
    "tsuzumi-7b": _PHI_REGIONS,
    "meta-llama-3.1-8b-instruct": ("westus3",),
    "meta-llama-3.1-70b-instruct": ("westus3",),
}


def _names(value: Any) -> tuple[str, ...] | None:
    """A list as metadata holds it: a JSON or Python list, or comma-separated."""
    listed = _literal(value)
    items = listed if isinstance(listed, list | tuple) else str(listed or "").split(",")
    return tuple(str(i).strip() for i in items if str(i).strip()) or None


def _regions(value: Any) -> tuple[str, ...] | None:
    """A region list as a tag holds it, as Azure names regions (``West US 3`` -> ``westus3``)."""
    names = _names(value)
    return tuple(n.lower().replace(" ", "") for n in names) if names else None


def serverless_findings(spec: RunSpec, facts: ModelFacts, region: str, subscribed: bool | None = None) -> list[Finding]:
    """What the model says about serverless for a spec that asks for it: fine-tuned serverless in the workspace's
    region (its tag, else the dated table: no evidence holds, never passes), served serverless at all, and a
    marketplace subscription where its publisher is not Microsoft (``subscribed``: whether one exists; None: unknown)."""
    out: list[Finding] = []
    name, where = spec.model.name, region.lower().replace(" ", "")
    if spec.finetune.kind == "serverless":
        listed, source = facts.serverless_regions, f"its {SERVERLESS_REGIONS_TAG} tag"
        if listed is None:
            listed, source = SERVERLESS_REGION_TABLE.get(name.lower()), f"the serverless region table of {REGION_TABLE_DATE}"
        if listed is None:
            out.append(
                error(
                    "finetune.kind",
                    f"nothing says {name} is fine-tuned serverless: it has no {SERVERLESS_REGIONS_TAG} tag and is not in the "
                    f"serverless region table of {REGION_TABLE_DATE}",
                    "pick a model offered for serverless fine-tuning (Phi-4, Phi-4-mini-instruct...), or finetune.kind: job",
                    code=Code.MODEL,
                )
            )
        elif where not in listed:
            out.append(
                error(
                    "finetune.kind",
                    f"{name} is fine-tuned serverless in {', '.join(listed)} ({source}), not in {where}, the workspace's region",
                    "use a workspace in one of those regions, or finetune.kind: job",
                    code=Code.MODEL,
                )
            )
    offered = facts.deployment_options is None or any(o.lower() == "serverlessmaas" for o in facts.deployment_options)
    if spec.deploy.kind == "serverless" and not offered:
        options = ", ".join(facts.deployment_options or ())
        why = f"{name} is not offered serverless (deployment options: {options})"
        out.append(error("deploy.kind", why, "deploy.kind: managed", code=Code.MODEL))
    if facts.publisher and facts.publisher.lower() != "microsoft" and "serverless" in (spec.finetune.kind, spec.deploy.kind):
        have = (
            ""
            if subscribed is None
            else (" (one exists in the workspace)" if subscribed else " (none exists yet: it is created at the first deployment)")
        )
        out.append(
            warning(
                "model.name",
                f"{name} is published by {facts.publisher}: serverless use needs a marketplace subscription{have}, billed through "
                "the Azure Marketplace",
                code=Code.MODEL,
            )
        )
    return out


def read_facts(body: Mapping[str, Any]) -> ModelFacts:
    """Facts from a registry model version's REST body (``properties`` holds tags, properties and system metadata)."""
    props: Mapping[str, Any] = body["properties"] if isinstance(body.get("properties"), Mapping) else {}
    system_raw = props.get("systemMetadata") or body.get("systemMetadata") or props.get("system_metadata") or {}
    system = {k: _literal(v) for k, v in system_raw.items()} if isinstance(system_raw, Mapping) else {}
    legacy = {k: _literal(v) for k, v in {**(props.get("tags") or body.get("tags") or {}), **(props.get("properties") or {})}.items()}

    def nested(section: str, key: str) -> Any:
        value = system.get(section)
        return value.get(key) if isinstance(value, Mapping) else None

    finetune = _union(_sku_list(nested("SKU", "finetuneRecommendedSkus")), _sku_list(nested("supportedComputes", "finetuneComputes")))
    inference = _union(_sku_list(nested("SKU", "inferenceRecommendedSkus")), _sku_list(nested("supportedComputes", "inferenceComputes")))
    if finetune is None:
        finetune = _sku_list(legacy.get(FINETUNE_ALLOW)) or _sku_list(legacy.get("finetune-recommended-sku"))
    if inference is None:
        inference = _sku_list(legacy.get(INFERENCE_ALLOW)) or _sku_list(legacy.get("inference-recommended-sku"))
    deprecation: Mapping[str, Any] = system["deprecation"] if isinstance(system.get("deprecation"), Mapping) else {}
    dates = {
        name: next((d for key in keys if (d := _day(deprecation.get(key) or legacy.get(key)))), None) for name, keys in DATE_KEYS.items()
    }
    defaults = legacy.get(MODEL_DEFAULTS)
    archived = (
        str(props.get("isArchived", body.get("isArchived", ""))).lower() == "true"
        or str(props.get("stage") or body.get("stage") or "").lower() == "archived"
    )
    options = system.get("deploymentOptions") or legacy.get("deploymentOptions")
    return ModelFacts(
        archived=archived,
        finetune_skus=finetune,
        inference_skus=inference,
        defaults=dict(defaults) if isinstance(defaults, Mapping) else {},
        serverless_regions=_regions(legacy.get(SERVERLESS_REGIONS_TAG)) if legacy.get(SERVERLESS_REGIONS_TAG) else None,
        deployment_options=_names(options) if options else None,
        publisher=str(system.get("publisher") or legacy.get("publisher") or "") or None,
        **dates,
    )


def _move_to(spec: RunSpec) -> str:
    nxt = successor(spec.model.name)
    if nxt is None:
        return f"pick a current model of registry {spec.model.registry}"
    return f'move to {nxt.name}: model: {{registry: {spec.model.registry}, name: {nxt.name}, version: "{nxt.version}"}}'


def _retirement(name: str, what: str, retired: date | None, deprecated: date | None, today: date, hint: str, gone: str) -> list[Finding]:
    """An error once ``what`` (fine-tuning or inference) of model ``name`` is retired (``gone``, then the date), a
    warning while it is deprecated."""
    if retired is not None and retired <= today:
        return [error("model.name", f"{gone} {retired.isoformat()}", hint, code=Code.MODEL_RETIRED, since=retired.isoformat())]
    if deprecated is not None and deprecated <= today:
        until = f"; it retires on {retired.isoformat()}" if retired else ""
        message = f"{what} of {name} is deprecated since {deprecated.isoformat()}{until}"
        return [warning("model.name", message, hint, code=Code.MODEL_DEPRECATED, since=deprecated.isoformat())]
    return []


def model_findings(spec: RunSpec, version: str, facts: ModelFacts, today: date) -> list[Finding]:
    found: list[Finding] = []
    name, hint = spec.model.name, _move_to(spec)
    if spec.model.version is None:
        found.append(
            warning(
                "model.label",
                f"label '{spec.model.label}' resolved to version {version}: the run is not reproducible",
                f'pin model.version: "{version}"',
                code=Code.MODEL_UNPINNED,
            )
        )
    if facts.archived:
        found.append(
            error(
                "model.version", f"{name} version {version} is archived in registry {spec.model.registry}", hint, code=Code.MODEL_ARCHIVED
            )
        )
    found += _retirement(
        name, "fine-tuning", facts.finetune_retired, facts.finetune_deprecated, today, hint, f"fine-tuning of {name} was retired on"
    )
    found += _retirement(
        name,
        "inference",
        facts.inference_retired,
        facts.inference_deprecated,
        today,
        hint,
        f"{name} can no longer be deployed: inference was retired on",
    )
    return found


def registry_version_body(registry: Any, name: str, version: str) -> dict[str, Any]:
    """The REST body of a registry model version, through the registry client's own pipeline and credential
    (the one place this package reaches into azure-ai-ml's private helpers: its public ``get`` drops systemMetadata)."""
    from azure.ai.ml._utils._registry_utils import get_registry_versioned_asset

    ops = registry.models
    return dict(
        get_registry_versioned_asset(ops._registry_service_client, "models", name, version, ops._resource_group_name, ops._registry_name)
    )


def resolve_foundation(clients: AzureClients, spec: RunSpec, today: date | None = None) -> FoundationModel:
    ref = spec.model
    registry = clients.registry(ref.registry)
    selector = f"version {ref.version}" if ref.version else f"label {ref.label}"
    model = call(
        f"getting model {ref.name} ({selector}) from registry {ref.registry}",
        lambda: registry.models.get(ref.name, version=ref.version, label=None if ref.version else ref.label),
    )
    version = str(model.version)
    body = call(f"reading the metadata of model {ref.name} version {version}", lambda: registry_version_body(registry, ref.name, version))
    facts = read_facts(body)
    return FoundationModel(
        name=ref.name,
        version=version,
        uri=str(model.id),
        finetune_allow_list=facts.finetune_skus,
        inference_allow_list=facts.inference_skus,
        defaults=facts.defaults,
        findings=tuple(model_findings(spec, version, facts, today or datetime.now(UTC).date()) + _serverless_of(clients, spec, facts)),
    )


def _serverless_of(clients: AzureClients, spec: RunSpec, facts: ModelFacts) -> list[Finding]:
    if "serverless" not in (spec.finetune.kind, spec.deploy.kind):
        return []
    subscribed = None
    if facts.publisher and facts.publisher.lower() != "microsoft":
        base = f"azureml://registries/{spec.model.registry}/models/{spec.model.name}".lower()
        subs = call("listing marketplace subscriptions", lambda: list(clients.workspace.marketplace_subscriptions.list()))
        subscribed = any(str(s.model_id or "").lower() == base for s in subs)
    return serverless_findings(spec, facts, clients.location, subscribed)


def _version_order(version: str) -> tuple[int, int | str]:
    return (1, int(version)) if version.isdigit() else (0, version)


def newest_version(clients: AzureClients, spec: RunSpec, look_at: int = 5) -> str | None:
    """The newest version of the spec's model in its registry that is not archived (archiving is read from the
    version's REST body, as ``resolve_foundation`` reads it; the newest ``look_at`` versions are asked)."""
    name = spec.model.name
    registry = clients.registry(spec.model.registry)
    listed = call(f"listing versions of model {name} in registry {spec.model.registry}", lambda: list(registry.models.list(name=name)))
    for version in sorted({str(m.version) for m in listed}, key=_version_order, reverse=True)[:look_at]:
        body = call(f"reading the metadata of model {name} version {version}", lambda v=version: registry_version_body(registry, name, v))  # type: ignore[misc]
        if not read_facts(body).archived:
            return version
    return None


def output_uri(job_name: str) -> str:
    return f"azureml://jobs/{job_name}/outputs/trained_model"


def register(clients: AzureClients, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel:
    """Register the job's ``trained_model`` output; a version already registered from this job is reused."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    ws = clients.workspace
    versions = _versions(clients, name)
    existing = next((m for m in versions if (m.tags or {}).get(naming.TAG_JOB) == job_name), None)
    if existing is not None:
        return _record(existing)
    # A timestamp, and past every numeric version already there: a version is immutable, and two jobs may
    # finish in the same second.
    taken = [int(m.version) for m in versions if str(m.version).isdigit()]
    version = str(max(int(datetime.now(UTC).strftime("%Y%m%d%H%M%S")), max(taken, default=0) + 1))
    model = Model(
        path=output_uri(job_name),
        type=AssetTypes.MLFLOW_MODEL,
        name=name,
        version=version,
        description=f"fine-tuned by job {job_name}",
        tags={**tags, naming.TAG_JOB: job_name},
    )
    created = call(f"registering model {name} from job {job_name}", lambda: ws.models.create_or_update(model))
    return _record(created)


def adopt(clients: AzureClients, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel:
    """The model a fine-tuning job registered itself (``outputs.registered_model``), as the service reports it: the
    version made by ``job_name``, never assumed to be 1; the lineage tags are added to it (once).
    ``TransientBackendError`` while the registration is not visible yet."""
    from gitops.errors import TransientBackendError

    ws = clients.workspace
    versions = _versions(clients, name)
    found = next((m for m in versions if (m.tags or {}).get(naming.TAG_JOB) == job_name), None)
    if found is not None:
        return _record(found)
    made = next((m for m in versions if str(getattr(m, "job_name", "") or "") == job_name), None)
    if made is None:
        raise TransientBackendError(f"the model job {job_name} registers as {name} is not visible yet")
    made.tags = {**(made.tags or {}), **tags, naming.TAG_JOB: job_name}
    updated = call(f"tagging model {name} v{made.version} of job {job_name}", lambda: ws.models.create_or_update(made))
    return _record(updated)


def _versions(clients: AzureClients, name: str) -> list[Any]:
    from azure.core.exceptions import ResourceNotFoundError

    ws = clients.workspace

    def versions() -> list[Any]:
        try:
            return list(ws.models.list(name=name))
        except ResourceNotFoundError:
            return []

    return list(call(f"listing versions of model {name}", versions))


def _record(model: Any) -> RegisteredModel:
    return RegisteredModel(
        name=model.name, version=str(model.version), uri=f"azureml:{model.name}:{model.version}", tags=dict(model.tags or {})
    )


def registry_model(clients: AzureClients, registry: str, name: str, version: str) -> RegisteredModel:
    """A model version of the registry ``registry``, as a workspace deploys it (``azureml://registries/...``), with
    its tags; ``NotFoundError`` when there is none (yet)."""
    reg = clients.registry(registry)
    found = call(f"getting model {name} v{version} of registry {registry}", lambda: reg.models.get(name, version=version))
    return RegisteredModel(
        name=name,
        version=str(version),
        uri=f"azureml://registries/{registry}/models/{name}/versions/{version}",
        tags=dict(found.tags or {}),
    )


def share(clients: AzureClients, model: RegisteredModel, registry: str, name: str) -> RegisteredModel | None:
    """Share the workspace's model version into ``registry`` as ``name`` (the same version number): the registry's
    version when it is there, held to the content digest of the workspace's; else the import started, not awaited
    (the service answers 202 and copies the files for up to an hour: tests/contracts/sdk-recordings/
    model_share_to_registry.json), and None: a later look finds it. The import carries the model's tags along."""
    digest = model.tags.get(naming.TAG_CONTENT)
    if not digest:
        raise ConflictError(
            f"model {model.name} version {model.version} carries no content digest: nothing proves what a later environment would serve",
            hint="models trained by this release carry one (the pipeline's model_digest step); train the run again to promote it",
        )
    try:
        there = registry_model(clients, registry, name, model.version)
    except NotFoundError:
        there = None
    if there is not None:
        if there.tags.get(naming.TAG_CONTENT) != digest:
            found = there.tags.get(naming.TAG_CONTENT) or "(none)"
            raise ConflictError(
                f"registry {registry} has {name} v{model.version} with digest {found}, not {digest}",
                hint="another model took that name and version in the registry; it is never served in its place",
            )
        return there
    ws = clients.workspace_entity
    source = f"azureml://locations/{ws.location}/workspaces/{ws._workspace_id}/models/{model.name}/versions/{model.version}"
    body = {"properties": {"referenceType": "Id", "destinationName": name, "destinationVersion": model.version, "sourceAssetId": source}}
    from azure.ai.ml._utils._registry_utils import begin_import_registry_asset
    from azure.core.polling import NoPolling

    ops = clients.registry(registry).models
    # The SDK's own import (what ml_client.models.share sends), answered and left running: no poller waits on it
    # here, in a timer's invocation.
    call(
        f"sharing model {model.name} v{model.version} into registry {registry}",
        lambda: begin_import_registry_asset(
            ops._registry_service_client,
            ops._operation_scope.resource_group_name,
            registry,
            body,
            polling_cls=lambda *_, **__: NoPolling(),
        ),
    )
    return None
