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

from gitops.spec.capabilities import REMOTE_DATA_PREFIXES, Feature, is_remote_data  # noqa: F401  (the interface's vocabulary)
from gitops.spec.findings import Finding
from gitops.spec.model import RunSpec
from gitops.spec.policy import RegistryRef, WorkspaceRef


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


class Provisioning(StrEnum):
    """Where a long-running create, update or delete stands, as the service reports it (lower-cased)."""

    CREATING = "creating"
    UPDATING = "updating"
    DELETING = "deleting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def settled(self) -> bool:
        return self in (Provisioning.SUCCEEDED, Provisioning.FAILED, Provisioning.CANCELED)

    @classmethod
    def read(cls, value: object) -> Provisioning:
        """A service's state text (any case; an empty one means the service set none: settled)."""
        text = str(value or "succeeded").lower()
        try:
            return cls(text)
        except ValueError:
            return cls.UPDATING  # an unknown in-between state (Scaling, Provisioning...): look again later


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    model_uri: str
    healthy: bool = True
    created_at: datetime | None = None
    state: Provisioning = Provisioning.SUCCEEDED
    error: str | None = None  # why provisioning failed, when it did
    instance_type: str | None = None  # the VM size it runs on (None: the backend has no sizes)
    instance_count: int | None = None


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    scoring_uri: str
    tags: Mapping[str, str] = field(default_factory=dict)
    traffic: Mapping[str, int] = field(default_factory=dict)
    deployments: tuple[DeploymentInfo, ...] = ()
    created_at: datetime | None = None
    state: Provisioning = Provisioning.SUCCEEDED
    log_path: str | None = None  # the endpoint server's own log, where a backend runs it (None: the service keeps it)

    def deployment(self, name: str) -> DeploymentInfo | None:
        return next((d for d in self.deployments if d.name == name), None)


class EndpointState(StrEnum):
    """A serverless endpoint's own state (REST ``endpointState``), beside its provisioning state."""

    CREATING = "creating"
    ONLINE = "online"
    UPDATING = "updating"
    DELETING = "deleting"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    REINSTATING = "reinstating"
    CREATION_FAILED = "creationfailed"
    DELETION_FAILED = "deletionfailed"
    UNKNOWN = "unknown"

    @classmethod
    def read(cls, value: object) -> EndpointState:
        try:
            return cls(str(value or "unknown").lower())
        except ValueError:
            return cls.UNKNOWN

    @property
    def failed(self) -> bool:
        """It will not serve without a person: creation failed, or it was suspended (a marketplace subscription gone)."""
        return self in (EndpointState.CREATION_FAILED, EndpointState.SUSPENDED, EndpointState.SUSPENDING, EndpointState.DELETION_FAILED)


@dataclass(frozen=True)
class ServerlessInfo:
    """A serverless endpoint: one model, billed per token (and by the hour while a fine-tuned model is deployed)."""

    name: str
    model_id: str  # what it serves (a workspace model id: serverless endpoints refuse registry ids with /versions/)
    scoring_uri: str  # the base a client posts ``/v1/chat/completions`` to
    tags: Mapping[str, str] = field(default_factory=dict)
    state: Provisioning = Provisioning.SUCCEEDED
    endpoint_state: EndpointState = EndpointState.ONLINE
    created_at: datetime | None = None
    healthy: bool = True  # where the backend runs the server itself: it answers
    error: str | None = None

    @property
    def serving(self) -> bool:
        return self.state is Provisioning.SUCCEEDED and self.endpoint_state is EndpointState.ONLINE


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


def failed_response(status: int) -> bool:
    """A failure of the deployment, not of the caller: a 5xx, or 429 (it could not take the request)."""
    return status >= 500 or status == 429


def scored_response(status: int) -> bool:
    """Whether a response is evidence about the deployment: it answered (2xx) or failed (``failed_response``). One
    refused for the caller's fault (400, 401, 404, 413), or with no status at all, says nothing of it."""
    return 200 <= status < 300 or failed_response(status)


