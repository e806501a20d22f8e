"""The Function App's own settings (app settings / environment): OIDC, request limits, schedules."""

from __future__ import annotations

import os
from dataclasses import dataclass

from gitops.errors import ConfigurationError

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
RECONCILE_SCHEDULE_SETTING, CLEANUP_SCHEDULE_SETTING = "GITOPS_RECONCILE_SCHEDULE", "GITOPS_CLEANUP_SCHEDULE"
WATCH_SCHEDULE_SETTING = "GITOPS_WATCH_SCHEDULE"
# The step queue: the trigger's connection names a setting family (GITOPS_QUEUE, or GITOPS_QUEUE__queueServiceUri
# with a managed identity); the queue's name is a setting too. Keep MAX_DEQUEUE_COUNT equal to host.json's.
QUEUE_CONNECTION, QUEUE_NAME_SETTING = "GITOPS_QUEUE", "GITOPS_QUEUE_NAME"
MAX_DEQUEUE_COUNT = 5


@dataclass(frozen=True)
class FunctionSettings:
    repo: str
    audience: str
    issuer: str = GITHUB_ISSUER
    jwks_url: str | None = None
    max_body_bytes: int = 256 * 1024

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> FunctionSettings:
        e = os.environ if env is None else env
        repo, audience = e.get("GITOPS_REPO", ""), e.get("GITOPS_OIDC_AUDIENCE", "")
        if not repo or not audience:
            missing = [name for name, value in (("GITOPS_REPO", repo), ("GITOPS_OIDC_AUDIENCE", audience)) if not value]
            raise ConfigurationError(
                f"the function app is not configured: {', '.join(missing)} not set",
                hint="set it in the Function App's application settings (infra/main.bicep does)",
            )
        return cls(
            repo=repo,
            audience=audience,
            issuer=e.get("GITOPS_OIDC_ISSUER", GITHUB_ISSUER),
            jwks_url=e.get("GITOPS_OIDC_JWKS_URL") or None,
            max_body_bytes=int(e.get("GITOPS_MAX_BODY_BYTES", str(256 * 1024))),
        )
