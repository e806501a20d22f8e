"""Plan output: plain text for terminals, Markdown for one sticky PR comment, JSON for machines."""

from __future__ import annotations

import json

from gitops.markdown import code, text
from gitops.review.plan import Plan, SpecPlan, ttl_summary
from gitops.spec.findings import Finding

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


def effect_text(spec: SpecPlan) -> str:
    """What merging the spec does, in the words a reviewer looks for: "retrain ~$X", "redeploy only", "settings only"."""
    cost = spec.cost
    if spec.effect in ("train", "retrain"):
        price = ""
        if cost is not None and cost.billed:
            price = (
                f" ~${cost.training_usd:,.2f}"
                if cost.training_usd is not None
                else (f" at ${cost.training_hourly:.2f}/h" if cost.training_hourly is not None else " (cost unknown)")
            )
        return ("new run: train" if spec.effect == "train" else "retrain") + price + ", then deploy" + _kind_change(spec)
    if spec.effect == "redeploy":
        return "redeploy only: the trained model is deployed again, no training" + _kind_change(spec)
    return {
        "redeploy": "redeploy only: the trained model is deployed again, no training",
        "settings": "settings only: nothing is trained or deployed",
        "none": "no change",
        "remove": "no longer managed from runs/ (its endpoint is deleted only if cleanup.prune_orphans is set)",
    }.get(spec.effect or "", "")


def _kind_change(spec: SpecPlan) -> str:
    """What a change of training or serving kind adds to the effect (the digests already say retrain or redeploy)."""
    moved = {c.path: c for c in spec.changes if c.path in ("finetune.kind", "deploy.kind")}
    out = ""
    if "finetune.kind" in moved:
        c = moved["finetune.kind"]
        out += f"; trained anew by {c.new or 'pipeline'} fine-tuning (was {c.old or 'pipeline'})"
    if "deploy.kind" in moved:
        c = moved["deploy.kind"]
        out += (
            f"; served on a {c.new or 'managed'} endpoint (was {c.old or 'managed'}): the old endpoint serves until the new "
            "one is promoted, then retires after deploy.keep_previous_for"
        )
    return out


def training_text(spec: SpecPlan) -> str:
    assert spec.cost is not None
    if spec.effect in ("redeploy", "settings", "none"):
        return "none: the model the run's current job trained is kept"
    return spec.cost.training_line()


def render_text(plan: Plan) -> str:
    lines = [f"Plan {plan.base[:10]}..{plan.head[:10]}: {_summary(plan)}"]
    if plan.salt_source:
        lines.append(f"  endpoint names derived for {plan.salt_source}")
    lines += [f"  prices: {note}" for note in plan.price_notes]
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
                f"  compute    {d.compute}"
                if d.serverless_training
                else f"  compute    {d.compute} ({d.instance_type or '-'}) x{d.nodes} nodes, {gpus} GPU/node",
                f"  batch      effective {d.effective_batch_size}",
                f"  job        {d.job_name}  [{d.display_name}]",
                f"  register   {d.model_name}",
                f"  endpoint   {d.endpoint} ({d.deploy_instance_type or '-'})",
                f"  traffic    {d.traffic}",
                f"  gate       {d.gate}",
                f"  ttl        {ttl_summary(d)}",
            ]
            if d.environments:
                lines.append(f"  path       {d.environments}")
            if d.registry_model:
                lines.append(f"  registry   {d.registry_model}")
        if spec.effect and spec.valid:
            lines.append(f"  effect     {effect_text(spec)}")
        if spec.cost is not None:
            lines += [f"  training   {training_text(spec)}", f"  serving    {spec.cost.serving_line()}"]
            lines += [f"  serving in {c.environment}: {c.serving_line()}" for c in spec.cost.later]
            if spec.cost.billed:
                quota = d.quota if d is not None and d.quota else "checked online (gitops validate --online, the validate Function)"
                lines += [f"  prices     {spec.cost.prices_from}", f"  quota      {quota}"]
        lines += [f"  ~ {c.path}: {_short(c.old)} -> {_short(c.new)}" for c in spec.changes]
        lines += [f"  {f.format()}" for f in spec.findings]
    unchanged = [s for s in plan.by_status("unchanged") if s.valid]
    if unchanged:
        lines.append(f"\n{len(unchanged)} spec(s) unchanged and valid.")
    return "\n".join(lines) + "\n"


