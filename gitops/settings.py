"""Settings from the environment (``GITOPS_*``): where the local workspace is, which repo we serve, and
the Azure coordinates. Read once per process; no secrets are kept here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            workspace_dir=Path(e.get("GITOPS_WORKSPACE", ".gitops")).resolve(),
            repo=e.get("GITOPS_REPO", e.get("GITHUB_REPOSITORY", "")),
            subscription_id=e.get("AZURE_SUBSCRIPTION_ID"),
            resource_group=e.get("AZURE_RESOURCE_GROUP"),
            workspace_name=e.get("AZUREML_WORKSPACE_NAME"),
            ledger_connection_string=e.get("GITOPS_LEDGER_CONNECTION_STRING"),
            ledger_account_url=e.get("GITOPS_LEDGER_ACCOUNT_URL"),
            ledger_container=e.get("GITOPS_LEDGER_CONTAINER", "gitops-ledger"),
            queue_connection_string=e.get("GITOPS_QUEUE") or None,
            queue_service_uri=e.get("GITOPS_QUEUE__queueServiceUri") or None,
            queue_name=e.get("GITOPS_QUEUE_NAME", "gitops-steps"),
        )
