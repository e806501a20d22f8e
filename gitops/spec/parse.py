"""Raw YAML to a typed model (the first pass of validation, Atlantis' raw -> valid): pydantic's errors become
findings placed on their file and line, with a "did you mean" for a misspelled field. Specs and the policy both
parse through here."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gitops.spec.findings import Code, Finding, error
from gitops.spec.model import IDENTIFIER_PATTERN
from gitops.spec.yamlsource import YamlDocument, dotted, parse_yaml

M = TypeVar("M", bound=BaseModel)

_IDENTIFIER = "letters, digits, '.', '_' and '-', starting with a letter or digit"
# By the field's dotted path first, then by its last name.
_PATTERN_HINTS = {
    "model.name": f"a model name: {_IDENTIFIER}, e.g. Phi-4-mini-instruct",
    "model.registry": f"a registry name: {_IDENTIFIER}, e.g. azureml",
    "model.version": f"a version: {_IDENTIFIER}, e.g. 8",
    "model.label": f"a label: {_IDENTIFIER}, e.g. latest",
    "data.dataset": "a Hugging Face dataset id (owner/name, e.g. HuggingFaceH4/ultrachat_200k) or a directory: "
    "letters, digits, '.', '_', '-' and '/'",
    "owner": "a GitHub handle (alice) or team (@acme/ml-platform)",
    "register.name": f"a model name: {_IDENTIFIER}",
    "name": "3-24 characters: lowercase letters, digits and single '-', starting with a letter, e.g. phi3-chat",
    "endpoint": "3-32 characters: letters, digits and '-', starting with a letter, not ending with '-'",
    "idle_after": "a number and a unit (s, m, h, d, w), e.g. 30m, 24h, 7d",
    "expire_after": "a number and a unit (s, m, h, d, w), e.g. 30m, 24h, 7d",
}


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc`` inside ``model``, for "did you mean" hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return []
        annotation = info.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            inner = [a for c in candidates for a in getattr(c, "__args__", ())]
            nested = [c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        current = nested[0]
    return list(getattr(current, "model_fields", {}))


def findings_from(exc: ValidationError, model: type[BaseModel], doc: YamlDocument) -> list[Finding]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        hint = None
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _fields_of(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            message = "unknown field"
            hint = f"did you mean '{close[0]}'?" if close else (f"allowed here: {', '.join(allowed)}" if allowed else None)
        elif kind == "missing":
            message = "is required"
            hint = f"add '{loc[-1]}:' to the spec"
        elif kind == "string_pattern_mismatch":
            message = f"{err['input']!r} does not match the required pattern {err['ctx']['pattern']}"
            by_name = None if loc[-1] == "name" and len(loc) > 1 else _PATTERN_HINTS.get(str(loc[-1]))
            hint = _PATTERN_HINTS.get(dotted(loc)) or by_name or (_IDENTIFIER if err["ctx"]["pattern"] == IDENTIFIER_PATTERN else None)
        else:
            message = err["msg"].removeprefix("Value error, ")
            if "input" in err and not isinstance(err["input"], (dict, list)) and kind not in ("value_error",):
                message += f", got {err['input']!r}"
        out.append(error(dotted(loc), message, hint, code=Code.FIELD).located(doc.file, doc.line_of(loc)))
    return out


def model_from_yaml(model: type[M], text: str, file: str | None = None) -> tuple[M | None, list[Finding]]:
    """Parse YAML text into ``model``; return (instance or None, located findings)."""
    doc = parse_yaml(text, file)
    if doc.data is None or doc.findings:
        return None, doc.findings
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        return None, findings_from(exc, model, doc)
