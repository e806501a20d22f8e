"""What the handlers work with: the lifecycle (ledger + backends), the OIDC verifier, the settings.

Built once per worker process on first use (not at import: cold start stays light). A test, or another
host, hands in its own ``Services`` built from real parts with ``use_services``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from function_app.auth import OidcVerifier
from function_app.config import FunctionSettings

if TYPE_CHECKING:  # the lifecycle pulls in pydantic models and more: imported on first use, not at cold start
    from gitops.backends.base import Backend
    from gitops.lifecycle.flow import Lifecycle
    from gitops.spec.policy import Policy


@dataclass
class Services:
    settings: FunctionSettings
    verifier: OidcVerifier
    lifecycle: Lifecycle
    backend_for: Callable[[str], Backend]
    cleanup_backends: tuple[str, ...] = ("azureml",)
    policy: Policy | None = None  # the policy the timers apply (GITOPS_POLICY app setting), default otherwise


_current: Services | None = None


def default_services() -> Services:
    import os

    from gitops.backends.registry import backend_cache
    from gitops.lifecycle.flow import Lifecycle
    from gitops.lifecycle.hooks import ledger_from, metrics_reader
    from gitops.naming import workspace_resource_id
    from gitops.online import policy_from_text
    from gitops.settings import Settings

    settings = FunctionSettings.load()
    backend_for = backend_cache()

    core = Settings.load()
    ledger = ledger_from(core, Path(tempfile.gettempdir()) / "gitops-ledger")
    topic = None
    if core.subscription_id and core.resource_group and core.workspace_name:
        topic = workspace_resource_id(core.subscription_id, core.resource_group, core.workspace_name)
    lifecycle = Lifecycle(ledger, backend_for, topic=topic, reader_for=lambda name: metrics_reader(backend_for(name)))
    return Services(settings, OidcVerifier(settings), lifecycle, backend_for,
                    policy=policy_from_text(os.environ.get("GITOPS_POLICY")))


def services() -> Services:
    global _current
    if _current is None:
        _current = default_services()
    return _current


def use_services(value: Services | None) -> None:
    global _current
    _current = value
