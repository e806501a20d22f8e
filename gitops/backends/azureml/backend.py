"""The Azure ML backend: the ``Backend`` interface over the role modules of this package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gitops.backends.azureml import models
from gitops.backends.azureml.clients import AzureClients
from gitops.backends.azureml.compute import ComputeChecker
from gitops.backends.azureml.endpoints import AzureEndpoints
from gitops.backends.azureml.jobs import AzureJobs
from gitops.backends.azureml.serverless import AzureServerless
from gitops.backends.azureml.usage import AzureUsage
from gitops.backends.base import (
    DeploymentInfo,
    EndpointInfo,
    Feature,
    FoundationModel,
    InvokeResult,
    JobStatus,
    PreparedData,
    RegisteredModel,
    ServerlessInfo,
    TrafficWindow,
    Usage,
)
from gitops.errors import UnsupportedError
from gitops.spec import naming
from gitops.spec.capabilities import KINDS
from gitops.spec.findings import Finding
from gitops.spec.model import RunSpec
from gitops.spec.policy import RegistryRef, WorkspaceRef


class AzureMLBackend:
    name = "azureml"
    unsupported: Mapping[Feature, str] = KINDS["azureml"].unsupported

    def __init__(
        self,
        clients: AzureClients | None = None,
        metrics_endpoint: str | None = None,
        today: Callable[[], date] | None = None,
        workspace: WorkspaceRef | None = None,
    ) -> None:
        if clients is None and workspace is not None:  # another environment's workspace (gitops.yaml environments:)
            if workspace.directory is not None:
                raise UnsupportedError(f"the Azure ML backend works in an Azure ML workspace, not directory {workspace.directory}")
            clients = AzureClients(workspace.subscription, workspace.resource_group, workspace.name)
        self.clients = clients or AzureClients.from_settings()
        # Every date verdict (retired models and SKUs) asks this "today", so tests do not flip with the calendar.
        self.today = today or (lambda: datetime.now(UTC).date())
        self.compute = ComputeChecker(self.clients, self.today)
        self.jobs = AzureJobs(self.clients)
        self.endpoints = AzureEndpoints(self.clients)
        self.serverless = AzureServerless(self.clients)
        self.metrics = AzureUsage(self.clients, metrics_endpoint)

    @property
    def topic(self) -> str:
        """The workspace resource id: the ``topic`` of its Event Grid events."""
        return self.clients.workspace_id

    # -- a registry between environments (SharesModels) ---------------------------------------------------------
    def share_model(self, model: RegisteredModel, registry: RegistryRef, name: str, tags: Mapping[str, str]) -> RegisteredModel | None:
        # The model's own tags (its lineage and content digest, written when it was registered) travel with the import.
        return models.share(self.clients, model, self._registry(registry), name)

    def registry_model(self, registry: RegistryRef, name: str, version: str) -> RegisteredModel:
        return models.registry_model(self.clients, self._registry(registry), name, version)

    def receive_model(self, registry: RegistryRef, name: str, version: str) -> RegisteredModel:
        # A deployment names the registry's version itself: nothing is copied into this workspace. Its files are not
        # read here (the Function never downloads a model): its content digest tag is what the step holds it to.
        return models.registry_model(self.clients, self._registry(registry), name, version)

    @staticmethod
    def _registry(registry: RegistryRef) -> str:
        if registry.name is None:
            raise UnsupportedError(f"the Azure ML backend shares models through an Azure ML registry, not directory {registry.directory}")
        return registry.name

    def is_workspace(self, ref: WorkspaceRef) -> bool:
        c = self.clients
        mine = (c.subscription_id, c.resource_group, c.workspace_name)
        theirs = (ref.subscription, ref.resource_group, ref.name)
        return None not in mine and [str(v).lower() for v in mine] == [str(v).lower() for v in theirs]

    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI (azureml://...; read with azureml-mlflow installed)."""
        return str(self.clients.workspace_entity.mlflow_tracking_uri)

    def resolve_model(self, spec: RunSpec) -> FoundationModel:
        return models.resolve_foundation(self.clients, spec, self.today())

    def check_compute(self, spec: RunSpec, model: FoundationModel) -> list[Finding]:
        if spec.finetune.kind == "serverless":  # no compute of the repository's: the model's serverless facts instead
            return []
        return self.compute.check(spec, model)[0]

    def prepare_data(self, spec: RunSpec, job_name: str) -> PreparedData:
        return self.jobs.prepare_data(spec, job_name)

    def submit(
        self, spec: RunSpec, params: Mapping[str, Any], job_name: str, tags: Mapping[str, str], model: FoundationModel, data: PreparedData
    ) -> JobStatus:
        # The spec passed the one check (the online ones included) before it came here: only the GPUs are read.
        return self.jobs.submit(spec, params, job_name, tags, model, data, self.compute.gpus_for(spec))

    def get_job(self, job_name: str) -> JobStatus | None:
        return self.jobs.get(job_name)

    def cancel_job(self, job_name: str) -> None:
        self.jobs.cancel(job_name)

    def register_model(self, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        registered = self.jobs.registered_output(job_name)
        if registered is not None:  # a fine-tuning job registered its model itself: read it, tag it, never again
            return models.adopt(self.clients, job_name, registered, tags)
        # The content digest the job's model_digest step wrote, on the model it describes (none written: none tagged).
        digest = self.jobs.content_digest(job_name)
        return models.register(self.clients, job_name, name, {**tags, **({naming.TAG_CONTENT: digest} if digest else {})})

    def begin_endpoint(self, name: str, tags: Mapping[str, str]) -> EndpointInfo:
        return self.endpoints.begin(name, tags)

    def begin_deployment(self, endpoint: str, deployment: str, model: RegisteredModel, spec: RunSpec) -> DeploymentInfo:
        return self.endpoints.begin_deployment(endpoint, deployment, model, spec)

    def get_deployment(self, endpoint: str, deployment: str) -> DeploymentInfo | None:
        return self.endpoints.deployment(endpoint, deployment)

    def begin_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointInfo:
        return self.endpoints.begin_traffic(endpoint, traffic)

    def invoke(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None, timeout_s: float = 60.0) -> InvokeResult:
        return self.endpoints.invoke(endpoint, payload, deployment, timeout_s)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self.endpoints.delete_deployment(endpoint, deployment)

    def get_endpoint(self, name: str) -> EndpointInfo | None:
        return self.endpoints.info(name)

    def list_endpoints(self) -> list[EndpointInfo]:
        return self.endpoints.list()

    def delete_endpoint(self, name: str) -> None:
        self.endpoints.delete(name)

    def usage(self, endpoints: list[str], window: timedelta) -> dict[str, Usage]:
        return self.metrics.usage(endpoints, window)

    def newest_model_version(self, spec: RunSpec) -> str | None:
        return models.newest_version(self.clients, spec)

    def traffic_mark(self, endpoint: str, deployment: str, now: float) -> dict[str, Any]:
        return {"at": now}  # Monitor keeps the time series: the hold's start is the mark

    def traffic_since(self, endpoint: str, deployment: str, mark: Mapping[str, Any], now: float) -> TrafficWindow:
        start = datetime.fromtimestamp(float(mark.get("at", now)), UTC)
        return self.metrics.traffic(endpoint, deployment, start, datetime.fromtimestamp(now, UTC))

    def held_out_split(self, test_path: str | None) -> str | None:
        return self.jobs.held_out_split(test_path)

    # -- ServesServerless (gitops.backends.base)
    def begin_serverless(self, name: str, model: RegisteredModel, tags: Mapping[str, str], base_model: str | None = None) -> ServerlessInfo:
        return self.serverless.begin(name, model, tags, base_model)

    def get_serverless(self, name: str) -> ServerlessInfo | None:
        return self.serverless.get(name)

    def list_serverless(self) -> list[ServerlessInfo]:
        return self.serverless.list()

    def delete_serverless(self, name: str) -> None:
        self.serverless.delete(name)

    def invoke_serverless(self, name: str, body: Mapping[str, Any], timeout_s: float = 60.0) -> InvokeResult:
        return self.serverless.invoke(name, body, timeout_s)

    def serverless_usage(self, names: list[str], window: timedelta) -> dict[str, Usage]:
        # Azure Monitor's metrics of serverless endpoints are not documented in the material of this repository:
        # unknown, never idle (cleanup then keeps them, and says so).
        return {name: Usage(name, known=False) for name in names}
