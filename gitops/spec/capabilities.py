"""What each backend is, as data (as SkyPilot declares its clouds): what it does not support and why, whether it
has online checks, prices, named compute and component defaults, the install extra that brings its SDK; and the
check of a spec against that data. It sits with the specs, so that validation reads it without importing any
backend; code elsewhere asks a backend's kind (``kind_of(spec.backend).online_checks``), never its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gitops.errors import UnsupportedError
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


# Data a job elsewhere can read: a registered data asset, or a URI. Anything else names a file on this machine.
REMOTE_DATA_PREFIXES = ("azureml:", "https://", "abfss://", "wasbs://")


def is_remote_data(path: str) -> bool:
    return path.strip().lower().startswith(REMOTE_DATA_PREFIXES)


UNSUPPORTED: dict[str, dict[Feature, str]] = {
    "local": {
        Feature.MULTI_NODE: "a local job runs in one process on this machine",
        Feature.DEEPSPEED: "DeepSpeed needs CUDA GPUs; the local backend trains on the CPU",
        Feature.GPU_SKUS: "the local backend has no VM SKUs; compute.instance_type is ignored",
        Feature.REGISTRY_MODELS: "Azure ML registry models cannot be downloaded offline; use registry: local or path:",
        Feature.FP16: "fp16 training needs a GPU; the local backend trains in fp32",
        Feature.UNMERGED_LORA: "local endpoints serve standalone models, so LoRA weights are always merged; "
        "merge_lora_weights: false is ignored",
        Feature.HOSTED: "the local backend trains and serves on the machine that runs it: in the Function that is the "
        "Function's host (its files read as data, its CPU as the trainer); run it with `gitops run`",
    },
    "azureml": {
        Feature.LOCAL_MODEL_DIRS: "a job in Azure cannot read a directory on this machine; register the model first",
        Feature.SERVER_RESTART: "managed online endpoints run on Azure's servers: there is no server of ours to restart",
        Feature.LOCAL_DATA_FILES: "the job runs in Azure and the Function that submits it has no checkout, so it never reads "
        "a local path; name a hub dataset (data.dataset), an azureml: data asset or an https:// URI",
        Feature.LOCAL_REGISTRY: "models of the local registry are built on one machine; use registry: azureml "
        "(or your workspace's registry)",
    },
}


@dataclass(frozen=True)
class BackendKind:
    """What a backend is: asked instead of branching on its name."""

    name: str
    factory: str  # "module:Class", imported on first use (its SDK with it)
    extra: str  # the install extra that brings the SDK: pip install 'finetune-gitops[<extra>]'
    unsupported: Mapping[Feature, str]
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

    def supports(self, feature: Feature) -> bool:
        return feature not in self.unsupported


KINDS: dict[str, BackendKind] = {
    "local": BackendKind(
        "local",
        "gitops.backends.local.backend:LocalBackend",
        "local",
        UNSUPPORTED["local"],
        online_checks=False,
        billed=False,
        named_compute=False,
        component_defaults=False,
        compute_label="this machine (CPU)",
        held_out_prefixes=(),
        held_out_local_files=True,
        held_out_elsewhere="the local backend reads its test split from a file on this machine",
        eval_loss_follows_strategy=False,  # the local trainer evaluates once at the end whenever it has a test split
    ),
    "azureml": BackendKind(
        "azureml",
        "gitops.backends.azureml.backend:AzureMLBackend",
        "azure",
        UNSUPPORTED["azureml"],
        online_checks=True,
        billed=True,
        named_compute=True,
        component_defaults=True,
        compute_label="serverless",
        # The Function reads data assets and datastore paths with its identity; it never fetches an arbitrary URL.
        held_out_prefixes=("azureml:",),
        held_out_local_files=False,
        held_out_elsewhere="the Function reads a test split from an azureml: data asset or datastore path, not from a URL",
        eval_loss_follows_strategy=True,
        shared_workspace=True,
        job_run_type="azureml.PipelineRun",  # a pipeline job; its steps' events say azureml.StepRun
    ),
}
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
    for field_name in ("train_path", "test_path"):
        value = getattr(spec.data, field_name)
        if value is not None and not is_remote_data(value):
            used.setdefault(Feature.LOCAL_DATA_FILES, f"data.{field_name}")
    return used


# Features whose absence only makes a setting moot: a warning, not an error.
_IGNORABLE = {Feature.GPU_SKUS, Feature.UNMERGED_LORA}


def capability_findings(spec: RunSpec, params: Mapping[str, Any]) -> list[Finding]:
    unsupported = UNSUPPORTED.get(spec.backend, {})
    out = []
    for feature, path in features_used(spec, params).items():
        if feature in unsupported:
            maker = warning if feature in _IGNORABLE else error
            out.append(
                maker(path, f"the {spec.backend} backend does not support {feature.value}: {unsupported[feature]}", code=Code.CAPABILITY)
            )
    return out


def ensure_supported(spec: RunSpec, params: Mapping[str, Any]) -> None:
    problems = [f for f in capability_findings(spec, params) if f.is_error]
    if problems:
        raise UnsupportedError(problems[0].message, hint="change the spec or pick another backend")


def not_hosted(name: str) -> str | None:
    """Why the Function App does not run backend ``name`` (None: it does)."""
    kind = KINDS.get(name)
    return kind.unsupported.get(Feature.HOSTED) if kind else None
