"""The local backend: the ``Backend`` interface over local jobs, the MLflow registry and loopback endpoints."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

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
from gitops.backends.local import models
from gitops.backends.local.endpoints import LocalEndpoints
from gitops.backends.local.jobs import LocalJobs
from gitops.backends.local.workspace import LocalWorkspace
from gitops.errors import NotFoundError, SpecError, UnsupportedError
from gitops.spec import naming
from gitops.spec.capabilities import KINDS
from gitops.spec.findings import Code, Finding, error
from gitops.spec.model import RunSpec
from gitops.spec.naming import experiment_name
from gitops.spec.policy import RegistryRef, WorkspaceRef


class LocalBackend:
    name = "local"
    unsupported: Mapping[Feature, str] = KINDS["local"].unsupported

    def __init__(
        self,
        workspace_dir: str | Path | None = None,
        provisioning_delay_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        workspace: WorkspaceRef | None = None,
    ) -> None:
        from gitops.settings import Settings

        if workspace is not None:  # another environment's (gitops.yaml environments:): its directory
            if workspace.directory is None:
                raise UnsupportedError(f"the local backend works in a workspace directory, not Azure ML workspace {workspace.name}")
            workspace_dir = workspace.directory
        self.ws = LocalWorkspace.at(workspace_dir or Settings.load().workspace_dir)
        self.jobs = LocalJobs(self.ws)
        self.endpoints = LocalEndpoints(self.ws, provisioning_delay_s, clock)

    @property
    def topic(self) -> str:
        """Stands in for the workspace resource id in events: stable per workspace directory."""
        return f"/local/workspaces/{hashlib.sha256(str(self.ws.root).encode()).hexdigest()[:16]}"

    def share_model(self, model: RegisteredModel, registry: RegistryRef, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        from gitops.backends.local import registry as local_registry

        return local_registry.share(self.ws, model, self._registry_root(registry), name, tags)

    def registry_model(self, registry: RegistryRef, name: str, version: str) -> RegisteredModel:
        from gitops.backends.local import registry as local_registry

        return local_registry.registry_model(self._registry_root(registry), name, version)

    def receive_model(self, registry: RegistryRef, name: str, version: str) -> RegisteredModel:
        from gitops.backends.local import registry as local_registry

        return local_registry.receive(self._registry_root(registry), name, version)

    @staticmethod
    def _registry_root(registry: RegistryRef) -> Path:
        if registry.directory is None:
            raise UnsupportedError(f"the local backend shares models through a registry directory, not Azure ML registry {registry.name}")
        return Path(registry.directory).resolve()

    def is_workspace(self, ref: WorkspaceRef) -> bool:
        """A local environment's directory (relative to where gitops runs: the repository's root) is this workspace."""
        return ref.directory is not None and Path(ref.directory).resolve() == self.ws.root

    def resolve_model(self, spec: RunSpec) -> FoundationModel:
        if spec.model.path is not None:
            path = Path(spec.model.path).expanduser().resolve()
            if not (path / "config.json").exists() and not (path / "MLmodel").exists():
                raise NotFoundError(
                    f"model.path {spec.model.path} is not a Hugging Face or MLflow model directory",
                    hint="point it at a directory holding config.json and the weights",
                )
            return FoundationModel(name=spec.model.name, version="local", uri=str(path))
        return models.resolve_foundation(self.ws, spec.model.name, spec.model.version, spec.model.label)

    def check_compute(self, spec: RunSpec, model: FoundationModel) -> list[Finding]:
        return []  # the local machine is the compute; capabilities were checked with the spec

    def prepare_data(self, spec: RunSpec, job_name: str) -> PreparedData:
        from gitops.backends.spec_data import local_file, prepare_splits
        from pipelines.prepare_data import DataError, read_jsonl

        if spec.data.train_path is None:
            train_r, test_r = prepare_splits(spec, self.ws.root / "data" / job_name)
            return PreparedData(str(train_r.path), str(test_r.path))
        parent = Path(spec.data.train_path).parent
        hint = (
            f"make a synthetic dataset there with `gitops data synth --out {parent}`, or fix the path"
            if Path(spec.data.train_path).name == "train_sft.jsonl"
            else "fix the path (or `gitops data synth --out DIR`)"
        )
        train = local_file("data.train_path", spec.data.train_path, hint)
        test = local_file("data.test_path", spec.data.test_path, hint) if spec.data.test_path else None
        try:
            for path in (train, test):  # every row is checked before a job is started on them
                if path:
                    read_jsonl(path)
        except DataError as exc:
            raise SpecError(f"data: {exc}", [error("data", str(exc), code=Code.DATA)]) from exc
        return PreparedData(str(train), str(test) if test else None)

    def submit(
        self, spec: RunSpec, params: Mapping[str, Any], job_name: str, tags: Mapping[str, str], model: FoundationModel, data: PreparedData
    ) -> JobStatus:
        from pipelines.local_finetune import FinetuneRequest

        experiment = experiment_name(spec)
        models.ensure_experiment(self.ws, experiment)
        request = FinetuneRequest(
            job_name=job_name,
            base_model_dir=model.uri,
            train_path=data.train_uri,
            test_path=data.test_uri,
            output_dir=str(self.ws.job_dir(job_name) / "output"),
            params=dict(params),
            tracking_uri=self.ws.tracking_uri,
            experiment=experiment,
            tags=dict(tags),
            event_topic=self.topic,
        )
        return self.jobs.submit(request)

    def get_job(self, job_name: str) -> JobStatus | None:
        return self.jobs.get(job_name)

    def cancel_job(self, job_name: str) -> None:
        self.jobs.cancel(job_name)

    def register_model(self, job_name: str, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        result = self.jobs.result(job_name)
        digest = {naming.TAG_CONTENT: result["content_digest"]} if result.get("content_digest") else {}
        return models.register(self.ws, result["model_uri"], name, {**tags, **digest}, job_name)

    # Local operations finish within the call (a tiny model loads in a second); only an injected
    # provisioning delay makes a deployment read ``creating`` for a while.
    def begin_endpoint(self, name: str, tags: Mapping[str, str]) -> EndpointInfo:
        return self.endpoints.ensure(name, dict(tags))

    def begin_deployment(self, endpoint: str, deployment: str, model: RegisteredModel, spec: RunSpec) -> DeploymentInfo:
        existing = self.endpoints.deployment(endpoint, deployment)
        if existing is not None:
            return existing
        model_dir = models.download(self.ws, model.uri, self.ws.endpoint_dir(endpoint) / "models" / deployment)
        return self.endpoints.add_deployment(endpoint, deployment, model.uri, model_dir)

    def get_deployment(self, endpoint: str, deployment: str) -> DeploymentInfo | None:
        return self.endpoints.deployment(endpoint, deployment)

    def begin_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> EndpointInfo:
        return self.endpoints.set_traffic(endpoint, dict(traffic))

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

    def newest_model_version(self, spec: RunSpec) -> str | None:
        return None  # local foundation models are built on this machine: no registry retires or archives them

    def traffic_mark(self, endpoint: str, deployment: str, now: float) -> dict[str, Any]:
        return {"counters": self.endpoints.traffic_counters(endpoint, deployment), "at": now}

    def traffic_since(self, endpoint: str, deployment: str, mark: Mapping[str, Any], now: float) -> TrafficWindow:
        from gitops.backends.local.traffic import window

        end = self.endpoints.traffic_counters(endpoint, deployment)
        if end is None or mark.get("counters") is None:
            return TrafficWindow(deployment, known=False, note=f"the request stats of endpoint {endpoint} cannot be read")
        requests, errors, p95 = window(mark["counters"], end)
        return TrafficWindow(
            deployment, known=True, requests=requests, errors=errors, p95_latency_ms=p95, note="the local server's request counters"
        )

    def held_out_split(self, test_path: str | None) -> str | None:
        return test_path if test_path and Path(test_path).is_file() else None

    def usage(self, endpoints: list[str], window: timedelta) -> dict[str, Usage]:
        return {name: self.endpoints.usage(name) for name in endpoints}

    # -- ServesServerless (gitops.backends.base): one model per endpoint, on the serverless contract
    def begin_serverless(
        self, name: str, model: RegisteredModel, tags: Mapping[str, str], base_model: str | None = None
    ) -> ServerlessInfo:  # local foundation models need no marketplace subscription
        found = self.endpoints.serverless_info(name)
        if found is not None and found.model_id == model.uri:
            return found
        model_dir = models.download(self.ws, model.uri, self.ws.endpoint_dir(name) / "models" / self.endpoints.SERVERLESS_MODEL)
        return self.endpoints.serverless(name, model.uri, model_dir, dict(tags))

    def get_serverless(self, name: str) -> ServerlessInfo | None:
        return self.endpoints.serverless_info(name)

    def list_serverless(self) -> list[ServerlessInfo]:
        return self.endpoints.list_serverless()

    def delete_serverless(self, name: str) -> None:
        if self.endpoints.serverless_info(name) is not None:
            self.endpoints.delete(name)

    def invoke_serverless(self, name: str, body: Mapping[str, Any], timeout_s: float = 60.0) -> InvokeResult:
        return self.endpoints.invoke_serverless(name, dict(body), timeout_s)

    def serverless_usage(self, names: list[str], window: timedelta) -> dict[str, Usage]:
        return {name: self.endpoints.usage(name) for name in names}

    # -- TracksMetrics and RunsServers (gitops.backends.base)
    @property
    def tracking_uri(self) -> str:
        return self.ws.tracking_uri

    def server(self, endpoint: str) -> dict[str, Any] | None:
        return self.endpoints.server(endpoint)

    def stop_server(self, endpoint: str) -> None:
        self.endpoints.stop(endpoint)

    def start_server(self, endpoint: str) -> None:
        self.endpoints.start(endpoint)

    def orphan_servers(self) -> list[tuple[int, str]]:
        return list(self.endpoints.orphans())

    def stop_orphan_server(self, pid: int, folder: str) -> None:
        self.endpoints.stop_orphan(pid, folder)
