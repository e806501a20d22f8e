"""Chat rows (ultrachat shape) and the Phi-3 chat template shared by data checks, trainer and server."""

from __future__ import annotations

from typing import Any

ROLES = ("system", "user", "assistant")

# Phi-3 style. `{% generation %}` marks assistant text so that trl can train on the replies only.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' }}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]


def row_problem(row: Any) -> str | None:
    """Why a row is not a valid chat example, or None when it is."""
    if not isinstance(row, dict):
        return "the row is not an object"
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages[{i}] is not an object"
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            return f"messages[{i}].role is {role!r}; allowed: {', '.join(ROLES)}"
        if not isinstance(content, str) or not content.strip():
            return f"messages[{i}].content must be a non-empty string"
    if not any(m["role"] == "assistant" for m in messages):
        return "no assistant turn to learn from"
    return None


def prompt_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A conversation ready to send: a trailing assistant turn (the answer) is dropped."""
    out = list(messages)
    while out and out[-1].get("role") == "assistant":
        out.pop()
    return out
