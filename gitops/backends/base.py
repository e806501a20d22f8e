"""The one interface that the lifecycle uses and every backend implements, and its typed records.

A backend resolves a foundation model, checks compute, prepares data, runs a fine-tune job, registers
the result, and manages endpoints and deployments. What a backend cannot do is declared up front
(``Feature`` -> reason) and checked before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from gitops.spec.findings import Finding
from gitops.spec.model import RunSpec


class Feature(StrEnum):
    MULTI_NODE = "multi_node"
    DEEPSPEED = "deepspeed"
    GPU_SKUS = "gpu_skus"
    REGISTRY_MODELS = "registry_models"  # foundation models from an Azure ML registry
    LOCAL_MODEL_DIRS = "local_model_dirs"
    FP16 = "fp16"
    UNMERGED_LORA = "unmerged_lora"  # serving a LoRA adapter on top of a separately loaded base


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class FoundationModel:
    name: str
    version: str
    uri: str  # what the job consumes: azureml://... or a local directory / models:/ URI
    finetune_allow_list: tuple[str, ...] | None = None
    inference_allow_list: tuple[str, ...] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class PreparedData:
    train_uri: str
    test_uri: str | None
    train_rows: int | None = None
    test_rows: int | None = None
    local_test_path: str | None = None  # a copy on this machine, for the smoke test's default conversation


@dataclass(frozen=True)
class JobStatus:
    name: str
    state: JobState
    tags: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    log_path: str | None = None
    portal_url: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    progress: Mapping[str, Any] = field(default_factory=dict)  # step, max_steps, loss when known


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    uri: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    model_uri: str
    healthy: bool = True
    created_at: datetime | None = None


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    scoring_uri: str
    tags: Mapping[str, str] = field(default_factory=dict)
    traffic: Mapping[str, int] = field(default_factory=dict)
    deployments: tuple[DeploymentInfo, ...] = ()
    created_at: datetime | None = None


@dataclass(frozen=True)
class InvokeResult:
    status_code: int
    body: str
    latency_ms: float


@dataclass(frozen=True)
class Usage:
    """Requests seen in a window; ``known`` False means the figures are missing (never 'idle')."""

    endpoint: str
    known: bool
    requests: int | None = None
    last_request_at: datetime | None = None


@runtime_checkable
class Backend(Protocol):
    name: str
    unsupported: Mapping[Feature, str]

    def resolve_model(self, spec: RunSpec) -> FoundationModel: ...
    def check_compute(self, spec: RunSpec, model: FoundationModel) -> list[Finding]: ...
    def prepare_data(self, spec: RunSpec, job_name: str) -> PreparedData: ...
    def submit(self, spec: RunSpec, params: Mapping[str, Any], job_name: str, tags: Mapping[str, str],
               model: FoundationModel, data: PreparedData) -> JobStatus: ...
    def get_job(self, job_name: str) -> JobStatus | None: ...
    def cancel_job(self, job_name: str) -> None: ...
    def register_model(self, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel: ...
    def ensure_endpoint(self, name: str, tags: Mapping[str, str]) -> EndpointInfo: ...
    def create_deployment(self, endpoint: str, deployment: str, model: RegisteredModel, spec: RunSpec) -> DeploymentInfo: ...
    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointInfo: ...
    def invoke(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None,
               timeout_s: float = 60.0) -> InvokeResult: ...
    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...
    def get_endpoint(self, name: str) -> EndpointInfo | None: ...
    def list_endpoints(self) -> list[EndpointInfo]: ...
    def delete_endpoint(self, name: str) -> None: ...
    def usage(self, endpoints: list[str], window: timedelta) -> dict[str, Usage]: ...
