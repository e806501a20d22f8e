"""The one error handler of the HTTP functions, JSON in and out, and the body size limit.

Every ``GitopsError`` maps to its ``http_status`` with ``{"error": {type, message, hint, findings}}``;
anything else is a 500 whose message says nothing of its cause (the log has the exception type).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from gitops.errors import GitopsError, PayloadTooLargeError, RequestError

log = logging.getLogger("gitops.functions")


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def error_response(exc: GitopsError) -> func.HttpResponse:
    body: dict[str, Any] = {"type": type(exc).__name__, "message": exc.headline}
    if exc.hint:
        body["hint"] = exc.hint
    findings = getattr(exc, "findings", None)
    if findings:
        body["findings"] = [f.to_dict() for f in findings]
        body["messages"] = [f.format() for f in findings]
    return json_response({"error": body}, exc.http_status)


def limit_body(req: func.HttpRequest, limit: int) -> bytes:
    """The body, refused (413) over ``limit`` before anything else looks at it."""
    raw = req.get_body() or b""
    if len(raw) > limit:
        raise PayloadTooLargeError(f"request body of {len(raw)} bytes is over the limit of {limit}", hint="send fewer specs per call")
    return raw


def read_json(req: func.HttpRequest, limit: int) -> dict[str, Any]:
    """The body as a JSON object; call it after authenticating, so that only a verified caller's body is parsed."""
    raw = limit_body(req, limit)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # not JSON, or nested past what a parser will follow
        raise RequestError("the request body is not JSON (or nests too deeply)") from None
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object")
    return data


def handled(name: str, handler: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Run ``handler``; map what it raises to a response. Logs never carry headers or bodies."""

    def run(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except GitopsError as exc:
            log.warning("%s: %s %s", name, exc.http_status, exc.headline)
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001  (the one place that turns an unexpected failure into a 500)
            log.error("%s failed: %s", name, type(exc).__name__)
            return json_response({"error": {"type": "InternalError", "message": "internal error; see the function logs"}}, 500)

    return run