def _md_spec(spec: SpecPlan) -> str:
    """One spec's section. Every value a spec (or a file name) controls goes through ``code`` or ``text``."""
    status = "❌ invalid" if not spec.valid else "✅ valid"
    renamed = f" (from {code(spec.old_path)})" if spec.old_path else ""
    out = [f"### {_ICONS[spec.status]} {code(spec.path)} — {spec.status}{renamed} — {status}", ""]
    d = spec.derived
    if d is not None:
        gpus = d.gpus_per_node if d.gpus_per_node is not None else "? (checked online)"
        rows = [
            ("Backend", text(d.backend)),
            ("Model", code(d.model)),
            ("Data", text(d.data)),
            (
                "Compute",
                code(d.compute) if d.serverless_training else f"{code(d.compute)} · {text(d.instance_type or '-')} · {d.nodes} node(s)",
            ),
            *([] if d.serverless_training else [("GPUs per node", text(gpus))]),
            ("Effective batch size", str(d.effective_batch_size)),
            ("Job", code(d.job_name)),
            ("Display name", code(d.display_name)),
            ("Registered model", code(d.model_name)),
            ("Endpoint", f"{code(d.endpoint)} · {text(d.deploy_instance_type or '-')}"),
            ("Traffic", text(d.traffic)),
            ("Gate", text(d.gate)),
            ("TTL", text(ttl_summary(d))),
        ]
        if d.environments:
            rows.append(("Environments", text(d.environments)))
        if d.registry_model:
            rows.append(("Registry model", code(d.registry_model)))
        if spec.effect:
            rows.insert(0, ("Effect", f"**{text(effect_text(spec))}**"))
        if spec.cost is not None:
            rows += [("Training cost", text(training_text(spec))), ("Serving cost", text(spec.cost.serving_line()))]
            rows += [(f"Serving cost in {text(c.environment)}", text(c.serving_line())) for c in spec.cost.later]
            if spec.cost.billed:
                quota = text(d.quota) if d.quota else "checked against the region's vCPU quota by the online checks below"
                rows += [("Prices", text(spec.cost.prices_from)), ("Quota", quota)]
        out += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    elif spec.effect:
        out += [f"**{text(effect_text(spec))}**", ""]
    if spec.changes:
        out += ["<details><summary>Changed fields</summary>", "", "| field | before | after |", "|---|---|---|"]
        out += [f"| {code(c.path)} | {code(_short(c.old, 40))} | {code(_short(c.new, 40))} |" for c in spec.changes]
        out += ["", "</details>", ""]
    out += [finding_item(f) for f in spec.findings]
    return "\n".join(out).rstrip() + "\n"


def finding_item(f: Finding, indent: str = "") -> str:
    """A finding as a list item: its line, its field and what to do, each escaped."""
    icon = {"error": "❌", "warning": "⚠️"}.get(f.severity.value, "ℹ️")
    hint = f" — {text(f.hint)}" if f.hint else ""
    return f"{indent}- {icon} line {f.line}: {code(f.path or '(document)')}: {text(f.message)}{hint}"


def render_markdown(plan: Plan, limit: int = COMMENT_LIMIT, extra: str = "") -> str:
    """One sticky PR comment: a hidden marker line, a summary, a section per spec; under ``limit``."""
    head = [
        PLAN_MARKER,
        f"## finetune-gitops plan: {'✅' if plan.ok else '❌'} {_summary(plan)}",
        f"{code(plan.base[:10])} → {code(plan.head[:10])}",
        "",
    ]
    head += [f"- ❌ {code(f.file)} line {f.line}: {code(f.path)}: {text(f.message)}" for f in plan.policy_findings]
    head += [f"- ⚠️ prices: {text(note)}" for note in plan.price_notes]
    shown = [s for s in plan.specs if s.status != "unchanged" or not s.valid]
    unchanged = len(plan.specs) - len(shown)
    tail = [f"{unchanged} unchanged valid spec(s) not shown.\n" if unchanged else "", extra]
    body = "\n".join(head) + "\n"
    # After a blank line: a section may end in an HTML block (</details>), which would swallow what follows it.
    footer = "\n" + "\n".join(t for t in tail if t) + "\n"
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
