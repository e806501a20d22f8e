"""The Azure clients: one workspace ``MLClient``, registry clients made lazily and once, and the credential.

The credential is ``DefaultAzureCredential`` (the Function App's managed identity, OIDC in Actions, the
developer's ``az login``) unless one is given (tests pass a fake token credential).

One retry layer: azure-core's ``RetryPolicy`` inside every SDK call, configured here through the clients'
keyword arguments (408/429/5xx, honouring ``Retry-After``). Two retries absorb a blip; anything longer is the
lifecycle's to wait out between invocations (a ``TransientBackendError`` becomes a step that looks again later),
so no invocation sits in a retry loop and no throttled call is multiplied by a second layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitops.backends.azureml.errors import call
from gitops.errors import SpecError
from gitops.settings import Settings

SDK_RETRY: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 1.0, "retry_backoff_max": 8}


@dataclass
class AzureClients:
    subscription_id: str | None
    resource_group: str | None
    workspace_name: str | None
    credential: Any = None
    config_path: str | None = None  # a config.json for MLClient.from_config, when coordinates are not set
    client_options: dict[str, Any] = field(default_factory=lambda: dict(SDK_RETRY))
    _workspace: Any = field(default=None, init=False, repr=False)
    _registries: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _workspace_entity: Any = field(default=None, init=False, repr=False)
    _location: str | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, credential: Any = None) -> AzureClients:
        s = settings or Settings.load()
        return cls(s.subscription_id, s.resource_group, s.workspace_name, credential=credential)

    def get_credential(self) -> Any:
        if self.credential is None:
            from azure.identity import DefaultAzureCredential

            self.credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return self.credential

    @property
    def workspace(self) -> Any:
        """The workspace ``MLClient``."""
        if self._workspace is None:
            from azure.ai.ml import MLClient

            options = self._options()
            if self.subscription_id and self.resource_group and self.workspace_name:
                self._workspace = MLClient(self.get_credential(), self.subscription_id, self.resource_group, self.workspace_name, **options)
            else:
                try:
                    self._workspace = MLClient.from_config(self.get_credential(), path=self.config_path, **options)
                except Exception as exc:  # from_config raises its own ValidationException with a long text
                    raise SpecError(
                        "the Azure ML workspace is not configured",
                        hint="set AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE_NAME, "
                        "or put a config.json from the portal in this directory",
                    ) from exc
        return self._workspace

    def registry(self, name: str) -> Any:
        """The client of a registry (e.g. ``azureml``); its constructor makes a discovery call, so once each."""
        if name not in self._registries:
            from azure.ai.ml import MLClient

            self._registries[name] = call(
                f"opening registry {name}", lambda: MLClient(self.get_credential(), registry_name=name, **self._options())
            )
        return self._registries[name]

    def _options(self) -> dict[str, Any]:
        return {"enable_telemetry": False, "show_progress": False, **self.client_options}

    @property
    def workspace_id(self) -> str:
        from gitops.backends.azureml import workspace_resource_id

        return workspace_resource_id(self.subscription_id, self.resource_group, self.workspace_name)

    @property
    def workspace_entity(self) -> Any:
        """The workspace itself (region, MLflow tracking URI), read once."""
        if self._workspace_entity is None:
            ws = self.workspace
            self._workspace_entity = call("reading the workspace", lambda: ws.workspaces.get(ws.workspace_name))
        return self._workspace_entity

    @property
    def location(self) -> str:
        """The workspace's region (endpoint names are unique per region; VM sizes are listed per region)."""
        if self._location is None:
            self._location = str(self.workspace_entity.location)
        return self._location

    def remember_location(self, location: str) -> None:
        self._location = self._location or location


def sdk_text(value: Any) -> str:
    """Lower-case text of an SDK value that may be an enum (ProvisioningState.FAILED) or a plain string."""
    return str(getattr(value, "value", value) or "").lower()
