"""Making backends: each one by its kind's factory (``gitops.spec.capabilities``: what a backend is, as data),
on first use, with an install hint when its SDK is missing; and the guard that keeps the Function App from
making a backend that would act on its own host.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from gitops.backends.base import Backend
from gitops.errors import UnsupportedError
from gitops.spec.capabilities import kind_of, not_hosted
from gitops.spec.policy import WorkspaceRef


def backend_cache(preset: Mapping[str, Backend] | None = None) -> Callable[[str], Backend]:
    """A ``backend_for(name)``: each backend made on first use (``get_backend``), then reused."""
    cache: dict[str, Backend] = dict(preset or {})

    def backend_for(name: str) -> Backend:
        if name not in cache:
            cache[name] = get_backend(name)
        return cache[name]

    return backend_for


def workspace_cache(**options: Any) -> Callable[[str, WorkspaceRef], Backend]:
    """A ``backend_in(name, workspace)``: each backend kind made for another environment's workspace on first use
    (its factory takes ``workspace=``), then reused."""
    cache: dict[tuple[str, str], Backend] = {}

    def backend_in(name: str, workspace: WorkspaceRef) -> Backend:
        key = (name, workspace.model_dump_json())
        if key not in cache:
            cache[key] = get_backend(name, workspace=workspace, **options)
        return cache[key]

    return backend_in


def _refuse_unhosted(name: str) -> None:
    why = not_hosted(name)
    if why is not None:
        raise UnsupportedError(
            f"backend '{name}' does not run in the Function: {why}",
            hint="use backend: azureml in runs/ (local specs are for `gitops run` on your machine)",
        )


def hosted_only(backend_for: Callable[[str], Backend]) -> Callable[[str], Backend]:
    """``backend_for`` for the Function App: a backend that would act on the Function's own host is refused, by name,
    before it is made (whatever the repo's policy allows: the policy speaks for specs, not for where they run)."""

    def guarded(name: str) -> Backend:
        _refuse_unhosted(name)
        return backend_for(name)

    return guarded


def hosted_only_in(backend_in: Callable[[str, WorkspaceRef], Backend]) -> Callable[[str, WorkspaceRef], Backend]:
    """``backend_in`` for the Function App, under the same guard as ``hosted_only``."""

    def guarded(name: str, workspace: WorkspaceRef) -> Backend:
        _refuse_unhosted(name)
        return backend_in(name, workspace)

    return guarded


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend registered under ``name`` (its SDK is imported only now)."""
    kind = kind_of(name)
    module_name, _, attr = kind.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnsupportedError(
            f"the {name} backend is not available here ({exc.name} cannot be imported)",
            hint=f"install the extra it needs: pip install 'finetune-gitops[{kind.extra}]'",
        ) from exc
    factory: Callable[..., Backend] = getattr(module, attr)
    return factory(**options)
