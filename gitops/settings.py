"""Settings from the environment (``GITOPS_*``): where the local workspace is, which repo we serve, and
the Azure coordinates. Read once per process; no secrets are kept here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The Storage emulator's well-known account (published by Microsoft with Azurite): what the Functions host reads
# "UseDevelopmentStorage=true" as. The Storage SDKs refuse that shorthand, so it is expanded here, once.
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def storage_connection_string(value: str | None) -> str | None:
    """A connection string as the Storage SDKs take it: ``UseDevelopmentStorage=true`` (the Functions host's and
    local.settings.json's shorthand) is the emulator's well-known account on 127.0.0.1."""
    if value is None or not value.strip():
        return None
    if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
        return DEVELOPMENT_STORAGE
    return value


@dataclass(frozen=True)
class Settings:
    workspace_dir: Path
    repo: str  # owner/name of the GitHub repository this deployment serves
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None
    ledger_connection_string: str | None = None  # a secret: never logged, never echoed
    ledger_account_url: str | None = None  # with the managed identity, in production
    ledger_container: str = "gitops-ledger"
    # The step queue: the same settings the Functions queue trigger reads for its connection "GITOPS_QUEUE"
    # (a connection string, or with a managed identity GITOPS_QUEUE__queueServiceUri).
    queue_connection_string: str | None = None  # a secret: never logged, never echoed
    queue_service_uri: str | None = None
    queue_name: str = "gitops-steps"
    # `gitops release` of an Azure run from a shell: off unless asked for by name (the approval is the promote
    # workflow's, recorded by GitHub); the local backend releases from the shell without it.
    admin_release: bool = False

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            workspace_dir=Path(e.get("GITOPS_WORKSPACE", ".gitops")).resolve(),
            repo=e.get("GITOPS_REPO", e.get("GITHUB_REPOSITORY", "")),
            subscription_id=e.get("AZURE_SUBSCRIPTION_ID"),
            resource_group=e.get("AZURE_RESOURCE_GROUP"),
            workspace_name=e.get("AZUREML_WORKSPACE_NAME"),
            ledger_connection_string=storage_connection_string(e.get("GITOPS_LEDGER_CONNECTION_STRING")),
            ledger_account_url=e.get("GITOPS_LEDGER_ACCOUNT_URL"),
            ledger_container=e.get("GITOPS_LEDGER_CONTAINER", "gitops-ledger"),
            queue_connection_string=storage_connection_string(e.get("GITOPS_QUEUE")),
            queue_service_uri=e.get("GITOPS_QUEUE__queueServiceUri") or None,
            queue_name=e.get("GITOPS_QUEUE_NAME", "gitops-steps"),
            admin_release=e.get("GITOPS_ADMIN_RELEASE", "") == "1",
        )
