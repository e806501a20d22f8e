"""The project's one exception hierarchy.

Every error carries a one-line ``headline`` (what went wrong) and an optional ``hint`` (how to fix it).
Entry points (CLI, HTTP functions, event handlers) map these to exit codes, HTTP statuses or comments
in one place each; SDK errors are translated into these inside the backend adapters.
"""

from __future__ import annotations


class GitopsError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1
    http_status = 500

    def __init__(self, headline: str, hint: str | None = None) -> None:
        super().__init__(headline)
        self.headline = headline.splitlines()[0] if headline else type(self).__name__
        self.hint = hint

    def __str__(self) -> str:
        return self.headline if not self.hint else f"{self.headline} (hint: {self.hint})"


class SpecError(GitopsError):
    """A run spec or the policy file is invalid; ``findings`` lists every problem."""

    exit_code = 1
    http_status = 422

    def __init__(self, headline: str, findings: list | None = None, hint: str | None = None) -> None:
        super().__init__(headline, hint)
        self.findings = list(findings or [])


class AuthError(GitopsError):
    """The caller is not authenticated."""

    exit_code = 3
    http_status = 401


class ForbiddenError(GitopsError):
    """The caller is authenticated but not allowed to do this."""

    exit_code = 3
    http_status = 403


class NotFoundError(GitopsError):
    """A named thing (run, job, model, endpoint) does not exist."""

    exit_code = 4
    http_status = 404


class ConflictError(GitopsError):
    """The request conflicts with current state (a run already in flight, a name taken, a stale ETag)."""

    exit_code = 5
    http_status = 409


class TransitionError(ConflictError):
    """A run asked to move between two statuses it never moves between (``gitops.ledger.model.TRANSITIONS``)."""


class UnsupportedError(GitopsError):
    """The chosen backend does not support a feature the spec asks for."""

    exit_code = 1
    http_status = 422


class BackendError(GitopsError):
    """A backend call failed (quota, throttling, a crashed process, an unexpected SDK error)."""

    exit_code = 6
    http_status = 502


class UnreachableError(BackendError):
    """A server that should answer did not: the connection was refused, reset or timed out."""


class TransientBackendError(BackendError):
    """A backend call failed in a way that a retry may fix (429, 5xx, timeouts)."""

    http_status = 503


class RequestError(GitopsError):
    """A request to an HTTP entry point is malformed (not JSON, a field missing)."""

    exit_code = 2
    http_status = 400


class PayloadTooLargeError(RequestError):
    """A request body over the entry point's size limit."""

    http_status = 413


class CorruptRecordError(GitopsError):
    """A stored record (a ledger entry, an endpoint's config) that cannot be read: truncated, not JSON, another shape."""

    exit_code = 1
    http_status = 500


class ConfigurationError(GitopsError):
    """A deployment setting the code needs is missing or wrong (an operator's fix, not the caller's)."""

    exit_code = 1
    http_status = 500
