"""The run spec schema (pass one of validation): strict pydantic models, one per YAML section.

Every model forbids unknown fields so that a typo is an error, not a silently ignored setting.
Component parameters (``finetune.params``) are checked against the component interface afterwards.
"""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic import Strict as Exact

DEFAULT_COMPONENT_VERSION = "0.0.82"  # the chat_completion_pipeline version a spec gets unless it pins its own
RUN_NAME_PATTERN = r"^[a-z][a-z0-9-]*[a-z0-9]$"
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
DURATION_PATTERN = r"^[1-9][0-9]*[smhdw]$"
# Identifiers are strict at validation, so what a reviewer reads of them is what they are (they are escaped where they
# are written, too): names, versions, labels, SKUs; a dataset id or directory; a GitHub handle or @org/team.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
DATASET_PATTERN = r"^[A-Za-z0-9._/][A-Za-z0-9._/-]*$"
OWNER_PATTERN = r"^@?[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3650)  # ten years: anything longer is a typo that would overflow date arithmetic


def parse_duration(text: str) -> timedelta:
    """``"24h"`` -> 24 hours. The schema guarantees the shape and the bound."""
    match = re.fullmatch(r"([1-9][0-9]{0,9})([smhdw])", text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def _bounded_duration(text: str) -> str:
    parse_duration(text)
    return text


def _one_line_path(text: str) -> str:
    """A path or URI: anything a file name may hold, but no line break or control character."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("a path holds no line break or control character")
    return text


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=IDENTIFIER_PATTERN)]
PathText = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_one_line_path)]
RunName = Annotated[str, StringConstraints(min_length=3, max_length=24, pattern=RUN_NAME_PATTERN)]


def is_run_name(value: object) -> bool:
    """Whether ``value`` is a name a spec may carry (3-24 chars, lowercase letters, digits, single '-'): what a name
    arriving from outside a spec (a queue message, a URL) must be before it names a record in storage."""
    return isinstance(value, str) and 3 <= len(value) <= 24 and re.fullmatch(RUN_NAME_PATTERN, value) is not None and "--" not in value


EndpointName = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=ENDPOINT_NAME_PATTERN)]
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN), AfterValidator(_bounded_duration)]
# Counts and switches are taken as YAML wrote them: `nodes: true` or `instance_count: "2"` is an error, not a 1 or a 2.
Count = Annotated[int, Exact()]
Switch = Annotated[bool, Exact()]
# An environment's name (dev, staging, prod): also the GitHub Environment whose reviewers approve a promotion into it.
ENVIRONMENT_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"
EnvironmentName = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=ENVIRONMENT_NAME_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True)


class ModelRef(Strict):
    """The foundation model: a registry model by version (or label), or a local model directory."""

    registry: Identifier = Field("azureml", description="Registry holding the model; 'local' for the local backend's registry.")
    name: Identifier = Field(..., description="Model name, e.g. Phi-3-mini-4k-instruct.")
    version: Identifier | None = Field(None, description="Pinned model version (reproducible).")
    label: Identifier | None = Field(None, description="A label such as 'latest' (not reproducible: warns).")
    path: PathText | None = Field(None, description="A local Hugging Face model directory (local backend only).")

    @model_validator(mode="after")
    def _one_selector(self) -> ModelRef:
        given = [k for k in ("version", "label", "path") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of version, label or path, not {' and '.join(given)}")
        if not given and self.registry != "local":
            raise ValueError("give a version (reproducible) or a label such as 'latest'")
        return self


class DataSpec(Strict):
    """Training data: a dataset id with splits and a prefix slice, or explicit train/test files."""

    dataset: str | None = Field(
        None, max_length=1024, pattern=DATASET_PATTERN, description="A Hugging Face dataset id or local dataset directory."
    )
    train_split: Identifier = "train_sft"
    test_split: Identifier = "test_sft"
    sample_percent: float = Field(100, gt=0, le=100, description="Prefix slice split[0%:N%] of every split.")
    train_path: PathText | None = Field(None, description="Local path, azureml:// or https URI of the train jsonl.")
    test_path: PathText | None = None

    @model_validator(mode="after")
    def _source(self) -> DataSpec:
        if self.dataset is None and self.train_path is None:
            raise ValueError("give either dataset (with splits) or train_path (and test_path)")
        if self.dataset is not None and self.train_path is not None:
            raise ValueError("give either dataset or train_path/test_path, not both")
        return self


class ComputeSpec(Strict):
    cluster: Identifier | None = Field(None, min_length=2, description="Compute cluster name; omit for serverless.")
    instance_type: Identifier | None = Field(None, description="VM SKU, e.g. Standard_NC24ads_A100_v4.")
    nodes: Count = Field(1, ge=1, le=64)


# How a run is trained: the registry pipeline ``chat_completion_pipeline`` (on a cluster or an instance type), the
# standalone fine-tuning job on a VM size you name (model as a platform), or serverless (billed per token, no quota).
TrainingKind = Literal["pipeline", "job", "serverless"]
# How a run is served: a managed online endpoint (VMs, traffic split between deployments) or a serverless endpoint
# (billed per token plus an hourly hosting fee; one model per endpoint, no traffic split).
ServingKind = Literal["managed", "serverless"]


class FinetuneSpec(Strict):
    kind: TrainingKind = Field(
        "pipeline",
        description="pipeline: the registry component chat_completion_pipeline; job: the standalone fine-tuning job on the "
        "compute.instance_type you name; serverless: the fine-tuning job billed per token, on no compute of yours.",
    )
    component_version: Identifier = Field(DEFAULT_COMPONENT_VERSION, description="Pinned chat_completion_pipeline version.")
    params: dict[str, Any] = Field(default_factory=dict, description="Inputs of the component (see docs/spec.md).")


class RegisterSpec(Strict):
    name: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ChatMessage(Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(..., min_length=1)


class SmokeTestSpec(Strict):
    messages: list[ChatMessage] | None = Field(None, min_length=1, description="Default: a test-split conversation.")
    parameters: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200})
    max_latency_ms: Count = Field(120000, ge=1, le=600000, description="A reply slower than this fails the smoke test.")


# ``register`` is a field name (the spec's section, a rollout phase); pydantic warns that it shadows ABCMeta.register on the class,
# which nothing here uses.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class RolloutTimeouts(Strict):
    """How long each phase of a rollout may take before it fails and rolls back (defaults: gitops.yaml ``rollout``,
    which names the same phases: one list, strict in both files)."""

    register: Duration | None = Field(None, description="Reading the job's outcome and registering its model (default 30m).")
    endpoint: Duration | None = Field(None, description="Creating the endpoint (default 30m).")
    deployment: Duration | None = Field(None, description="Provisioning the deployment (default 45m; LLMs take 10m+).")
    smoke: Duration | None = Field(None, description="The smoke test, retries included (default 15m).")
    traffic: Duration | None = Field(None, description="Each traffic change and clean-up (default 15m).")
    gate: Duration | None = Field(None, description="The gate: training metrics and the online evaluation (default 30m).")


# The evidence a gate decides on: the training's eval metrics, and the candidate's answers to held-out conversations.
# A gate passes only on the evidence it has; going without a kind of it is a waiver, named in the spec.
EVIDENCE = ("training_metrics", "held_out")
Evidence = Literal["training_metrics", "held_out"]


class GateSpec(Strict):
    """Whether a candidate may take traffic: its training metrics against the serving version's, and an online
    evaluation of both deployments on held-out conversations (defaults: gitops.yaml ``gate``)."""

    enabled: Switch | None = Field(None, description="Gate the promotion at all (default true).")
    max_eval_loss_increase: float | None = Field(
        None, ge=0, le=100, description="Final eval loss may rise at most this much over the serving version's."
    )
    max_perplexity: float | None = Field(None, gt=1, description="An absolute ceiling on eval perplexity (any version, the first too).")
    conversations: Count | None = Field(
        None, ge=0, le=512, description="Held-out conversations sent to both deployments (0: no online evaluation)."
    )
    margin: float | None = Field(None, ge=0, le=1, description="Mean ROUGE-L may drop at most this much (non-inferiority margin).")
    confidence: float | None = Field(None, ge=0.5, lt=1, description="Confidence of the paired bootstrap's one-sided bound.")
    max_error_rate: float | None = Field(None, ge=0, le=1, description="Share of failed requests the candidate may have.")
    max_p95_latency_ms: Count | None = Field(None, ge=1, le=600000, description="The candidate's 95th percentile latency bound.")
    hold_for: Duration | None = Field(None, description="How long a candidate that failed the gate waits for a decision (default 24h).")
    waive: list[Evidence] | None = Field(
        None,
        max_length=len(EVIDENCE),
        description="Evidence the gate may go without (training_metrics, held_out): without a waiver, missing evidence holds.",
    )

    @field_validator("waive")
    @classmethod
    def _each_once(cls, waive: list[str] | None) -> list[str] | None:
        if waive is not None and len(set(waive)) != len(waive):
            raise ValueError("names a kind of evidence twice")
        return waive


MAX_RAMP_STEPS = 10


class RolloutSpec(Strict):
    """Gradual traffic: the candidate takes each share in turn and holds it while its error rate and latency, read from
    the endpoint's own metrics (Azure Monitor; the local server's stats), stay within bounds. A breach rolls back."""

    steps: list[Count] = Field(
        ..., min_length=1, max_length=MAX_RAMP_STEPS, description="Traffic shares in percent, rising, ending at 100 (e.g. [10, 50, 100])."
    )
    hold: Duration = Field("10m", description="How long each share below 100% is watched before the next.")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Share of the candidate's requests that may fail (5xx, 429).")
    max_p95_latency_ms: Count | None = Field(
        None, ge=1, le=600000, description="The candidate's p95 latency bound (default: deploy.request_timeout_ms)."
    )
    min_requests: Count = Field(
        0, ge=0, le=1_000_000, description="Fewer requests than this in a hold: nothing to judge, so the rollout stops and rolls back."
    )

    @field_validator("steps")
    @classmethod
    def _rising_to_100(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= s <= 100 for s in steps):
            raise ValueError("each step is a share of traffic from 1 to 100")
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("steps rise: each share is larger than the one before (e.g. [10, 50, 100])")
        if steps[-1] != 100:
            raise ValueError("the last step is 100: the rollout ends with the candidate taking all traffic")
        return steps

    @property
    def shares(self) -> list[int]:
        """The shares below 100% the candidate holds in turn (none: it takes 100% at once)."""
        return [s for s in self.steps if s < 100]

    @model_validator(mode="after")
    def _short_hold(self) -> RolloutSpec:
        if parse_duration(self.hold) > timedelta(hours=24):
            raise ValueError("hold is at most 24h per step (a candidate at part of the traffic costs a second deployment)")
        return self


class DeployOverride(Strict):
    """What one environment serves differently (its size, count, traffic); what is trained is the same everywhere."""

    instance_type: Identifier | None = Field(None, description="The serving SKU in this environment.")
    instance_count: Count | None = Field(None, ge=1, le=100, description="Instances in this environment.")
    rollout: RolloutSpec | None = Field(None, description="Gradual traffic in this environment.")


class DeploySpec(Strict):
    kind: ServingKind = Field(
        "managed",
        description="managed: an online endpoint on VMs, traffic split between deployments; serverless: a pay-per-token "
        "endpoint per version (no traffic split, no instances).",
    )
    endpoint: EndpointName | None = Field(None, description="Endpoint name; derived from the run name when omitted.")
    instance_type: Identifier | None = None
    instance_count: Count = Field(1, ge=1, le=100)
    liveness_initial_delay_s: Count = Field(600, ge=0, le=3600)
    request_timeout_ms: Count = Field(90000, ge=1000, le=180000)
    smoke_test: SmokeTestSpec = Field(default_factory=SmokeTestSpec)
    timeouts: RolloutTimeouts = Field(default_factory=RolloutTimeouts)
    gate: GateSpec = Field(default_factory=GateSpec)
    keep_previous_for: Duration | None = Field(
        None,
        description="Keep the replaced deployment at 0% this long after a "
        "promotion, for an instant rollback (default: deleted at promotion).",
    )
    rollout: RolloutSpec | None = Field(None, description="Gradual traffic (default: the candidate takes 100% at once).")
    environments: dict[EnvironmentName, DeployOverride] = Field(
        default_factory=dict, description="Per environment (gitops.yaml environments:): what it serves differently."
    )


class LifecycleSpec(Strict):
    idle_after: Duration | None = Field(None, description="Tear down after no requests for this long (e.g. 24h).")
    expire_after: Duration | None = Field(None, description="Tear down this long after the last deployment (e.g. 7d).")
    keep: Switch = Field(False, description="Never tear down automatically.")
    supersede: Switch = Field(False, description="A new version cancels a job of this run still running.")


class RunSpec(Strict):
    """One fine-tune run: what to train, on what, and where to serve it."""

    model_config = ConfigDict(extra="forbid", title="finetune-gitops run spec", coerce_numbers_to_str=True)

    name: RunName = Field(..., description="3-24 chars: lowercase letters, digits, single '-'; starts with a letter.")
    backend: Literal["azureml", "local"] = "azureml"
    owner: str | None = Field(
        None, max_length=100, pattern=OWNER_PATTERN, description="Who answers for this run (a GitHub handle or @org/team)."
    )
    description: str | None = None
    model: ModelRef
    data: DataSpec
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    finetune: FinetuneSpec = Field(default_factory=FinetuneSpec)
    register: RegisterSpec = Field(default_factory=RegisterSpec)
    deploy: DeploySpec = Field(default_factory=DeploySpec)
    lifecycle: LifecycleSpec = Field(default_factory=LifecycleSpec)
    environments: list[EnvironmentName] | None = Field(
        None,
        min_length=1,
        description="The environments of gitops.yaml this run goes to, in their order (default: all). It trains in the first.",
    )

    @field_validator("environments")
    @classmethod
    def _each_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("names an environment twice; list each once, in the order of gitops.yaml")
        return value

    @field_validator("name")
    @classmethod
    def _no_double_dash(cls, value: str) -> str:
        if "--" in value:
            raise ValueError("use single '-' between words")
        return value
