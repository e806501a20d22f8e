"""Foundation models from a registry (metadata, findings) and registration of a job's trained model.

The model's fine-tune metadata sits in ``tags`` on older versions and in ``properties`` or
``system_metadata`` on newer ones; all are read, in that order, the later winning. Lists and
``model_specific_defaults`` are strings that hold Python literals (``ast.literal_eval``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.errors import call
from gitops.backends.base import FoundationModel, RegisteredModel
from gitops.spec.findings import Finding, error, warning
from gitops.spec.model import RunSpec

FINETUNE_ALLOW, INFERENCE_ALLOW, MODEL_DEFAULTS = ("finetune_compute_allow_list", "inference_compute_allow_list",
                                                   "model_specific_defaults")
RETIREMENT_TAGS = ("FinetuneRetirementDate", "finetune_retirement_date")


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value)
        except (ValueError, SyntaxError):
            continue
    return value


def metadata(model: Any) -> dict[str, Any]:
    """Tags overlaid with properties and system metadata, values parsed."""
    merged: dict[str, Any] = {**(getattr(model, "tags", None) or {}), **(getattr(model, "properties", None) or {})}
    system = getattr(model, "_system_metadata", None) or getattr(model, "system_metadata", None) or {}
    if isinstance(system, Mapping):
        merged.update(system)
    return {k: _literal(v) for k, v in merged.items()}


def _sku_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return None


def _retirement(meta: Mapping[str, Any]) -> date | None:
    for key in RETIREMENT_TAGS:
        if key in meta:
            try:
                return date.fromisoformat(str(meta[key])[:10])
            except ValueError:
                return None
    return None


def model_findings(spec: RunSpec, model: Any, meta: Mapping[str, Any], today: date | None = None) -> list[Finding]:
    found: list[Finding] = []
    if spec.model.version is None:
        found.append(warning("model.label", f"label '{spec.model.label}' resolved to version {model.version}: the run is "
                                            "not reproducible", f"pin model.version: \"{model.version}\""))
    if sdk_text(getattr(model, "stage", None)) == "archived":
        found.append(error("model.version", f"{spec.model.name} version {model.version} is archived in registry "
                                            f"{spec.model.registry}", "pick a current model or version"))
    retired = _retirement(meta)
    if retired is not None and retired <= (today or datetime.now(UTC).date()):
        found.append(error("model.name", f"{spec.model.name} stopped supporting fine-tuning on {retired.isoformat()}",
                           "pick a model whose fine-tuning is not retired"))
    return found


def resolve_foundation(clients: AzureClients, spec: RunSpec, today: date | None = None) -> FoundationModel:
    ref = spec.model
    registry = clients.registry(ref.registry)
    selector = f"version {ref.version}" if ref.version else f"label {ref.label}"
    model = call(f"getting model {ref.name} ({selector}) from registry {ref.registry}",
                 lambda: registry.models.get(ref.name, version=ref.version, label=None if ref.version else ref.label))
    meta = metadata(model)
    defaults = meta.get(MODEL_DEFAULTS)
    return FoundationModel(
        name=ref.name, version=str(model.version), uri=str(model.id),
        finetune_allow_list=_sku_list(meta.get(FINETUNE_ALLOW)), inference_allow_list=_sku_list(meta.get(INFERENCE_ALLOW)),
        defaults=dict(defaults) if isinstance(defaults, Mapping) else {},
        findings=tuple(model_findings(spec, model, meta, today)))


def output_uri(job_name: str) -> str:
    return f"azureml://jobs/{job_name}/outputs/trained_model"


def register(clients: AzureClients, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel:
    """Register the job's ``trained_model`` output; a version already registered from this job is reused."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    ws = clients.workspace
    versions = _versions(clients, name)
    existing = next((m for m in versions if (m.tags or {}).get("gitops_job") == job_name), None)
    if existing is not None:
        return _record(existing)
    # A timestamp, and past every numeric version already there: a version is immutable, and two jobs may
    # finish in the same second.
    taken = [int(m.version) for m in versions if str(m.version).isdigit()]
    version = str(max(int(datetime.now(UTC).strftime("%Y%m%d%H%M%S")), max(taken, default=0) + 1))
    model = Model(path=output_uri(job_name), type=AssetTypes.MLFLOW_MODEL, name=name, version=version,
                  description=f"fine-tuned by job {job_name}", tags={**tags, "gitops_job": job_name})
    created = call(f"registering model {name} from job {job_name}", lambda: ws.models.create_or_update(model))
    return _record(created)


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
    return RegisteredModel(name=model.name, version=str(model.version), uri=f"azureml:{model.name}:{model.version}",
                           tags=dict(model.tags or {}))
