"""Serverless endpoints on Azure ML (pay per token): started and never waited for, read with their provisioning and
endpoint states, invoked on the serverless contract; and the marketplace subscription a non-Microsoft model needs
first, created once and never deleted here.

azure-ai-ml's ``ServerlessEndpoint`` entity drops the REST ``endpointState`` (``Suspended``, ``CreationFailed``...),
which says whether the endpoint serves, so reads go through the operation group the public methods wrap (the one
place here that does; ``tests/contracts`` runs it against the pinned SDK and the published REST examples). Writes go
through the public methods with ``polling=False``: one PUT or DELETE and the service's first answer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.endpoints import post_with_key
from gitops.backends.azureml.errors import call
from gitops.backends.base import EndpointState, InvokeResult, Provisioning, RegisteredModel, ServerlessInfo
from gitops.errors import ConflictError, NotFoundError

# Registries whose models Microsoft publishes: no marketplace subscription needed (every other publisher's does).
MICROSOFT_REGISTRIES = frozenset({"azureml"})


def _when(value: Any) -> Any:
    return getattr(value, "created_at", None)


class AzureServerless:
    def __init__(self, clients: AzureClients) -> None:
        self.clients = clients
        self._keys: dict[str, tuple[str, str, float]] = {}  # name -> (base URI, key, when): in memory, for a minute

    @property
    def _ops(self) -> Any:
        return self.clients.workspace.serverless_endpoints

    @property
    def _rest(self) -> Any:
        """The generated operation group the SDK's serverless operations wrap (reads keep ``endpointState``)."""
        return self._ops._service_client

    def _scope(self) -> tuple[str, str]:
        ws = self.clients.workspace
        return ws.resource_group_name, ws.workspace_name

    @staticmethod
    def _info(rest: Any) -> ServerlessInfo:
        props = rest.properties
        inference = getattr(props, "inference_endpoint", None)
        settings = getattr(props, "model_settings", None)
        return ServerlessInfo(
            name=str(rest.name),
            model_id=str(getattr(settings, "model_id", "") or ""),
            scoring_uri=str(getattr(inference, "uri", "") or "").rstrip("/"),
            tags=dict(rest.tags or {}),
            state=Provisioning.read(sdk_text(getattr(props, "provisioning_state", None))),
            endpoint_state=EndpointState.read(sdk_text(getattr(props, "endpoint_state", None))),
            created_at=_when(getattr(rest, "system_data", None)),
        )

    def model_id(self, model: RegisteredModel) -> str:
        """A workspace model as a serverless endpoint takes it (it refuses registry ids with /versions/)."""
        ws = self.clients.workspace_entity
        return f"azureml://locations/{self.clients.location}/workspaces/{ws._workspace_id}/models/{model.name}/versions/{model.version}"

    def get(self, name: str) -> ServerlessInfo | None:
        group, ws = self._scope()
        try:
            return self._info(call(f"getting serverless endpoint {name}", lambda: self._rest.get(group, ws, name)))
        except NotFoundError:
            return None

    def list(self) -> list[ServerlessInfo]:
        group, ws = self._scope()
        return [self._info(e) for e in call("listing serverless endpoints", lambda: list(self._rest.list(group, ws)))]

    def begin(self, name: str, model: RegisteredModel, tags: Mapping[str, str], base_model: str | None) -> ServerlessInfo:
        """Start creating the endpoint (after the base model's marketplace subscription, where one is needed)."""
        from azure.ai.ml.entities import ServerlessEndpoint

        model_id = self.model_id(model)
        found = self.get(name)
        if found is not None:
            if found.model_id.lower() != model_id.lower():
                raise ConflictError(
                    f"serverless endpoint {name} serves {found.model_id}; one endpoint serves one model",
                    hint="a new version gets a serverless endpoint of its own",
                )
            return found
        if base_model:
            self.ensure_subscription(base_model)
        endpoint = ServerlessEndpoint(name=name, model_id=model_id, tags=dict(tags))
        endpoint.location = self.clients.location  # known here: spares the SDK its own workspace call
        call(f"creating serverless endpoint {name}", lambda: self._ops.begin_create_or_update(endpoint, polling=False))
        return self.get(name) or ServerlessInfo(
            name, model_id, "", dict(tags), state=Provisioning.CREATING, endpoint_state=EndpointState.CREATING
        )

    def ensure_subscription(self, base_model: str) -> None:
        """The marketplace subscription of a non-Microsoft registry model (``azureml://registries/<r>/models/<n>``), once:
        one that exists for the model is used as it is; none is created for a Microsoft model."""
        from azure.ai.ml.entities import MarketplaceSubscription

        registry = base_model.split("/")[3] if base_model.startswith("azureml://registries/") else ""
        if registry in MICROSOFT_REGISTRIES or not registry:
            return
        subscriptions = self.clients.workspace.marketplace_subscriptions
        existing = call("listing marketplace subscriptions", lambda: list(subscriptions.list()))
        if any(str(s.model_id or "").lower() == base_model.lower() for s in existing):
            return
        name = base_model.rsplit("/", 1)[-1][:50]
        wanted = MarketplaceSubscription(name=name, model_id=base_model)
        call(f"subscribing to {base_model} in the marketplace", lambda: subscriptions.begin_create_or_update(wanted, polling=False))

    def delete(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            call(f"deleting serverless endpoint {name}", lambda: self._ops.begin_delete(name, polling=False))
        self._keys.pop(name, None)

    def _scoring_of(self, name: str, fresh: bool) -> tuple[str, str]:
        kept = self._keys.get(name)
        if kept is not None and not fresh and time.monotonic() - kept[2] < 60:
            return kept[0], kept[1]
        found = self.get(name)
        if found is None or not found.scoring_uri:
            raise NotFoundError(f"serverless endpoint {name} does not exist or has no inference URI")
        key = str(call(f"getting the key of {name}", lambda: self._ops.get_keys(name).primary_key))
        self._keys[name] = (found.scoring_uri, key, time.monotonic())
        return found.scoring_uri, key

    def invoke(self, name: str, body: Mapping[str, Any], timeout_s: float) -> InvokeResult:
        """``POST {uri}/v1/chat/completions`` with the raw key in ``Authorization``, as the serverless docs show."""

        def request(fresh: bool) -> tuple[str, dict[str, str]]:
            uri, key = self._scoring_of(name, fresh)
            return f"{uri}/v1/chat/completions", {"Authorization": key}

        return post_with_key(f"serverless endpoint {name}", request, body, timeout_s)
