"""What serves, as the steps ask it a question: a deployment of a managed online endpoint (``/score``, the
``input_data`` body, one deployment picked by header) or a serverless endpoint (``/v1/chat/completions``, the OpenAI
chat body). The smoke test, the gate's online evaluation and ``gitops invoke`` speak through here, so each asks
either kind the same question."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.backends.base import Backend, InvokeResult, ServesServerless
from gitops.errors import UnsupportedError


def openai_body(messages: list[dict[str, str]], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The serverless contract's body for a conversation and the smoke test's generation parameters (``do_sample``
    false or absent: greedy, temperature 0)."""
    body: dict[str, Any] = {"messages": messages, "max_tokens": int(parameters.get("max_new_tokens", 128))}
    if parameters.get("do_sample") is True:
        body.update(temperature=float(parameters.get("temperature", 1.0)), top_p=float(parameters.get("top_p", 1.0)))
    else:
        body["temperature"] = 0.0
    return body


def chat(
    backend: Backend,
    endpoint: str,
    target: str | None,
    *,
    serverless: bool,
    messages: list[dict[str, str]],
    parameters: Mapping[str, Any],
    timeout_s: float,
) -> InvokeResult:
    """One conversation sent to ``target``: a deployment of managed endpoint ``endpoint`` (None: its traffic split
    picks), or (``serverless``) the serverless endpoint named ``target``."""
    if serverless:
        if not target:
            raise UnsupportedError("a serverless request names its endpoint")
        if not isinstance(backend, ServesServerless):
            raise UnsupportedError(f"the {backend.name} backend has no serverless endpoints")
        return backend.invoke_serverless(target, openai_body(messages, parameters), timeout_s=timeout_s)
    payload = {"input_data": {"input_string": messages, "parameters": dict(parameters)}, "params": {}}
    return backend.invoke(endpoint, payload, deployment=target, timeout_s=timeout_s)


def serverless_backend(backend: Backend) -> ServesServerless:
    """``backend`` as one with serverless endpoints, or ``UnsupportedError`` (validation refuses such a spec first)."""
    if not isinstance(backend, ServesServerless):
        raise UnsupportedError(f"the {backend.name} backend has no serverless endpoints")
    return backend
