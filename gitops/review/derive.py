"""What a valid spec resolves to, as the plan and the spec check show it (model, data, compute, GPUs, effective batch
size, job, endpoint, traffic, gate, TTL), and what a change between two versions of a spec takes once merged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops.spec import naming
from gitops.spec.capabilities import Feature, kind_of
from gitops.spec.model import RunSpec
from gitops.spec.policy import GateRules, Policy, run_environments

# A change between two versions of a spec (Digests.change_to) and what merging it takes.
EFFECT_OF_CHANGE = {"retrain": "retrain", "redeploy": "redeploy", "settings": "settings", "unchanged": "none"}


@dataclass(frozen=True)
class Derived:
    """What a valid spec resolves to, as the plan shows it."""

    backend: str
    model: str
    data: str
    compute: str
    instance_type: str | None
    nodes: int
    gpus_per_node: int | None
    effective_batch_size: int
    job_name: str
    display_name: str
    model_name: str
    endpoint: str
    deploy_instance_type: str | None
    traffic: str  # how the candidate takes the traffic (at once, or gradually with its bounds)
    gate: str  # what the gate decides on, and what it waives
    idle_after: str
    expire_after: str
    keep: bool
    environments: str | None = None  # with environments in gitops.yaml: the path a merge starts, and what each step needs
    registry_model: str | None = None  # the name the registry carries it under between environments
    quota: str | None = None  # what limits apply where quota rows do not (serverless); None: the vCPU quota, online
    serverless_training: bool = False  # no compute of the repository's: no size, nodes or GPUs to show


# What a serverless deployment may take (Azure ML serverless endpoints): the limits that stand where quota rows do not.
SERVERLESS_LIMITS = "200,000 tokens/min and 1,000 requests/min per serverless deployment"


def quota_summary(spec: RunSpec) -> str | None:
    """Which quota applies: None where both training and serving take the region's vCPU quota (checked online)."""
    training, serving = spec.finetune.kind == "serverless", spec.deploy.kind == "serverless"
    if training and serving:
        return f"no vCPU quota (serverless training and serving); {SERVERLESS_LIMITS}"
    if training:
        return "training: no vCPU quota (serverless); serving: the region's vCPU quota, checked online"
    if serving:
        return f"training: the region's vCPU quota, checked online; serving: no vCPU quota, {SERVERLESS_LIMITS}"
    return None


def derive(spec: RunSpec, params: dict[str, Any], training_digest: str, policy: Policy, salt: str = "") -> Derived:
    from gitops.spec.component import effective_params, model_uri

    kind = kind_of(spec.backend)
    gpus = kind.gpus(spec.compute.instance_type) if kind.named_compute else None
    merged = effective_params(spec, params)
    if spec.model.path:
        model = spec.model.path
    elif not kind.supports(Feature.REGISTRY_MODELS) or spec.model.registry == "local":
        model = f"{spec.model.registry}/{spec.model.name}:{spec.model.version or spec.model.label or 'latest'}"
    else:
        model = model_uri(spec)
    d = spec.data
    data = d.dataset and f"{d.dataset} [{d.train_split}/{d.test_split}, first {d.sample_percent:g}%]"
    if spec.finetune.kind == "serverless":
        compute = "serverless fine-tuning (per token: no cluster, no quota)"
    elif spec.finetune.kind == "job" and not spec.compute.cluster:
        compute = f"fine-tuning job on {spec.compute.instance_type or kind.compute_label}"
    else:
        compute = spec.compute.cluster or kind.compute_label
    return Derived(
        backend=spec.backend,
        model=model,
        data=data or f"{spec.data.train_path} / {spec.data.test_path or '(split from train)'}",
        compute=compute,
        instance_type=spec.compute.instance_type,
        nodes=spec.compute.nodes,
        gpus_per_node=gpus,
        effective_batch_size=naming.effective_batch_size(merged, gpus, spec.compute.nodes),
        job_name=naming.job_name(spec.name, training_digest),
        display_name=naming.display_name(spec, merged, gpus),
        model_name=naming.model_name(spec),
        endpoint=naming.endpoint_name(spec, salt),
        deploy_instance_type="serverless (per token)" if spec.deploy.kind == "serverless" else spec.deploy.instance_type,
        traffic=traffic_summary(spec),
        gate=gate_summary(policy.first_environment().gate.resolve(spec)),
        idle_after=spec.lifecycle.idle_after or policy.defaults.idle_after,
        expire_after=spec.lifecycle.expire_after or policy.defaults.expire_after,
        keep=spec.lifecycle.keep,
        environments=path_summary(spec, policy),
        registry_model=naming.registry_model_name(spec, salt) if len(run_environments(spec, policy)) > 1 else None,
        quota=quota_summary(spec),
        serverless_training=spec.finetune.kind == "serverless",
    )


def path_summary(spec: RunSpec, policy: Policy) -> str | None:
    """``dev: trains and rolls out on merge → prod: after 24h live in dev, the gate passed there, approval by the
    reviewers of GitHub Environment prod``; None without environments in gitops.yaml."""
    names = [n for n in run_environments(spec, policy) if n in {e.name for e in policy.environments}]
    if not names:
        return None
    parts = [f"{names[0]}: trains and rolls out on merge"]
    for before, name in zip(names, names[1:], strict=False):
        rules = policy.environment(name).promotion
        needs = [f"{rules.soak} live in {before}"]
        needs += ["the gate passed there"] if rules.gate else []
        needs += [f"approval by the reviewers of GitHub Environment {name}"] if rules.approval else []
        parts.append(f"{name}: after " + ", ".join(needs))
    return " → ".join(parts)


def gate_summary(rules: GateRules) -> str:
    """``training metrics and 32 held-out conversations`` or what it waives: ``off (waives all its evidence)``."""
    if not rules.enabled:
        return "off: waives all its evidence (training metrics, held-out conversations)"
    waived = set(rules.waive)
    parts = [] if "training_metrics" in waived else ["training metrics"]
    if "held_out" not in waived:
        parts.append(f"{rules.conversations} held-out conversations")
    decides = " and ".join(parts) if parts else "nothing"
    gone = [label for e, label in (("training_metrics", "training metrics"), ("held_out", "held-out conversations")) if e in waived]
    return f"decides on {decides}" + (f"; waives {', '.join(gone)}" if gone else "")


def traffic_summary(spec: RunSpec) -> str:
    """``10% → 50% → 100%, each held 10m; rolls back over 5.0% errors or p95 over 90000 ms``."""
    ramp = spec.deploy.rollout
    if spec.deploy.kind == "serverless":
        return "each version on a serverless endpoint of its own; the run serves from it as soon as the gate passes (no traffic split)"
    if ramp is None or not ramp.shares:
        return "100% as soon as the gate passes"
    bound = ramp.max_p95_latency_ms or spec.deploy.request_timeout_ms
    least = f", at least {ramp.min_requests} requests each" if ramp.min_requests else ""
    return (
        f"{' → '.join(f'{s}%' for s in ramp.steps)}, each held {ramp.hold}{least}; "
        f"rolls back over {ramp.max_error_rate:.1%} errors or p95 over {bound} ms"
    )
