"""Plan output: plain text for terminals, Markdown for one sticky PR comment, JSON for machines."""

from __future__ import annotations

import json

from gitops.plan import Plan, SpecPlan, ttl_summary

PLAN_MARKER = "<!-- finetune-gitops:plan -->"
COMMENT_LIMIT = 65_000  # GitHub refuses comments over 65,536 characters
_ICONS = {"added": "🆕", "changed": "✏️", "renamed": "🔀", "removed": "🗑️", "unchanged": "·"}


def _short(value: object, width: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def _summary(plan: Plan) -> str:
    counts = {s: len(plan.by_status(s)) for s in ("added", "changed", "renamed", "removed", "unchanged")}
    invalid = sum(1 for s in plan.specs if not s.valid)
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return ", ".join(parts or ["no specs"]) + (f"; {invalid} invalid" if invalid else "; all valid")


def render_text(plan: Plan) -> str:
    lines = [f"Plan {plan.base[:10]}..{plan.head[:10]}: {_summary(plan)}"]
    if plan.salt_source:
        lines.append(f"  endpoint names derived for {plan.salt_source}")
    lines += [f"  {f.format()}" for f in plan.policy_findings]
    for spec in plan.specs:
        if spec.status == "unchanged" and spec.valid:
            continue
        mark = "" if spec.valid else "  [INVALID]"
        renamed = f" (from {spec.old_path})" if spec.old_path else ""
        lines.append(f"\n{spec.status.upper():9} {spec.path}{renamed}{mark}")
        d = spec.derived
        if d is not None:
            gpus = d.gpus_per_node if d.gpus_per_node is not None else "?"
            lines += [
                f"  model      {d.model}",
                f"  data       {d.data}",
                f"  compute    {d.compute} ({d.instance_type or '-'}) x{d.nodes} nodes, {gpus} GPU/node",
                f"  batch      effective {d.effective_batch_size}",
                f"  job        {d.job_name}  [{d.display_name}]",
                f"  register   {d.model_name}",
                f"  endpoint   {d.endpoint} ({d.deploy_instance_type or '-'})",
                f"  ttl        {ttl_summary(d)}",
            ]
        lines += [f"  ~ {c.path}: {_short(c.old)} -> {_short(c.new)}" for c in spec.changes]
        lines += [f"  {f.format()}" for f in spec.findings]
    unchanged = [s for s in plan.by_status("unchanged") if s.valid]
    if unchanged:
        lines.append(f"\n{len(unchanged)} spec(s) unchanged and valid.")
    return "\n".join(lines) + "\n"


def _md_spec(spec: SpecPlan) -> str:
    status = "❌ invalid" if not spec.valid else "✅ valid"
    renamed = f" (from `{spec.old_path}`)" if spec.old_path else ""
    out = [f"### {_ICONS[spec.status]} `{spec.path}` — {spec.status}{renamed} — {status}", ""]
    d = spec.derived
    if d is not None:
        gpus = d.gpus_per_node if d.gpus_per_node is not None else "? (checked online)"
        rows = [
            ("Backend", d.backend), ("Model", f"`{d.model}`"), ("Data", d.data),
            ("Compute", f"`{d.compute}` · {d.instance_type or '-'} · {d.nodes} node(s)"),
            ("GPUs per node", str(gpus)), ("Effective batch size", str(d.effective_batch_size)),
            ("Job", f"`{d.job_name}`"), ("Display name", f"`{d.display_name}`"),
            ("Registered model", f"`{d.model_name}`"),
            ("Endpoint", f"`{d.endpoint}` · {d.deploy_instance_type or '-'}"), ("TTL", ttl_summary(d)),
        ]
        out += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    if spec.changes:
        out += ["<details><summary>Changed fields</summary>", "", "| field | before | after |", "|---|---|---|"]
        out += [f"| `{c.path}` | `{_short(c.old, 40)}` | `{_short(c.new, 40)}` |" for c in spec.changes]
        out += ["", "</details>", ""]
    for f in spec.findings:
        icon = "❌" if f.is_error else "⚠️"
        hint = f" — {f.hint}" if f.hint else ""
        out.append(f"- {icon} line {f.line}: `{f.path or '(document)'}`: {f.message}{hint}")
    return "\n".join(out).rstrip() + "\n"


def render_markdown(plan: Plan, limit: int = COMMENT_LIMIT, extra: str = "") -> str:
    """One sticky PR comment: a hidden marker line, a summary, a section per spec; under ``limit``."""
    head = [PLAN_MARKER, f"## finetune-gitops plan: {'✅' if plan.ok else '❌'} {_summary(plan)}",
            f"`{plan.base[:10]}` → `{plan.head[:10]}`", ""]
    head += [f"- ❌ `{f.file}` line {f.line}: `{f.path}`: {f.message}" for f in plan.policy_findings]
    shown = [s for s in plan.specs if s.status != "unchanged" or not s.valid]
    unchanged = len(plan.specs) - len(shown)
    tail = [f"\n{unchanged} unchanged valid spec(s) not shown." if unchanged else "", extra]
    body = "\n".join(head) + "\n"
    footer = "\n".join(t for t in tail if t) + "\n"
    # Invalid specs first, so that truncation never hides an error.
    sections = [_md_spec(s) for s in sorted(shown, key=lambda s: s.valid)]
    for i, section in enumerate(sections):
        rest = len(sections) - i
        note = f"\n… {rest} more spec(s) not shown (comment size limit); run `gitops plan` locally for all.\n"
        if len(body) + len(section) + len(footer) + len(note) + 2 > limit:
            body += note
            break
        body += "\n" + section
    return (body + footer)[:limit]


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, default=str)
