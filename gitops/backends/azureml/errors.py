"""Translation of azure-core / azure-ai-ml errors into the project's errors, and the one retry policy.

Every SDK call of this package goes through ``call``: throttling (429) and server errors (5xx) are
retried with exponential backoff that honours ``Retry-After``; whatever is left is translated into a
``GitopsError`` with a one-line headline and a hint. Messages from Azure are cut to their one telling line
and scrubbed of anything that looks like a credential before they reach a headline.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

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

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_SECRETISH = re.compile(r"(?i)(bearer\s+|sig=|key=|primaryKey\"?:\s*\"?|secondaryKey\"?:\s*\"?|accountkey=)[^\s&\";,]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(exc: BaseException) -> str:
    error = getattr(exc, "error", None)  # azure-core's ODataV4Format: code + message
    if error is not None and getattr(error, "message", None):
        return scrub(f"{getattr(error, 'code', '') or ''}: {error.message}".lstrip(": "))
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
        return AuthError(f"Azure rejected our credentials while {action}: {message}",
                         hint="sign in (az login), or check the managed identity / OIDC federation of this deployment")
    if status == 403:
        return ForbiddenError(f"forbidden while {action}: {message}",
                              hint="grant the identity 'AzureML Data Scientist' on the workspace")
    if isinstance(exc, az.ResourceNotFoundError) or status == 404:
        return NotFoundError(f"not found while {action}: {message}", hint="check the name, version and workspace")
    if isinstance(exc, az.ResourceExistsError) or status == 409:
        return ConflictError(f"conflict while {action}: {message}", hint="the name is taken or the resource is busy; "
                                                                          "pick another name or retry later")
    if "quota" in lowered:
        return BackendError(f"quota exceeded while {action}: {message}",
                            hint="request more quota for this VM family (deployments need 120% of their instances)")
    if status == 429:
        return TransientBackendError(f"Azure throttled us while {action}: {message}", hint="retry later")
    if status is not None and status >= 500 or isinstance(exc, az.ServiceRequestError | az.ServiceResponseError):
        return TransientBackendError(f"Azure failed while {action}: {message}", hint="a transient error: retry later")
    client_side = status is None and type(exc).__name__ in ("MlException", "ValidationException", "UserErrorException")
    if status == 400 or client_side:
        return SpecError(f"Azure refused the request while {action}: {message}", hint="fix the spec field it names")
    return BackendError(f"Azure error while {action}: {message}")


def _retryable(exc: BaseException) -> bool:
    from azure.core import exceptions as az

    return _status(exc) in RETRY_STATUSES or isinstance(exc, az.ServiceRequestError | az.ServiceResponseError)


def call(action: str, fn: Callable[[], T], *, attempts: int = 4, base_delay: float = 1.0, max_delay: float = 60.0,
         sleep: Callable[[float], Any] = time.sleep) -> T:
    """Run one SDK call: retry what a retry may fix, translate the rest."""
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import AzureError

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (AzureError, MlException) as exc:  # azure-ai-ml raises its own MlException family too
            if attempt < attempts and isinstance(exc, AzureError) and _retryable(exc):
                delay = min(_retry_after(exc) or base_delay * 2 ** (attempt - 1), max_delay)
                log.info("retrying %s in %.1fs after %s", action, delay, _status(exc) or type(exc).__name__)
                sleep(delay)
                continue
            raise translate(exc, action) from None
    raise AssertionError("unreachable")
