"""Managed online endpoints and deployments: start creating, shifting traffic and deleting (never waiting: the
lifecycle reads the provisioning state later), invoke one deployment.

Traffic changes are a read-modify-write of the whole endpoint (the service has no partial update). The
endpoint's key is fetched for each call that needs it and never kept, logged or put in an error.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.compute import DEFAULT_DEPLOY_SKU
from gitops.backends.azureml.errors import call
from gitops.backends.azureml.lro import start_deployment_delete, start_deployment_write, start_endpoint_delete, start_endpoint_write
from gitops.backends.base import DeploymentInfo, EndpointInfo, InvokeResult, Provisioning, RegisteredModel
from gitops.errors import BackendError, ConflictError, NotFoundError, SpecError, TransientBackendError
from gitops.ownership import same_repository
from gitops.spec.model import RunSpec
from gitops.spec.naming import MANAGED_BY_TAG, MANAGED_BY_VALUE, TAG_REPO

DEPLOYED_AT_TAG = "gitops_deployed_at"  # when traffic last moved to a new deployment: the clock of expire_after
# A deployment created and not yet given traffic, "<name>@<created>". The SDK strips 0% entries from the traffic
# map, so without this the endpoint listing could not show (and cleanup could not date) a deployment that a dead
# rollout left behind.
PENDING_TAG = "gitops_pending"
NAME_TAKEN = re.compile(r"(?i)already an endpoint with this name|unique within a region")


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _pending(tags: Mapping[str, str] | None) -> tuple[str, str]:
    """The deployment the ``gitops_pending`` tag names, and when it was created ("" when none)."""
    name, _, since = str((tags or {}).get(PENDING_TAG, "")).partition("@")
    return name, since


def _state(entity: Any) -> str:
    return sdk_text(getattr(entity, "provisioning_state", None))


class AzureEndpoints:
    def __init__(self, clients: AzureClients) -> None:
        self.clients = clients
        # Scoring URI and key per endpoint, for a minute: an evaluation sends many requests to one endpoint. Held in
        # memory only (a key is a secret), and fetched again when the endpoint answers 401.
        self._scoring: dict[str, tuple[str, str, float]] = {}

    @property
    def _ws(self) -> Any:
        return self.clients.workspace

    def _get(self, name: str) -> Any | None:
        try:
            return call(f"getting endpoint {name}", lambda: self._ws.online_endpoints.get(name))
        except NotFoundError:
            return None

    def _info(self, endpoint: Any, deployments: list[Any] | None = None) -> EndpointInfo:
        tags = dict(endpoint.tags or {})
        traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items()}
        created = _when((getattr(endpoint, "properties", None) or {}).get("createdAt"))  # the SDK keeps systemData here
        if deployments is None:  # from the listing: no call per endpoint; the serving one dated by our tag
            deployed_at = _when(tags.get(DEPLOYED_AT_TAG))
            infos = tuple(DeploymentInfo(name=d, model_uri="", created_at=deployed_at if pct > 0 else None) for d, pct in traffic.items())
            pending, since = _pending(tags)
            if pending and pending not in traffic:
                traffic[pending] = 0
                infos += (DeploymentInfo(name=pending, model_uri="", created_at=_when(since)),)
        else:
            infos = tuple(self._deployment_info(d) for d in deployments)
        return EndpointInfo(
            name=endpoint.name,
            scoring_uri=str(endpoint.scoring_uri or ""),
            tags=tags,
            traffic=traffic,
            deployments=infos,
            created_at=created,
            state=Provisioning.read(_state(endpoint)),
        )

    def info(self, name: str) -> EndpointInfo | None:
        endpoint = self._get(name)
        return None if endpoint is None else self._with_deployments(endpoint)

    def _with_deployments(self, endpoint: Any) -> EndpointInfo:
        name = endpoint.name
        return self._info(endpoint, call(f"listing deployments of {name}", lambda: list(self._ws.online_deployments.list(name))))

    def list(self) -> list[EndpointInfo]:
        endpoints = call("listing endpoints", lambda: list(self._ws.online_endpoints.list()))
        if endpoints and getattr(endpoints[0], "location", None):
            self.clients.remember_location(str(endpoints[0].location))  # spares the metrics query a workspace call
        return [self._info(e) for e in endpoints]

    def begin(self, name: str, tags: Mapping[str, str]) -> EndpointInfo:
        """The endpoint, its creation started when absent; never waits for provisioning."""
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        existing = self._get(name)
        if existing is not None:
            if (existing.tags or {}).get(MANAGED_BY_TAG) != MANAGED_BY_VALUE:
                raise ConflictError(
                    f"endpoint {name} exists and is not managed by finetune-gitops",
                    hint="set deploy.endpoint to another name; we never take over an endpoint we did not create",
                )
            owner, mine = (existing.tags or {}).get(TAG_REPO), tags.get(TAG_REPO)
            if owner is not None and mine is not None and not same_repository(owner, mine):
                raise ConflictError(
                    f"endpoint {name} is managed by repository {owner}, not {mine}",
                    hint="give the spec its own deploy.endpoint; one repository never writes another's endpoint",
                )
            if any((existing.tags or {}).get(k) != v for k, v in tags.items()):
                self._retag(existing, tags)
            return self._info(existing)
        endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key", tags=dict(tags), description="managed by finetune-gitops")
        try:
            start_endpoint_write(self.clients, endpoint, "creating")
        except (ConflictError, SpecError) as exc:
            # The service answers a name taken elsewhere in the region with a 400 wrapping "already an endpoint with
            # this name ... unique within a region" (reported), sometimes a 409.
            if isinstance(exc, ConflictError) or NAME_TAKEN.search(exc.headline):
                raise ConflictError(
                    f"endpoint name {name} is taken in region {self.clients.location} (names are unique per region)",
                    hint="set deploy.endpoint to another name, or let gitops derive one",
                ) from exc
            raise
        except NotFoundError as exc:
            # Re-creating a name soon after deleting it answers 404 InferencingClientCallFailed (reported) until Azure
            # has released the name: a wait, not a failure; the lifecycle looks again until the step's deadline.
            if "inferencingclientcallfailed" in exc.headline.lower():
                raise TransientBackendError(
                    f"endpoint name {name} was deleted recently and Azure has not released it yet",
                    hint="it is tried again; if it persists, set deploy.endpoint to another name",
                ) from exc
            raise
        return EndpointInfo(name=name, scoring_uri="", tags=dict(tags), state=Provisioning.CREATING)

    def begin_deployment(self, endpoint: str, deployment: str, model: RegisteredModel, spec: RunSpec) -> DeploymentInfo:
        """Start creating the deployment (0% traffic); one that already exists is reported as it stands."""
        from azure.ai.ml.entities import ManagedOnlineDeployment, OnlineRequestSettings, ProbeSettings

        existing = self.deployment(endpoint, deployment)
        if existing is not None:
            return existing
        current = self._get(endpoint)
        if current is None:
            raise NotFoundError(f"endpoint {endpoint} does not exist")
        # Tagged before the deployment starts, so a rollout that dies from here on leaves a leftover cleanup can date.
        # Writing the tags leaves the endpoint Updating, and Azure refuses a deployment PUT into an endpoint that is
        # not settled (tests/contracts/reported): the tag is written on one call, the deployment started on a later
        # one, once the endpoint reads Succeeded again. Each call returns at once; the lifecycle waits in between.
        if _pending(current.tags)[0] != deployment:
            self._retag(current, {PENDING_TAG: f"{deployment}@{datetime.now(UTC).isoformat(timespec='seconds')}"})
            current = self._get(endpoint)  # settled already only where the write was instant (never seen on Azure)
            if current is None or Provisioning.read(_state(current)) is not Provisioning.SUCCEEDED:
                raise TransientBackendError(
                    f"endpoint {endpoint} is being marked for deployment {deployment}; it is created once the endpoint has settled"
                )
        state = Provisioning.read(_state(current))
        if not state.settled:
            raise TransientBackendError(f"endpoint {endpoint} is {state.value}; deployment {deployment} is created once it has settled")
        if state is not Provisioning.SUCCEEDED:
            raise BackendError(f"endpoint {endpoint} provisioning {state.value}; no deployment can be created in it")
        d = spec.deploy
        entity = ManagedOnlineDeployment(
            name=deployment,
            endpoint_name=endpoint,
            model=self._model_id(model),
            instance_type=d.instance_type or DEFAULT_DEPLOY_SKU,
            instance_count=d.instance_count,
            liveness_probe=ProbeSettings(initial_delay=d.liveness_initial_delay_s),
            request_settings=OnlineRequestSettings(request_timeout_ms=d.request_timeout_ms),
            tags={
                MANAGED_BY_TAG: MANAGED_BY_VALUE,
                "gitops_model": f"{model.name}:{model.version}",
                **({TAG_REPO: current.tags[TAG_REPO]} if TAG_REPO in (current.tags or {}) else {}),
            },
        )
        start_deployment_write(self.clients, entity)
        return DeploymentInfo(
            name=deployment, model_uri=model.uri, healthy=False, created_at=datetime.now(UTC), state=Provisioning.CREATING
        )

    def _model_id(self, model: RegisteredModel) -> str:
        """The ARM id of a workspace model (``azureml:name:version``), as the SDK resolves it before a PUT."""
        kind, _, rest = model.uri.partition(":")
        name, _, version = rest.partition(":")
        if kind == "azureml" and not rest.startswith("//") and name and version:
            return f"{self.clients.workspace_id}/models/{name}/versions/{version}"
        return model.uri

    def deployment(self, endpoint: str, deployment: str) -> DeploymentInfo | None:
        try:
            entity = call(
                f"getting deployment {deployment} of {endpoint}",
                lambda: self._ws.online_deployments.get(name=deployment, endpoint_name=endpoint),
            )
        except NotFoundError:
            return None
        return self._deployment_info(entity)

    @staticmethod
    def _deployment_info(d: Any) -> DeploymentInfo:
        state = Provisioning.read(_state(d))
        error = (
            (
                f"deployment {d.name} provisioning {state.value}: read its logs with "
                f"az ml online-deployment get-logs -e {d.endpoint_name} -n {d.name}"
            )
            if state is Provisioning.FAILED
            else None
        )
        count = getattr(d, "instance_count", None)
        return DeploymentInfo(
            name=d.name,
            model_uri=str(d.model or ""),
            healthy=state is Provisioning.SUCCEEDED,
            created_at=_when(getattr(getattr(d, "creation_context", None), "created_at", None)),
            state=state,
            error=error,
            instance_type=getattr(d, "instance_type", None) or None,
            instance_count=int(count) if isinstance(count, int) else None,
        )

    def _retag(self, endpoint: Any, tags: Mapping[str, str | None]) -> None:
        """Write the endpoint just read back with these tags changed (None removes one); does not wait."""
        merged = {**(endpoint.tags or {}), **tags}
        endpoint.tags = {k: v for k, v in merged.items() if v is not None}
        start_endpoint_write(self.clients, endpoint, "tagging")

    def begin_traffic(self, name: str, traffic: Mapping[str, int]) -> EndpointInfo:
        """Start moving traffic; the endpoint reads ``updating`` until the service has applied it."""
        endpoint = self._get(name)
        if endpoint is None:
            raise NotFoundError(f"endpoint {name} does not exist")
        endpoint.traffic = {d: int(traffic.get(d, 0)) for d in {*(endpoint.traffic or {}), *traffic}}
        if any(v > 0 for v in traffic.values()):
            endpoint.tags = {**(endpoint.tags or {}), DEPLOYED_AT_TAG: datetime.now(UTC).isoformat(timespec="seconds")}
            pending = _pending(endpoint.tags)[0]
            if pending and traffic.get(pending, 0) > 0:  # promoted: no longer pending
                endpoint.tags = {k: v for k, v in endpoint.tags.items() if k != PENDING_TAG}
        start_endpoint_write(self.clients, endpoint, "setting traffic of")
        info = self._info(endpoint)
        return replace(info, traffic={d: int(v) for d, v in traffic.items() if int(v) > 0}, state=Provisioning.UPDATING)

    def invoke(self, name: str, payload: Mapping[str, Any], deployment: str | None, timeout_s: float) -> InvokeResult:
        extra = {"azureml-model-deployment": deployment} if deployment else {}

        def request(fresh: bool) -> tuple[str, dict[str, str]]:
            uri, key = self._scoring_of(name, fresh)
            return uri, {"Authorization": f"Bearer {key}", **extra}

        return post_with_key(f"endpoint {name}", request, payload, timeout_s)

    def _scoring_of(self, name: str, fresh: bool) -> tuple[str, str]:
        kept = self._scoring.get(name)
        if kept is not None and not fresh and time.monotonic() - kept[2] < 60:
            return kept[0], kept[1]
        endpoint = self._get(name)
        if endpoint is None or not endpoint.scoring_uri:
            raise NotFoundError(f"endpoint {name} does not exist or has no scoring URI")
        key = call(f"getting the key of {name}", lambda: self._ws.online_endpoints.get_keys(name).primary_key)
        self._scoring[name] = (str(endpoint.scoring_uri), str(key), time.monotonic())
        return str(endpoint.scoring_uri), str(key)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        """Start deleting the deployment (absent is fine) and drop the pending mark that named it."""
        with contextlib.suppress(NotFoundError):
            start_deployment_delete(self.clients, endpoint, deployment)
        current = self._get(endpoint)
        if current is not None and _pending(current.tags)[0] == deployment:
            self._retag(current, {PENDING_TAG: None})

    def delete(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            start_endpoint_delete(self.clients, name)


def post_with_key(
    what: str, request: Callable[[bool], tuple[str, dict[str, str]]], body: Mapping[str, Any], timeout_s: float
) -> InvokeResult:
    """One scoring request (``request(fresh)``: the URL and the key's headers, a key fetched again when ``fresh``);
    answered 401, it is sent once more with a fresh key (keys are regenerated). A timeout is transient."""
    import requests

    for fresh in (False, True):
        url, headers = request(fresh)
        started = time.perf_counter()
        try:
            response = requests.post(url, json=dict(body), headers={**headers, "Content-Type": "application/json"}, timeout=timeout_s)
        except requests.Timeout:
            raise TransientBackendError(f"{what} did not answer within {timeout_s:.0f}s") from None
        except requests.RequestException as exc:
            raise BackendError(f"calling {what} failed: {type(exc).__name__}") from None
        if response.status_code != 401 or fresh:
            break
    return InvokeResult(response.status_code, response.text, (time.perf_counter() - started) * 1000)