@dataclass(frozen=True)
class TrafficWindow:
    """One deployment's scored requests since a mark (``Backend.traffic_mark``), from the endpoint's own metrics:
    how many it answered or failed (``scored_response``: requests refused for the caller's fault are no evidence and
    never count toward ``min_requests``), how many failed on the server's side (5xx, 429), and the 95th percentile
    latency. ``known`` False: the figures could not be read, which never passes for "no errors"."""

    deployment: str
    known: bool
    requests: int = 0
    errors: int = 0
    p95_latency_ms: float | None = None
    note: str = ""  # why the figures are unknown, or how they were read

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@runtime_checkable
class Backend(Protocol):
    """What the lifecycle needs of a backend.

    Contract: every method is idempotent (a repeat with the same arguments does nothing more). Methods
    named ``begin_*`` and the deletions START a long-running operation and return at once: they never wait
    for it. Their progress is read later with ``get_endpoint``/``get_deployment`` (``state``), so no caller
    ever holds a trigger open while Azure provisions. Errors are project errors (``gitops.errors``):
    ``TransientBackendError`` where a retry may help, ``ConflictError`` for a name taken, ``NotFoundError``.
    """

    name: str
    unsupported: Mapping[Feature, str]

    @property
    def topic(self) -> str:
        """The ``topic`` its job events carry (the workspace's ARM id on Azure): the lifecycle takes an event as one
        of its own only when it comes from a topic of its backends."""
        ...

    def is_workspace(self, ref: WorkspaceRef) -> bool:
        """Whether ``ref`` (an environment's workspace in gitops.yaml) is the workspace this backend works in: a run is
        trained and served only in the environment whose workspace it is. Reads nothing remote."""
        ...

    def resolve_model(self, spec: RunSpec) -> FoundationModel:
        """The foundation model the spec names, with its allow lists and findings. Reads only."""
        ...

    def check_compute(self, spec: RunSpec, model: FoundationModel) -> list[Finding]:
        """Findings about the spec's compute (cluster, SKU, nodes). Reads only."""
        ...

    def prepare_data(self, spec: RunSpec, job_name: str) -> PreparedData:
        """Where the job reads its train/test data (uploading local files where the backend needs it). Idempotent (the same
        upload is found by its content); blocks for the upload only. ``SpecError`` for data it cannot use."""
        ...

    def submit(
        self, spec: RunSpec, params: Mapping[str, Any], job_name: str, tags: Mapping[str, str], model: FoundationModel, data: PreparedData
    ) -> JobStatus:
        """Start the fine-tune job under ``job_name`` and return at once; a job of that name already there is returned
        instead (idempotent). ``SpecError`` when the service refuses the job, ``TransientBackendError`` to retry."""
        ...

    def get_job(self, job_name: str) -> JobStatus | None:
        """The job's state now (None when there is no such job). Reads only."""
        ...

    def cancel_job(self, job_name: str) -> None:
        """Ask the job to stop and return at once; a finished or missing job is left alone (idempotent)."""
        ...

    def register_model(self, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        """Register the job's trained model; a version already registered from this job (its ``gitops_job`` tag) is
        returned instead (idempotent). ``NotFoundError`` when the job left no model."""
        ...

    def begin_endpoint(self, name: str, tags: Mapping[str, str]) -> EndpointInfo:
        """Start creating the endpoint if absent (tags merged when present) and return it with its ``state``, without
        waiting (idempotent). ``ConflictError`` when the name is taken where it cannot be ours."""
        ...

    def begin_deployment(self, endpoint: str, deployment: str, model: RegisteredModel, spec: RunSpec) -> DeploymentInfo:
        """Start creating a deployment at 0% traffic and return without waiting; one that exists with the same model is
        returned as it is (idempotent). ``BackendError`` (quota, SKU) when the service refuses it."""
        ...

    def get_deployment(self, endpoint: str, deployment: str) -> DeploymentInfo | None:
        """One deployment and its provisioning ``state`` (None when absent). Reads only."""
        ...

    def begin_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointInfo:
        """Start moving traffic (deployments left out get 0%) and return without waiting; the endpoint's ``traffic``
        shows when it took (idempotent: the same split again changes nothing)."""
        ...

    def invoke(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None, timeout_s: float = 60.0) -> InvokeResult:
        """One scoring request, to ``deployment`` alone when given; blocks at most ``timeout_s``. Not idempotent (a
        model may answer differently); any HTTP status is returned, ``BackendError`` when nothing answered."""
        ...

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        """Start deleting a deployment that takes no traffic and return without waiting; absent is fine (idempotent)."""
        ...

    def get_endpoint(self, name: str) -> EndpointInfo | None:
        """The endpoint with its deployments, traffic and state (None when absent). Reads only."""
        ...

    def list_endpoints(self) -> list[EndpointInfo]:
        """Every endpoint, cheaply (deployments may be summarised). Reads only."""
        ...

    def delete_endpoint(self, name: str) -> None:
        """Start deleting the endpoint and its deployments and return without waiting; absent is fine (idempotent)."""
        ...

    def usage(self, endpoints: list[str], window: timedelta) -> dict[str, Usage]:
        """Requests per endpoint over ``window``; unknown figures are ``known=False``, never zero."""
        ...

    def traffic_mark(self, endpoint: str, deployment: str, now: float) -> dict[str, Any]:
        """A bookmark in the deployment's request metrics at ``now`` (JSON, kept on the rollout's cursor): a time where
        the metrics are a time series, the counters where they are totals. Reads only."""
        ...

    def traffic_since(self, endpoint: str, deployment: str, mark: Mapping[str, Any], now: float) -> TrafficWindow:
        """The deployment's requests, server-side errors and p95 latency between ``mark`` and ``now``. Reads only;
        figures it cannot read are ``known=False``."""
        ...

    def newest_model_version(self, spec: RunSpec) -> str | None:
        """The newest version of the spec's foundation model that is not archived in its registry (None when the
        backend has no registry to ask). Reads only."""
        ...

    def held_out_split(self, test_path: str | None) -> str | None:
        """A local file holding the run's test split (``test_path`` as recorded at submit: a local file, or where the
        backend's job put or read it), for the gate's online evaluation; None when there is none to read."""
        ...


# -- optional protocols: what some backends offer beyond ``Backend``, asked by isinstance, never by a backend's name --


@runtime_checkable
class TracksMetrics(Protocol):
    """A backend whose jobs log to an MLflow tracking store: where the gate and the run report read training metrics."""

    @property
    def tracking_uri(self) -> str: ...


@runtime_checkable
class SharesModels(Protocol):
    """A backend that carries a model to the next environment through the registry of gitops.yaml (``registry:``):
    shared once, held to the content digest computed where it was trained."""

    def share_model(self, model: RegisteredModel, registry: RegistryRef, name: str, tags: Mapping[str, str]) -> RegisteredModel | None:
        """Share ``model`` into the registry as ``name``, once: the same content again returns the version it got.
        None when the share was started and takes longer than a call (an Azure ML import): ``registry_model`` finds
        the version once it is there. ``ConflictError`` when the model carries no content digest or its files no
        longer match it."""
        ...

    def registry_model(self, registry: RegistryRef, name: str, version: str) -> RegisteredModel:
        """A model version of the registry, with its tags (``NotFoundError`` when there is none)."""
        ...

    def receive_model(self, registry: RegistryRef, name: str, version: str) -> RegisteredModel:
        """A registry model version as this workspace deploys it (its ``uri``), with its tags; nothing is trained or
        copied into the workspace. ``ConflictError`` where the backend can see that its files no longer hash to its
        content digest tag."""
        ...


@runtime_checkable
class ServesServerless(Protocol):
    """A backend with serverless endpoints (``deploy.kind: serverless``): one model each, no traffic split, invoked on
    the serverless contract (``POST {scoring_uri}/v1/chat/completions``, the OpenAI chat body and answer). A new
    version gets an endpoint of its own; which one serves is the run's record's, not the service's. The same
    contract as ``Backend``: idempotent, long-running operations started and never waited for."""

    def begin_serverless(self, name: str, model: RegisteredModel, tags: Mapping[str, str], base_model: str | None = None) -> ServerlessInfo:
        """Start creating a serverless endpoint for ``model`` if absent (first, the marketplace subscription of
        ``base_model``, the foundation model's registry id without a version, where its publisher needs one and none
        exists) and return it without waiting; one that exists with the same model is returned as it is.
        ``ConflictError`` when the name serves another model or is taken by something else."""
        ...

    def get_serverless(self, name: str) -> ServerlessInfo | None:
        """The serverless endpoint and its states (None when absent). Reads only."""
        ...

    def list_serverless(self) -> list[ServerlessInfo]:
        """Every serverless endpoint of the workspace. Reads only."""
        ...

    def delete_serverless(self, name: str) -> None:
        """Start deleting it and return without waiting; absent is fine (idempotent). A marketplace subscription is
        never deleted here."""
        ...

    def invoke_serverless(self, name: str, body: Mapping[str, Any], timeout_s: float = 60.0) -> InvokeResult:
        """One chat completion (the OpenAI body) with the endpoint's key; any HTTP status is returned,
        ``BackendError`` when nothing answered."""
        ...

    def serverless_usage(self, names: list[str], window: timedelta) -> dict[str, Usage]:
        """Requests per serverless endpoint over ``window``; unknown figures are ``known=False``, never zero."""
        ...


@runtime_checkable
class RunsServers(Protocol):
    """A backend that runs its endpoints' servers itself (the local one), for ``gitops endpoints``, ``start`` and
    ``stop``. Managed endpoints (Azure) have no server of ours: they are stopped by deleting them."""

    def server(self, endpoint: str) -> dict[str, Any] | None:
        """The endpoint's server: ``pid``, ``up``, ``stuck`` (running, not answering), ``rss_mib``; None when none runs."""
        ...

    def stop_server(self, endpoint: str) -> None:
        """Stop the endpoint's server; its deployments stay (``start_server`` starts it again)."""
        ...

    def start_server(self, endpoint: str) -> None:
        """Start the server of an endpoint (managed or serverless) unless one answers; ``NotFoundError`` when there is
        no such endpoint."""
        ...

    def orphan_servers(self) -> list[tuple[int, str]]:
        """Servers running that no endpoint names: (pid, folder)."""
        ...

    def stop_orphan_server(self, pid: int, folder: str) -> None: ...
