"""Wiring of the lifecycle for each world: the local workspace (ledger in files) and its event hook."""

from __future__ import annotations

from typing import Any

from gitops.backends.base import Backend
from gitops.backends.registry import get_backend
from gitops.lifecycle.flow import Decision, Lifecycle

LOCAL_EVENT_HOOK = "gitops.lifecycle.hooks:local_event"


def local_lifecycle(workspace_dir: str | None = None) -> Lifecycle:
    from gitops.backends.local.backend import LocalBackend
    from gitops.ledger.local import LocalLedger
    from gitops.settings import Settings

    local = LocalBackend(workspace_dir or Settings.load().workspace_dir, event_hook=LOCAL_EVENT_HOOK)
    cache: dict[str, Backend] = {"local": local}

    def backend_for(name: str) -> Backend:
        if name not in cache:
            cache[name] = get_backend(name)
        return cache[name]

    return Lifecycle(LocalLedger(local.ws.root / "ledger"), backend_for, topic=local.topic)


def local_event(event: dict[str, Any]) -> list[Decision]:
    """The local backend's job-finished hook: the same handler the Azure Function calls."""
    return local_lifecycle().on_job_event(event)
