"""What each backend is, as data (as SkyPilot declares its clouds): what it does not support and why, whether it
has online checks, prices, named compute and component defaults, its offline facts (GPUs per size, the default
serving size), the install extra that brings its SDK; and the check of a spec against that data. Each backend
writes its own ``kind.yaml`` beside its code; they are read here as files, so validation knows every backend
without importing one (or its SDK). Code elsewhere asks a backend's kind (``kind_of(spec.backend).online_checks``),
never its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from gitops.errors import ConfigurationError, UnsupportedError
from gitops.spec.findings import Code, Finding, error, warning
from gitops.spec.model import RunSpec


class Feature(StrEnum):
    MULTI_NODE = "multi_node"
    DEEPSPEED = "deepspeed"
    GPU_SKUS = "gpu_skus"
    REGISTRY_MODELS = "registry_models"  # foundation models from an Azure ML registry
    LOCAL_MODEL_DIRS = "local_model_dirs"
    FP16 = "fp16"
    UNMERGED_LORA = "unmerged_lora"  # serving a LoRA adapter on top of a separately loaded base
    LOCAL_DATA_FILES = "local_data_files"  # data.train_path/test_path naming a file on this machine
    SERVER_RESTART = "server_restart"  # endpoint servers of our own, which reconcile starts again when they died
    HOSTED = "hosted"  # driven by the Function App: what it does happens elsewhere (Azure), never on the Function's host
    LOCAL_REGISTRY = "local_registry"  # foundation models built and registered on this machine (registry: local)
    PROMOTION = "promotion"  # a model shared into the registry of gitops.yaml and released into a later environment
    FINETUNING_JOB = "finetuning_job"  # finetune.kind: job, the standalone fine-tuning job on a VM size you name
    SERVERLESS_TRAINING = "serverless_training"  # finetune.kind: serverless, billed per token
    SERVERLESS_ENDPOINTS = "serverless_endpoints"  # deploy.kind: serverless, pay-per-token endpoints
    SERVERLESS_PROMOTION = "serverless_promotion"  # a serverless-served run released into a later environment
    JOB_PROMOTION = "job_promotion"  # a run trained by the standalone fine-tuning job released into a later environment


# Data a job elsewhere can read: a registered data asset, or a URI. Anything else names a file on this machine.
REMOTE_DATA_PREFIXES = ("azureml:", "https://", "abfss://", "wasbs://")


def is_remote_data(path: str) -> bool:
    return path.strip().lower().startswith(REMOTE_DATA_PREFIXES)


@dataclass(frozen=True)
class BackendKind:
    """What a backend is: asked instead of branching on its name. Each backend writes its own in ``kind.yaml`` beside
    its code (``gitops/backends/<name>/kind.yaml``), read here as data: no backend module and no SDK is imported."""

    name: str
    factory: str  # "module:Class", imported on first use (its SDK with it)
    extra: str  # the install extra that brings the SDK: pip install 'finetune-gitops[<extra>]'
    unsupported: Mapping[Feature, str]  # what it cannot do, and why
    online_checks: bool  # a workspace and a registry answer the online checks (model, retirement, compute, quota)
    billed: bool  # training and serving are billed at a VM price list (the plan's cost rows)
    named_compute: bool  # compute.cluster / instance_type name VM sizes: allow lists apply, GPUs come from the size
    component_defaults: bool  # what the spec leaves unset takes the notebook's and the model's defaults
    compute_label: str  # how the plan names the compute when no cluster is given
    # Where the gate's online evaluation reads a data.test_path from (a dataset's test split is always prepared where
    # it reads it): URI prefixes, and whether a file on the machine running the lifecycle counts; and why not others.
    held_out_prefixes: tuple[str, ...]
    held_out_local_files: bool
    held_out_elsewhere: str
    eval_loss_follows_strategy: bool  # no eval loss is logged under finetune.params.evaluation_strategy: disable
    # Other repositories may use the same workspace (an Azure ML workspace is a team's): nothing is written there
    # without this repository's identity (GITOPS_REPO) on it.
    shared_workspace: bool = False
    # The run type its job events give a whole job (``runType``); any other run type is a step inside one, whose
    # events are not the run's. None: its events carry no run type.
    job_run_type: str | None = None
    default_deploy_sku: str | None = None  # what deployments use when deploy.instance_type is unset (named compute)
    # The training kind -> serving kind combinations it refuses ("pipeline->serverless"), each with its reason: what a
    # kind of training produces is not always what a kind of serving can serve.
    refused_kinds: Mapping[str, str] = field(default_factory=dict)
    gpus_per_sku: Mapping[str, int] = field(default_factory=dict)  # GPUs per node by size (lower case), offline

    def supports(self, feature: Feature) -> bool:
        return feature not in self.unsupported

    def gpus(self, sku: str | None) -> int | None:
        """GPUs per node of a size, as far as this backend knows offline (None: unknown, or no size)."""
        return self.gpus_per_sku.get(sku.lower()) if sku else None


BACKENDS_DIR = Path(__file__).resolve().parent.parent / "backends"


def _read_kind(path: Path) -> BackendKind:
    from pydantic import TypeAdapter

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = sorted(set(data) - {f.name for f in fields(BackendKind)}) if isinstance(data, dict) else []
    if unknown:
        raise ConfigurationError(f"{path.name} of backend {path.parent.name} has unknown fields: {', '.join(unknown)}")
    try:
        kind = TypeAdapter(BackendKind).validate_python(data)
    except ValueError as exc:
        raise ConfigurationError(f"{path.name} of backend {path.parent.name} is invalid: {exc}".splitlines()[0]) from None
    if kind.name != path.parent.name:
        raise ConfigurationError(f"{path} names backend '{kind.name}', not its folder's '{path.parent.name}'")
    return kind


KINDS: dict[str, BackendKind] = {k.name: k for k in (_read_kind(p) for p in sorted(BACKENDS_DIR.glob("*/kind.yaml")))}
# The run types of a whole job, whatever the backend: an event of another run type is a step inside one.
JOB_RUN_TYPES = frozenset(k.job_run_type for k in KINDS.values() if k.job_run_type)
ONLINE_CHECKED = frozenset(k.name for k in KINDS.values() if k.online_checks)


def kind_of(name: str) -> BackendKind:
    kind = KINDS.get(name)
    if kind is None:
        raise UnsupportedError(f"unknown backend '{name}'", hint=f"use one of: {', '.join(KINDS)}")
    return kind


def features_used(spec: RunSpec, params: Mapping[str, Any]) -> dict[Feature, str]:
    """The features a spec asks for, each with the field path that asks."""
    used: dict[Feature, str] = {}
    if spec.compute.nodes > 1:
        used[Feature.MULTI_NODE] = "compute.nodes"
    if params.get("apply_deepspeed") == "true":
        used[Feature.DEEPSPEED] = "finetune.params.apply_deepspeed"
    if spec.compute.instance_type or spec.deploy.instance_type:
        used[Feature.GPU_SKUS] = "compute.instance_type" if spec.compute.instance_type else "deploy.instance_type"
    if spec.model.registry not in ("local",) and spec.model.path is None:
        used[Feature.REGISTRY_MODELS] = "model.registry"
    if spec.model.registry == "local" and spec.model.path is None:
        used[Feature.LOCAL_REGISTRY] = "model.registry"
    if spec.model.path is not None:
        used[Feature.LOCAL_MODEL_DIRS] = "model.path"
    if params.get("precision") == "16":
        used[Feature.FP16] = "finetune.params.precision"
    if params.get("apply_lora") == "true" and params.get("merge_lora_weights") == "false":
        used[Feature.UNMERGED_LORA] = "finetune.params.merge_lora_weights"
    if spec.finetune.kind == "job":
        used[Feature.FINETUNING_JOB] = "finetune.kind"
    if spec.finetune.kind == "serverless":
        used[Feature.SERVERLESS_TRAINING] = "finetune.kind"
    if spec.deploy.kind == "serverless":
        used[Feature.SERVERLESS_ENDPOINTS] = "deploy.kind"
    for field_name in ("train_path", "test_path"):
        value = getattr(spec.data, field_name)
        if value is not None and not is_remote_data(value):
            used.setdefault(Feature.LOCAL_DATA_FILES, f"data.{field_name}")
    return used


# Features whose absence only makes a setting moot: a warning, not an error.
_IGNORABLE = {Feature.GPU_SKUS, Feature.UNMERGED_LORA}


def capability_findings(spec: RunSpec, params: Mapping[str, Any]) -> list[Finding]:
    kind = KINDS.get(spec.backend)
    unsupported = kind.unsupported if kind is not None else {}
    out = []
    for feature, path in features_used(spec, params).items():
        if feature in unsupported:
            maker = warning if feature in _IGNORABLE else error
            out.append(
                maker(path, f"the {spec.backend} backend does not support {feature.value}: {unsupported[feature]}", code=Code.CAPABILITY)
            )
    combination = f"{spec.finetune.kind}->{spec.deploy.kind}"
    refused = kind.refused_kinds.get(combination) if kind is not None else None
    if refused:
        out.append(
            error(
                "deploy.kind",
                f"the {spec.backend} backend cannot serve a model trained by finetune.kind {spec.finetune.kind} on a "
                f"{spec.deploy.kind} endpoint: {refused}",
                "change finetune.kind or deploy.kind (docs/spec.md lists the combinations each backend serves)",
                code=Code.CAPABILITY,
            )
        )
    return out


def not_hosted(name: str) -> str | None:
    """Why the Function App does not run backend ``name`` (None: it does)."""
    kind = KINDS.get(name)
    return kind.unsupported.get(Feature.HOSTED) if kind else None
