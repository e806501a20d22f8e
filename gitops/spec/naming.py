"""Names derived from a spec: digest, job name, display name, model and endpoint names, the effective batch size.

All pure functions of the validated spec, so the plan, the renderer and the backends agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from gitops.spec.model import RunSpec

TAG_RUN, TAG_DIGEST, TAG_COMMIT, TAG_PR = "gitops_run", "gitops_digest", "gitops_commit", "gitops_pr"
TAG_JOB = "gitops_job"  # on a registered model: the job that trained it (a second registration finds it)
MANAGED_BY_TAG, MANAGED_BY_VALUE = "managed_by", "finetune-gitops"
# The repository (owner/name) whose ledger made a resource: two repositories may share one workspace and run names.
TAG_REPO = "gitops_repo"
# lifecycle.keep carried on the endpoint itself, so that cleanup keeps it even when the run's record is lost.
TAG_KEEP = "gitops_keep"
# On a registered model: the content digest of its files (pipelines.model_digest), computed where it was trained.
TAG_CONTENT = "gitops_content_digest"
TAG_DATA = "gitops_data"  # on a registered model: the training data it was fine-tuned on (dataset, or path)
TAG_PREPARES = "gitops_prepares"  # on a job that prepares data: the fine-tuning job that reads it (submitted after it)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# What each part of a spec decides, as Terraform tells "replace" from "update in place": the training sections
# decide the job (a change trains again, a second GPU bill), the deployment sections a new deployment of the
# model already trained, and the rest (owner, description, lifecycle, deploy.timeouts) only settings.
TRAINING_SECTIONS = ("name", "backend", "model", "data", "compute", "finetune")
DEPLOYMENT_SECTIONS = ("register", "deploy")
# Inside a deployment section, yet no reason to redeploy.
# What an environment after the first serves differently is that environment's deployment, not the first one's.
SETTINGS_ONLY = (
    ("deploy", "timeouts"),
    ("deploy", "gate"),
    ("deploy", "keep_previous_for"),
    ("deploy", "rollout"),
    ("deploy", "environments"),
)
# Every settings field came after the first digests: left unset, each is dropped from the whole digest, so a spec
# written before it existed keeps the digest it had (and its run is not seen as changed).
_ADDED_LATER = SETTINGS_ONLY
# Fields added inside a settings section later still: dropped while unset, for the same reason.
_ADDED_LATER_INSIDE = (("deploy", "timeouts", "register"),)
# Top-level settings added later: which environments a run goes to.
_ADDED_LATER_TOP = ("environments",)

ChangeKind = Literal["unchanged", "settings", "redeploy", "retrain"]


@dataclass(frozen=True)
class Digests:
    """The whole spec's digest (the version), the training digest (the job) and the deployment digest (the
    deployment; it covers the training digest, so a retrained model is always a new deployment)."""

    spec: str
    training: str
    deployment: str

    def change_to(self, new: Digests) -> ChangeKind:
        """What going from this version to ``new`` takes."""
        if new.training != self.training:
            return "retrain"
        if new.deployment != self.deployment:
            return "redeploy"
        return "settings" if new.spec != self.spec else "unchanged"


# Fields added later that decide training or deployment: dropped while they hold their default (the only value a spec
# could mean before they existed), so a spec written before them keeps its digests and is never trained again.
_ADDED_LATER_DEFAULTS = (("finetune", "kind", "pipeline"), ("deploy", "kind", "managed"))


def _body(spec: RunSpec, params: dict[str, Any]) -> dict[str, Any]:
    body = spec.model_dump(mode="json")
    body["finetune"]["params"] = params
    for section, field, default in _ADDED_LATER_DEFAULTS:
        if body[section].get(field) == default:
            body[section].pop(field)
    return body


def spec_digest(spec: RunSpec, params: dict[str, Any]) -> str:
    """sha256 of the spec with its normalised params: equal digests mean the same version of the run."""
    body = _body(spec, params)
    # Sections added after specs were in use count only once set, so a run's digest stays the same.
    for section, field, inner in _ADDED_LATER_INSIDE:
        settings = (body.get(section) or {}).get(field)
        if isinstance(settings, dict) and settings.get(inner) is None:
            settings.pop(inner, None)
    for section, field in _ADDED_LATER:
        value = (body.get(section) or {}).get(field)
        if not (any(value.values()) if isinstance(value, dict) else value):
            body[section].pop(field, None)
    for field in _ADDED_LATER_TOP:
        if body.get(field) is None:
            body.pop(field, None)
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def digests(spec: RunSpec, params: dict[str, Any]) -> Digests:
    body = _body(spec, params)
    training = hashlib.sha256(canonical_json({k: body[k] for k in TRAINING_SECTIONS}).encode()).hexdigest()
    deployment_part = {k: dict(body[k]) for k in DEPLOYMENT_SECTIONS}
    for section, field in SETTINGS_ONLY:
        deployment_part[section].pop(field, None)
    deployment = hashlib.sha256(canonical_json({"training": training, **deployment_part}).encode()).hexdigest()
    return Digests(spec_digest(spec, params), training, deployment)


def job_tags(run: str, repo: str, training_digest: str, commit: str | None, pr: str | None) -> dict[str, str]:
    """What a submitted job carries: its run, this repository, its training digest, the commit and pull request."""
    return {TAG_RUN: run, TAG_REPO: repo, TAG_DIGEST: training_digest, TAG_COMMIT: commit or "", TAG_PR: pr or ""}


def job_name(run: str, training_digest: str, attempt: int = 1) -> str:
    """Deterministic: the same run and training sections (and attempt) map to the same job (idempotent submit); a
    change to the deployment or the settings keeps the job."""
    return f"gitops-{run}-{training_digest[:12]}" + (f"-a{attempt}" if attempt > 1 else "")


def effective_batch_size(params: dict[str, Any], gpus: int | None, nodes: int) -> int:
    per_device = int(params.get("per_device_train_batch_size", 1))
    accumulation = int(params.get("gradient_accumulation_steps", 1))
    return per_device * accumulation * (gpus or 1) * nodes


def data_slug(spec: RunSpec) -> str:
    """A short name of the data: the hub dataset's (``ultrachat_200k``), the data asset's (``ultrachat-train``),
    else the folder of the local file (``synth``)."""
    d = spec.data
    if d.dataset:
        return d.dataset.rstrip("/").rsplit("/", 1)[-1]
    path = d.train_path or ""
    if path.startswith("azureml:") and not path.startswith("azureml://"):
        return path.split(":")[1]
    parent = path.rstrip("/").rsplit("/", 2)
    return parent[-2] if len(parent) >= 2 and parent[-2] else "data"


def display_name(spec: RunSpec, params: dict[str, Any], gpus: int | None) -> str:
    """The reference notebook's formula, named for the run's own data and leaving out what the spec leaves unset:
    ``<model>-<data>-bs<N>-<scheduler>-<ds<stage>|nods>-<lora|nolora>[-save_limit<N>][-seqlen<N>]``; a fine-tuning
    job, whose scheduler, DeepSpeed and LoRA are the service's: ``<model>-<data>-bs<N>-<job|serverless>``."""
    batch = effective_batch_size(params, gpus, spec.compute.nodes)
    if spec.finetune.kind != "pipeline":
        return "-".join([spec.model.name, data_slug(spec), f"bs{batch}", spec.finetune.kind])
    scheduler = params.get("lr_scheduler_type", "linear")
    deepspeed = f"ds{params.get('deepspeed_stage', '2')}" if params.get("apply_deepspeed") == "true" else "nods"
    lora = "lora" if params.get("apply_lora") == "true" else "nolora"
    parts = [spec.model.name, data_slug(spec), f"bs{batch}", str(scheduler), deepspeed, lora]
    if params.get("save_total_limit") is not None:
        parts.append(f"save_limit{params['save_total_limit']}")
    if params.get("max_seq_length") is not None:
        parts.append(f"seqlen{params['max_seq_length']}")
    return "-".join(parts)


