"""Translation of azure-core / azure-ai-ml errors into the project's errors.

Every SDK call of this package goes through ``call``. Retries happen once, inside the SDK (azure-core's
``RetryPolicy``, configured in ``clients``); whatever is left is translated into a ``GitopsError`` with a
one-line headline and a hint (429 and 5xx as ``TransientBackendError``, which the lifecycle waits out).
Messages from Azure are cut to their one telling line
and scrubbed of anything that looks like a credential before they reach a headline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

from gitops.errors import (
    AuthError,
    BackendError,
    ConflictError,
    ForbiddenError,
    GitopsError,
    NotFoundError,
    SpecError,
    TransientBackendError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_SECRETISH = re.compile(r"(?i)(bearer\s+|sig=|key=|primaryKey\"?:\s*\"?|secondaryKey\"?:\s*\"?|accountkey=)[^\s&\";,]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A write refused because the resource (or its parent) is still provisioning: "Cannot create a deployment in
# endpoint X because it is in Updating provisioning state" (tests/contracts/reported), ARM's "provisioning state is
# not terminal". A wait, on whatever status it comes with.
_BUSY = re.compile(r"because it is in (\w+) provisioning state|provisioning state is not terminal", re.IGNORECASE)
# What the service answers when a registry (its model or component) is not replicated to the workspace's region.
_REGISTRY_REGION = re.compile(r"invalid region (\w+) for operation \w+ in registry ([\w-]+(?:\.[\w-]+)*)", re.IGNORECASE)


def scrub(text: str) -> str:
    """The one telling line of an Azure message (the SDK's "(x) ..." detail when it has one, colours removed),
    with credentials blanked out."""
    lines = [line.strip() for line in _ANSI.sub("", str(text)).splitlines() if line.strip()]
    details = [line[3:].strip() for line in lines if line.startswith("(x)")]
    best = details[0] if details else (lines[0] if lines else "")
    return _SECRETISH.sub(lambda m: m.group(1) + "***", best)[:300]


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if code is None and getattr(exc, "response", None) is not None:
        code = getattr(exc.response, "status_code", None)  # type: ignore[attr-defined]
    return int(code) if code is not None else None


def _message(exc: BaseException) -> str:
    error = getattr(exc, "error", None)  # azure-core's ODataV4Format: code + message (+ details)
    if error is not None and getattr(error, "message", None):
        # The service wraps the telling part in details ("One or more validation errors occurred" + the reason).
        details = "; ".join(
            f"{getattr(d, 'code', '') or ''}: {getattr(d, 'message', '') or ''}".strip(": ")
            for d in (getattr(error, "details", None) or [])[:3]
        )
        text = f"{getattr(error, 'code', '') or ''}: {error.message}".lstrip(": ") + (f" ({details})" if details else "")
        return scrub(text)
    return scrub(getattr(exc, "message", None) or str(exc))


def translate(exc: BaseException, action: str) -> GitopsError:
    """The project error for an SDK error raised while doing ``action`` (e.g. "getting endpoint ep1")."""
    from azure.core import exceptions as az

    if isinstance(exc, GitopsError):
        return exc
    message = _message(exc)
    status = _status(exc)
    lowered = message.lower()
    if isinstance(exc, az.ClientAuthenticationError) or status == 401:
        return AuthError(
            f"Azure rejected our credentials while {action}: {message}",
            hint="sign in (az login), or check the managed identity / OIDC federation of this deployment",
        )
    if status == 403:
        return ForbiddenError(f"forbidden while {action}: {message}", hint="grant the identity 'AzureML Data Scientist' on the workspace")
    if isinstance(exc, az.ResourceNotFoundError) or status == 404:
        return NotFoundError(f"not found while {action}: {message}", hint="check the name, version and workspace")
    busy = _BUSY.search(message)
    if busy:
        return TransientBackendError(
            f"Azure is still provisioning ({busy.group(1) or 'busy'}) what we write while {action}: {message}",
            hint="a wait, not a failure: the step is tried again when the resource has settled",
        )
    if isinstance(exc, az.ResourceExistsError) or status == 409:
        return ConflictError(
            f"conflict while {action}: {message}", hint="the name is taken or the resource is busy; pick another name or retry later"
        )
    if "quota" in lowered:
        return BackendError(
            f"quota exceeded while {action}: {message}",
            hint="request more quota for this VM family (deployments need 120% of their instances)",
        )
    if status == 429:
        return TransientBackendError(f"Azure throttled us while {action}: {message}", hint="retry later")
    if status is not None and status >= 500 or isinstance(exc, az.ServiceRequestError | az.ServiceResponseError):
        return TransientBackendError(f"Azure failed while {action}: {message}", hint="a transient error: retry later")
    region = _REGISTRY_REGION.search(message)
    if status == 400 and region:
        return SpecError(
            f"registry {region.group(2)} does not serve region {region.group(1)}, the workspace's, while {action}",
            hint=f"use a workspace in a region registry {region.group(2)} is replicated to (its owners can "
            "add regions), or a model and component from a registry that serves this one",
        )
    client_side = status is None and type(exc).__name__ in ("MlException", "ValidationException", "UserErrorException")
    if status == 400 or client_side:
        return SpecError(f"Azure refused the request while {action}: {message}", hint="fix the spec field it names")
    return BackendError(f"Azure error while {action}: {message}")


def call(action: str, fn: Callable[[], T]) -> T:
    """Run one SDK call (whose own retry policy has already retried what a retry may fix) and translate its error."""
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import AzureError

    try:
        return fn()
    except (AzureError, MlException) as exc:  # azure-ai-ml raises its own MlException family too
        raise translate(exc, action) from None
