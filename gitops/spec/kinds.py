"""What the training kind (``finetune.kind``) and the serving kind (``deploy.kind``) ask of the rest of a spec: the
settings a kind has no use for, what it needs and lacks, and a serverless run's single environment. What a backend
cannot do with a kind, and which kinds of training it serves on which kind of endpoint, are its capability table's
(``gitops.spec.capabilities``), not these rules.
"""

from __future__ import annotations

from gitops.spec.capabilities import Feature, kind_of
from gitops.spec.findings import Code, Finding, error, warning
from gitops.spec.model import RunSpec
from gitops.spec.policy import Policy, run_environments

NO_TRAFFIC_SPLIT = (
    "a serverless endpoint serves one model and has no traffic split: a new version gets an endpoint of its own, is "
    "smoke-tested and gated there, and takes all traffic when promoted"
)


def kind_findings(spec: RunSpec, policy: Policy | None = None) -> list[Finding]:  # noqa: C901  (one branch per rule, read flat)
    out: list[Finding] = []
    training, serving = spec.finetune.kind, spec.deploy.kind
    if training == "serverless":
        for field_name in ("cluster", "instance_type"):
            if getattr(spec.compute, field_name) is not None:
                out.append(
                    error(
                        f"compute.{field_name}",
                        "serverless training runs on no compute of yours (billed per token)",
                        f"remove compute.{field_name}, or use finetune.kind: job to train on a VM size you name",
                        code=Code.KIND,
                    )
                )
        if spec.compute.nodes > 1:
            out.append(error("compute.nodes", "serverless training has no nodes to set", "remove compute.nodes", code=Code.KIND))
    if training == "job" and kind_of(spec.backend).named_compute and not (spec.compute.instance_type or spec.compute.cluster):
        out.append(
            error(
                "finetune.kind",
                "the fine-tuning job runs on the VM size you name, and none is named",
                "set compute.instance_type (e.g. Standard_NC24ads_A100_v4), or use finetune.kind: serverless",
                code=Code.KIND,
            )
        )
    if training != "pipeline":
        if spec.data.dataset is None and spec.data.test_path is None:
            out.append(
                error(
                    "data.test_path",
                    f"the {training} fine-tuning job needs validation data, and none is given (azure-ai-ml fails without "
                    "it: an UnboundLocalError in create_finetuning_job)",
                    "set data.test_path to a held-out jsonl of conversations",
                    code=Code.KIND,
                )
            )
        if "component_version" in spec.finetune.model_fields_set:
            out.append(
                warning(
                    "finetune.component_version",
                    f"is not used: finetune.kind {training} trains without the chat_completion_pipeline component",
                    "remove it",
                    code=Code.KIND,
                )
            )
    if serving == "serverless":
        out += _serverless_serving(spec)
    environments = run_environments(spec, policy) if policy is not None else []
    if len(environments) > 1:
        out += _one_environment(spec, environments)
    return out


def _one_environment(spec: RunSpec, environments: list[str]) -> list[Finding]:
    """What a kind cannot carry into a later environment on the spec's backend (its capability table says why)."""
    kind = kind_of(spec.backend)
    asks = [
        (Feature.SERVERLESS_PROMOTION, spec.deploy.kind == "serverless", "a serverless run", "deploy.kind", "deploy.kind: managed"),
        (
            Feature.JOB_PROMOTION,
            spec.finetune.kind == "job",
            "a run trained by the fine-tuning job",
            "finetune.kind",
            "finetune.kind: pipeline",
        ),
    ]
    out = []
    for feature, asked, what, field_path, other in asks:
        if asked and not kind.supports(feature):
            out.append(
                error(
                    "environments" if spec.environments else field_path,
                    f"{what} goes to {len(environments)} environments ({', '.join(environments)}): the {spec.backend} "
                    f"backend does not support {feature.value}: {kind.unsupported[feature]}",
                    f"set environments: [{environments[0]}], or {other}",
                    code=Code.CAPABILITY,
                )
            )
    return out


def _serverless_serving(spec: RunSpec) -> list[Finding]:
    out: list[Finding] = []
    deploy = spec.deploy
    if deploy.rollout is not None:
        why = f"gradual traffic is not supported: {NO_TRAFFIC_SPLIT}"
        out.append(error("deploy.rollout", why, "remove deploy.rollout", code=Code.KIND))
    for field_name in ("instance_type", "instance_count"):
        if field_name in deploy.model_fields_set:
            out.append(
                error(
                    f"deploy.{field_name}",
                    "a serverless endpoint has no instances (billed per token and by the hour it is deployed)",
                    f"remove deploy.{field_name}, or use deploy.kind: managed",
                    code=Code.KIND,
                )
            )
    if "liveness_initial_delay_s" in deploy.model_fields_set:
        unused = "is not used: a serverless endpoint has no probes of yours"
        out.append(warning("deploy.liveness_initial_delay_s", unused, "remove it", code=Code.KIND))
    for env, override in deploy.environments.items():
        for field_name in ("instance_type", "instance_count", "rollout"):
            if getattr(override, field_name) is not None:
                out.append(
                    error(
                        f"deploy.environments.{env}.{field_name}",
                        f"a serverless endpoint has no {'traffic split' if field_name == 'rollout' else 'instances'}",
                        f"remove deploy.environments.{env}.{field_name}",
                        code=Code.KIND,
                    )
                )
    return out
