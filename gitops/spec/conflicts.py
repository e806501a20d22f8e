"""Checks over the set of specs, not one spec: two runs may not share an endpoint or a registered model name (the
second would take over the first one's traffic or versions). Each finding names the other file and its line."""

from __future__ import annotations

from collections import defaultdict

from gitops.spec import naming
from gitops.spec.findings import Code, Finding, error
from gitops.spec.validate import SpecValidation

# What may not be shared, the spec field that sets it, and how the derived value is named in the message.
SHARED = (("deploy.endpoint", "endpoint"), ("register.name", "registered model name"))


def conflict_findings(specs: list[SpecValidation], salt: str = "") -> dict[str, list[Finding]]:
    """Findings per spec file; valid specs only are compared."""
    out: dict[str, list[Finding]] = defaultdict(list)
    for field, what in SHARED:
        users: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for validated in specs:
            if not validated.ok or validated.spec is None:
                continue
            spec = validated.spec
            value = naming.endpoint_name(spec, salt) if field == "deploy.endpoint" else naming.model_name(spec)
            users[value.lower()].append((validated.file, validated.line_of(field)))
        for value, places in users.items():
            if len(places) < 2:
                continue
            for file, line in places:
                others = ", ".join(f"{f}:{n}" for f, n in places if f != file)
                out[file].append(
                    error(
                        field, f"{what} '{value}' is also used by {others}", f"give each run its own {field}", code=Code.CONFLICT
                    ).located(file, line)
                )
    return dict(out)
