"""The smoke test of a new deployment: one chat request, every known response shape, a latency bound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitops.backends.base import Backend
from gitops.ledger.model import SmokeResult
from gitops.spec.model import RunSpec
from pipelines.chat_format import prompt_messages


def extract_reply(body: str) -> str | None:
    """The generated text from any response shape endpoints use, or None."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        if isinstance(data.get("output"), str):
            return str(data["output"])
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):  # OpenAI-style chat completion
            message = choices[0].get("message") or {}
            return message.get("content") if isinstance(message.get("content"), str) else None
        return None
    if isinstance(data, list) and data:
        first = data[0]
        if isinstance(first, str):
            return first
        if isinstance(first, dict):
            for key in ("output", "0", "generated_text"):
                if isinstance(first.get(key), str):
                    return str(first[key])
            return extract_reply(json.dumps(first))
    return None


def smoke_messages(spec: RunSpec, test_path: str | None) -> list[dict[str, str]]:
    """The spec's messages, else the first conversation of the test split without its last answer."""
    if spec.deploy.smoke_test.messages:
        return [m.model_dump() for m in spec.deploy.smoke_test.messages]
    if test_path and Path(test_path).is_file():
        with Path(test_path).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    messages = prompt_messages(json.loads(line)["messages"])
                    if messages:
                        return messages
    return [{"role": "user", "content": "Hello! Please introduce yourself in one sentence."}]


def run_smoke_test(
    backend: Backend, endpoint: str, deployment: str, spec: RunSpec, test_path: str | None, *, serverless: bool = False
) -> SmokeResult:
    """One conversation to ``deployment`` of ``endpoint`` (``serverless``: to the serverless endpoint ``deployment``)."""
    from gitops.lifecycle.serving import chat

    bound_ms = spec.deploy.smoke_test.max_latency_ms
    result = chat(
        backend,
        endpoint,
        deployment,
        serverless=serverless,
        messages=smoke_messages(spec, test_path),
        parameters=spec.deploy.smoke_test.parameters,
        timeout_s=max(bound_ms / 1000 * 2, 5),
    )
    reply = extract_reply(result.body) if result.status_code == 200 else None
    if result.status_code != 200:
        reason = f"status {result.status_code}: {result.body[:200]}"
    elif not reply or not reply.strip():
        reason = "empty or unrecognised reply"
    elif result.latency_ms > bound_ms:
        reason = f"latency {result.latency_ms:.0f} ms over the bound of {bound_ms} ms"
    else:
        reason = ""
    return SmokeResult(
        ok=not reason,
        status_code=result.status_code,
        latency_ms=round(result.latency_ms, 1),
        reply_excerpt=(reply or "")[:200],
        reason=reason,
    )
