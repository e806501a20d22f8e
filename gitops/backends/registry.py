"""The explicit backend registry: spec ``backend:`` name -> capabilities and a lazy factory.

Capabilities (what a backend does NOT support, and why) are plain data here so that offline
validation can check them without importing any backend's SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from gitops.backends.base import Backend, Feature, is_remote_data
from gitops.errors import UnsupportedError
from gitops.spec.findings import Finding, error, warning
from gitops.spec.model import RunSpec

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
    },
}

_FACTORIES: dict[str, str] = {
    "local": "gitops.backends.local.backend:LocalBackend",
    "azureml": "gitops.backends.azureml.backend:AzureMLBackend",
}


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
            out.append(maker(path, f"the {spec.backend} backend does not support {feature.value}: {unsupported[feature]}"))
    if spec.backend == "azureml" and spec.model.registry == "local":
        out.append(error("model.registry", "the azureml backend cannot use the local registry",
                         "use registry: azureml (or your workspace's registry)"))
    return out


def ensure_supported(spec: RunSpec, params: Mapping[str, Any]) -> None:
    problems = [f for f in capability_findings(spec, params) if f.is_error]
    if problems:
        raise UnsupportedError(problems[0].message, hint="change the spec or pick another backend")


def backend_cache(preset: Mapping[str, Backend] | None = None) -> Callable[[str], Backend]:
    """A ``backend_for(name)``: each backend made on first use (``get_backend``), then reused."""
    cache: dict[str, Backend] = dict(preset or {})

    def backend_for(name: str) -> Backend:
        if name not in cache:
            cache[name] = get_backend(name)
        return cache[name]

    return backend_for


def not_hosted(name: str) -> str | None:
    """Why the Function App does not run backend ``name`` (None: it does)."""
    return UNSUPPORTED.get(name, {}).get(Feature.HOSTED)


def hosted_only(backend_for: Callable[[str], Backend]) -> Callable[[str], Backend]:
    """``backend_for`` for the Function App: a backend that would act on the Function's own host is refused, by name,
    before it is made (whatever the repo's policy allows: the policy speaks for specs, not for where they run)."""

    def guarded(name: str) -> Backend:
        why = not_hosted(name)
        if why is not None:
            raise UnsupportedError(f"backend '{name}' does not run in the Function: {why}",
                                   hint="use backend: azureml in runs/ (local specs are for `gitops run` on your machine)")
        return backend_for(name)

    return guarded


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend registered under ``name`` (its SDK is imported only now)."""
    target = _FACTORIES.get(name)
    if target is None:
        raise UnsupportedError(f"unknown backend '{name}'", hint=f"use one of: {', '.join(_FACTORIES)}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnsupportedError(f"the {name} backend is not available here ({exc.name} cannot be imported)",
                               hint=f"install the extra it needs: pip install 'finetune-gitops[{'azure' if name == 'azureml' else name}]'"
                               ) from exc
    factory: Callable[..., Backend] = getattr(module, attr)
    return factory(**options)
