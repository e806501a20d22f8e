"""The declared interface of the ``chat_completion_pipeline`` registry component.

The interface is read from the component YAML bundled in ``pipelines/components`` (the single source
of truth, also loadable by ``azure.ai.ml.load_component``), and used to check and normalise the
``finetune.params`` of a spec: names, types, minimums, enums, and YAML booleans/integers turned into
the strings the component declares.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

import pipelines
from gitops.spec.findings import Code, Finding, error

if TYPE_CHECKING:
    from gitops.spec.model import RunSpec

COMPONENT_NAME = "chat_completion_pipeline"
COMPONENT_DIR = Path(pipelines.__file__).resolve().parent / "components"  # the interface files, beside the jobs

# Inputs that gitops derives from other spec fields; users set those fields instead.
SYSTEM_INPUTS: dict[str, str] = {
    "compute_model_import": "compute.cluster",
    "compute_preprocess": "compute.cluster",
    "compute_finetune": "compute.cluster",
    "compute_model_evaluation": "compute.cluster",
    "instance_type_model_import": "compute.instance_type",
    "instance_type_preprocess": "compute.instance_type",
    "instance_type_finetune": "compute.instance_type",
    "instance_type_model_evaluation": "compute.instance_type",
    "num_nodes_finetune": "compute.nodes",
    "number_of_gpu_to_use_finetuning": "compute.instance_type (GPUs per node of the SKU)",
    "mlflow_model_path": "model",
    "pytorch_model_path": "model",
    "huggingface_id": "model",
    "train_file_path": "data",
    "validation_file_path": "data",
    "test_file_path": "data",
    "train_mltable_path": "data",
    "validation_mltable_path": "data",
    "test_mltable_path": "data",
    "task_name": "(fixed: ChatCompletion)",
}

# Path-typed inputs that a spec cannot give as a plain value.
_ASSET_TYPES = {"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model"}


@dataclass(frozen=True)
class ComponentInput:
    name: str
    type: str  # string | integer | number | uri_file | mltable | mlflow_model | custom_model ...
    default: Any = None
    enum: tuple[str, ...] | None = None
    min: float | None = None
    optional: bool = True
    max: float | None = None

    @property
    def is_boolean(self) -> bool:
        return self.enum == ("true", "false")


@dataclass(frozen=True)
class ComponentInterface:
    name: str
    version: str
    inputs: dict[str, ComponentInput]
    outputs: dict[str, str]

    @property
    def user_params(self) -> list[str]:
        return [n for n in self.inputs if n not in SYSTEM_INPUTS]


def known_versions() -> list[str]:
    prefix = f"{COMPONENT_NAME}-"
    return sorted(p.stem[len(prefix) :] for p in COMPONENT_DIR.glob(f"{prefix}*.yaml"))


def component_file(version: str) -> Path:
    return COMPONENT_DIR / f"{COMPONENT_NAME}-{version}.yaml"


@lru_cache(maxsize=8)
def load_interface(version: str) -> ComponentInterface | None:
    """The bundled interface of ``version``, or None when none is bundled."""
    path = component_file(version)
    if not path.is_file():
        return None
    raw = yaml.safe_load(path.read_text())
    inputs = {
        name: ComponentInput(
            name=name,
            type=str(decl["type"]),
            default=decl.get("default"),
            enum=tuple(str(v) for v in decl["enum"]) if "enum" in decl else None,
            min=decl.get("min"),
            optional=bool(decl.get("optional", False)),
        )
        for name, decl in raw["inputs"].items()
    }
    outputs = {name: str(decl["type"]) for name, decl in raw["outputs"].items()}
    return ComponentInterface(str(raw["name"]), str(raw["version"]), inputs, outputs)


# Bounds the component does not declare but training needs: a negative learning rate or 10^38 steps is a mistake.
MAX_INT = 1_000_000_000
MAX_NUMBER = 1e9
POSITIVE_PARAMS = frozenset(
    {
        "learning_rate",
        "num_train_epochs",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "max_seq_length",
        "lora_r",
        "lora_alpha",
    }
)


def _did_you_mean(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _normalise(decl: ComponentInput, value: Any, path: str) -> tuple[Any, Finding | None]:  # noqa: C901  (one branch per declared input type, read flat)
    """Check one value against its declaration; return the value the component expects."""
    if value is None:
        return None, error(path, "has no value", "give a value or remove the line", code=Code.PARAM)
    if decl.type in _ASSET_TYPES:
        return None, error(path, f"is a {decl.type} input and cannot be given as a parameter", code=Code.PARAM)
    if decl.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            elif isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
                value = int(value.strip())
            else:
                return None, error(path, f"must be an integer, got {str(value)[:40]!r}", code=Code.PARAM)
        if abs(value) > MAX_INT:
            return None, error(path, f"{value:.3g} is out of range (at most {MAX_INT:,})", "use a realistic value", code=Code.PARAM)
    elif decl.type == "number":
        if isinstance(value, bool):
            return None, error(path, f"must be a number, got {value!r}", code=Code.PARAM)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None, error(path, f"must be a number, got {value!r}", code=Code.PARAM)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, error(path, f"must be a finite number, got {str(value)[:40]!r}", code=Code.PARAM)
        if abs(value) > MAX_NUMBER:
            return None, error(path, f"{value:.3g} is out of range (at most {MAX_NUMBER:g})", "use a realistic value", code=Code.PARAM)
    elif decl.type == "string":
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            return None, error(path, f"must be a string, got {type(value).__name__}", code=Code.PARAM)
        if decl.is_boolean:
            value = value.lower()
    if decl.enum is not None and value not in decl.enum:
        allowed = ", ".join(decl.enum)
        hint = _did_you_mean(str(value), list(decl.enum)) or f"use one of: {allowed}"
        return None, error(path, f"{value!r} is not allowed; allowed: {allowed}", hint, code=Code.PARAM)
    if decl.min is not None and isinstance(value, (int, float)) and value < decl.min:
        return None, error(path, f"must be at least {decl.min:g}, got {value}", code=Code.PARAM)
    if decl.max is not None and isinstance(value, (int, float)) and value > decl.max:
        return None, error(path, f"must be at most {decl.max:g}, got {value}", code=Code.PARAM)
    name = path.rsplit(".", 1)[-1]
    if name in POSITIVE_PARAMS and isinstance(value, (int, float)) and value <= 0:
        return None, error(path, f"must be greater than 0, got {value}", code=Code.PARAM)
    return value, None


def check_params(params: dict[str, Any], version: str, base_path: str = "finetune.params") -> tuple[dict[str, Any], list[Finding]]:
    """Validate ``params`` against the interface of ``version``; return (normalised params, findings)."""
    interface = load_interface(version)
    if interface is None:
        known = ", ".join(known_versions()) or "none"
        return dict(params), [
            error(
                "finetune.component_version",
                f"no interface of {COMPONENT_NAME} {version} is bundled; known: {known}",
                "pin a known version, or add its interface under pipelines/components",
                code=Code.PARAM,
            )
        ]

    def unknown(name: str, path: str) -> Finding:
        if name in SYSTEM_INPUTS:
            return error(path, "is set by gitops, not by the spec", f"set {SYSTEM_INPUTS[name]} instead", code=Code.PARAM)
        hint = _did_you_mean(name, interface.user_params) or "see the component's inputs in docs/spec.md"
        return error(path, f"unknown parameter of {COMPONENT_NAME} {version}", hint, code=Code.PARAM)

    inputs = {k: v for k, v in interface.inputs.items() if k not in SYSTEM_INPUTS}
    return check_declared(params, inputs, base_path, unknown)


def check_declared(
    params: Mapping[str, Any], declared: Mapping[str, ComponentInput], base_path: str, unknown: Callable[[str, str], Finding]
) -> tuple[dict[str, Any], list[Finding]]:
    """Each of ``params`` normalised against its declaration (``unknown(name, path)``: the finding for a name none
    declares): (normalised params, findings)."""
    out: dict[str, Any] = {}
    findings: list[Finding] = []
    for name, value in params.items():
        path = f"{base_path}.{name}"
        decl = declared.get(name)
        if decl is None:
            findings.append(unknown(name, path))
            continue
        normalised, finding = _normalise(decl, value, path)
        if finding is not None:
            findings.append(finding)
        else:
            out[name] = normalised
    return out, findings


# The reference notebook's parameters (chat-completion fine-tune of Phi-3-mini on ultrachat_200k).
NOTEBOOK_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 3,
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "learning_rate": 5e-6,
    "lr_scheduler_type": "cosine",
    "apply_lora": "true",
    "apply_deepspeed": "true",
    "deepspeed_stage": "2",
}


def effective_params(spec: RunSpec, params: Mapping[str, Any], model_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters a job really gets: the notebook's, the model's, then the spec's, where the backend fills gaps
    with the component's defaults (the local trainer keeps its own)."""
    from gitops.spec.capabilities import kind_of

    if spec.finetune.kind != "pipeline" or not kind_of(spec.backend).component_defaults:  # a fine-tuning job's own
        return dict(params)
    interface = load_interface(spec.finetune.component_version)
    declared = set(interface.inputs) if interface else set()
    from_model = {k: v for k, v in (model_defaults or {}).items() if k in declared and k not in SYSTEM_INPUTS}
    return {**NOTEBOOK_DEFAULTS, **from_model, **params}


def model_uri(spec: RunSpec) -> str:
    ref = spec.model
    selector = f"versions/{ref.version}" if ref.version is not None else f"labels/{ref.label}"
    return f"azureml://registries/{ref.registry}/models/{ref.name}/{selector}"
