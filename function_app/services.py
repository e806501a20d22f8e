"""What the handlers work with: the lifecycle (ledger + backends), the OIDC verifier, the settings.

Built once per worker process on first use (not at import: cold start stays light). A test, or another
host, hands in its own ``Services`` built from real parts with ``use_services``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from function_app.auth import OidcVerifier
from function_app.config import FunctionSettings

if TYPE_CHECKING:  # the lifecycle pulls in pydantic models and more: imported on first use, not at cold start
    from gitops.backends.base import Backend
    from gitops.cost.prices import PriceSource
    from gitops.lifecycle.flow import Lifecycle
    from gitops.spec.policy import Policy


@dataclass
class Services:
    settings: FunctionSettings
    verifier: OidcVerifier
    lifecycle: Lifecycle
    backend_for: Callable[[str], Backend]
    cleanup_backends: tuple[str, ...] = ("azureml",)
    policy: Policy | None = None  # a policy the timers apply instead of the one the runs carry (tests)
    prices: PriceSource | None = None  # the live Retail Prices API, then the snapshot; None: the snapshot only


_current: Services | None = None
_gate: tuple[FunctionSettings, OidcVerifier] | None = None  # what authenticates, built without the rest


def gatekeeper() -> tuple[FunctionSettings, OidcVerifier]:
    """The settings and the OIDC verifier alone: a caller is verified before anything touches storage, an SDK or a
    backend (building the lifecycle opens the ledger and the queue; an unauthenticated request must not)."""
    global _gate
    if _current is not None:
        return _current.settings, _current.verifier
    if _gate is None:
        settings = FunctionSettings.load()
        _gate = (settings, OidcVerifier(settings))
    return _gate


def default_services() -> Services:
    from gitops.lifecycle.wiring import function_lifecycle, price_book

    settings, verifier = gatekeeper()
    lifecycle = function_lifecycle()
    return Services(settings, verifier, lifecycle, lifecycle.backend_for, prices=price_book(live=True))


def services() -> Services:
    global _current
    if _current is None:
        _current = default_services()
    return _current


def use_services(value: Services | None) -> None:
    global _current, _gate
    _current, _gate = value, None
