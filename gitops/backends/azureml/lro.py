"""Start Azure ML long-running operations without waiting for them.

azure-ai-ml's public ``begin_*`` methods hand back an azure-core ``LROPoller``, whose constructor starts a
thread that polls the operation every few seconds, and they pass their own polling method, so a caller
cannot opt out. A Function that must answer in seconds would leave such threads polling ARM for the ten
minutes and more that a deployment takes, past the end of its invocation (and a test would leave them
polling a service that is no longer faked). So the writes the lifecycle starts go through the SDK's own
generated operation groups (the same pipeline, credential and retry policy as every other call) with
``polling=False``: one PUT or DELETE and the service's first answer. The state is read later, with a GET.

The generated groups are private attributes of azure-ai-ml's operation classes; this module is the one
place that reaches for them, and the contract tests run it against the pinned SDK.
"""

from __future__ import annotations

from typing import Any

from gitops.backends.azureml.clients import AzureClients
from gitops.backends.azureml.errors import call


def _scope(clients: AzureClients) -> dict[str, str]:
    ws = clients.workspace
    return {"resource_group_name": ws.resource_group_name, "workspace_name": ws.workspace_name}


def start_endpoint_write(clients: AzureClients, endpoint: Any, action: str) -> None:
    """PUT an online endpoint (create, retag or traffic); the service provisions it afterwards."""
    if endpoint.traffic:  # the SDK strips 0% entries before a PUT; the service refuses them for absent deployments
        endpoint.traffic = {k: int(v) for k, v in endpoint.traffic.items() if int(v) != 0}
    group = clients.workspace.online_endpoints._online_operation
    location = clients.location
    # The body is built inside ``call``: the SDK validates names and fields while building it.
    call(
        f"{action} endpoint {endpoint.name}",
        lambda: group.begin_create_or_update(
            endpoint_name=endpoint.name, body=endpoint._to_rest_online_endpoint(location=location), polling=False, **_scope(clients)
        ),
    )


def start_deployment_write(clients: AzureClients, deployment: Any) -> None:
    """PUT an online deployment; provisioning (image, model download, probes) runs for minutes after."""
    group = clients.workspace.online_deployments._online_deployment
    location = clients.location
    call(
        f"creating deployment {deployment.name} on {deployment.endpoint_name}",
        lambda: group.begin_create_or_update(
            endpoint_name=deployment.endpoint_name,
            deployment_name=deployment.name,
            body=deployment._to_rest_object(location=location),
            polling=False,
            **_scope(clients),
        ),
    )


def start_deployment_delete(clients: AzureClients, endpoint: str, deployment: str) -> None:
    group = clients.workspace.online_deployments._online_deployment
    call(
        f"deleting deployment {deployment} of {endpoint}",
        lambda: group.begin_delete(endpoint_name=endpoint, deployment_name=deployment, polling=False, **_scope(clients)),
    )


def start_endpoint_delete(clients: AzureClients, endpoint: str) -> None:
    group = clients.workspace.online_endpoints._online_operation
    call(f"deleting endpoint {endpoint}", lambda: group.begin_delete(endpoint_name=endpoint, polling=False, **_scope(clients)))