def model_name(spec: RunSpec) -> str:
    return spec.register.name or spec.name


ENDPOINT_MAX = 32  # Azure ML online endpoint names: 3 to 32 characters


def endpoint_name(spec: RunSpec, salt: str = "", environment: str | None = None) -> str:
    """The spec's endpoint, or a collision-resistant name derived from the run name.

    Endpoint names are unique per Azure region, not per workspace; a short hash of the run name and a
    salt (the repository) keeps two repos' ``demo`` runs apart while staying stable across runs. A later
    environment (``environment``; None: the first) serves on a name of its own, with the environment in it:
    dev and prod workspaces in one region must not ask for the same name."""
    base = spec.deploy.endpoint
    if environment is None:
        return base or f"{spec.name}-{hashlib.sha256(f'{salt}/{spec.name}'.encode()).hexdigest()[:6]}"
    suffix = hashlib.sha256(f"{salt}/{spec.name}/{environment}".encode()).hexdigest()[:6]
    head = (base or spec.name)[: ENDPOINT_MAX - len(environment) - len(suffix) - 2].rstrip("-")
    return f"{head}-{environment}-{suffix}"


SERVERLESS_MAX = 52  # serverless endpoint names: ^[a-zA-Z][a-zA-Z0-9-]{0,51}$


def serverless_endpoint_name(endpoint: str, model_version: str, deployment_digest: str) -> str:
    """A version's serverless endpoint: the run's endpoint name, the model version and the deployment digest (as a
    managed deployment's ``v<version>-<digest8>``): a serverless endpoint serves one model, so each version has its
    own, and the same version deployed again with other settings has another."""
    version = "".join(c for c in model_version if c.isalnum())[:10] or "0"
    tail = f"-v{version}-{deployment_digest[:6]}"
    return f"{endpoint[: SERVERLESS_MAX - len(tail)].rstrip('-')}{tail}"


def registry_model_name(spec: RunSpec, salt: str) -> str:
    """The model's name in the registry that carries it between environments. Registry names are global, so it
    carries the repository's identity (``salt``), as derived endpoint names do: two repositories' runs never collide."""
    suffix = hashlib.sha256(f"{salt}/{spec.name}".encode()).hexdigest()[:6]
    return f"{model_name(spec)}-{suffix}"


def experiment_name(spec: RunSpec) -> str:
    return f"chat_completion_{spec.model.name}"
