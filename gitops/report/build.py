"""The run report: numbers from the job's metrics and the run's ledger record, and a comparison."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from gitops.ledger.model import RunRecord
from gitops.report.metrics import JobMetrics, MetricsReader

# Parameters worth showing a reviewer, in this order (the rest is in the JSON form).
KEY_PARAMS = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "apply_lora",
    "lora_r",
    "lora_alpha",
    "max_seq_length",
    "seed",
)


@dataclass
class RunReport:
    run: str
    job_name: str
    status: str
    params: dict[str, str]
    duration_s: float | None
    final_train_loss: float | None
    best_train_loss: float | None
    final_eval_loss: float | None
    best_eval_loss: float | None
    eval_perplexity: float | None
    tokens_seen: int | None
    smoke_ok: bool | None
    smoke_latency_ms: float | None
    smoke_reply: str
    model: str | None
    endpoint: str | None
    deployment: str | None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    gate: dict[str, Any] | None = None  # the promotion gate's verdict: ok, reasons, notes, numbers
    # Where the model came from and what it is, the same in every environment: commit, pull request, data, content
    # digest (and the environment this record is the state of). Empty keys are left out.
    lineage: dict[str, str] = field(default_factory=dict)
    cost: str = ""  # what the run has cost so far and is expected to (gitops.cost.spend), when it was priced

    def summary(self) -> dict[str, Any]:
        """What the ledger keeps of a report (no curves)."""
        data = asdict(self)
        data.pop("curves")
        return data


def _final_best(points: list[tuple[int, float]]) -> tuple[float | None, float | None]:
    if not points:
        return None, None
    return points[-1][1], min(v for _, v in points)


def final_eval(metrics: JobMetrics) -> tuple[float | None, float | None]:
    """A job's final eval loss (the trainer's final evaluation, else the last point of the curve) and its perplexity
    (none for a loss so large that it means nothing)."""
    points = metrics.curves.get("eval_loss", [])
    loss = metrics.summary.get("final_eval_loss", points[-1][1] if points else None)
    return loss, math.exp(loss) if loss is not None and loss < 50 else None


def build_report(record: RunRecord, metrics: JobMetrics) -> RunReport:
    train_final, train_best = _final_best(metrics.curves.get("train_loss", []))
    eval_points = metrics.curves.get("eval_loss", [])
    eval_final, perplexity = final_eval(metrics)
    eval_best = min([v for _, v in eval_points] + ([eval_final] if eval_final is not None else []), default=None)
    duration = metrics.summary.get("train_runtime_s")
    if duration is None and metrics.started_at and metrics.ended_at:
        duration = metrics.ended_at - metrics.started_at
    tokens = metrics.summary.get("train_tokens")
    smoke = record.smoke
    return RunReport(
        run=record.run,
        job_name=record.job_name,
        status=record.status,
        params={k: metrics.params[k] for k in KEY_PARAMS if k in metrics.params},
        duration_s=duration,
        final_train_loss=train_final,
        best_train_loss=train_best,
        final_eval_loss=eval_final,
        best_eval_loss=eval_best,
        eval_perplexity=perplexity,
        tokens_seen=int(tokens) if tokens is not None else None,
        smoke_ok=smoke.ok if smoke else None,
        smoke_latency_ms=smoke.latency_ms if smoke else None,
        smoke_reply=smoke.reply_excerpt if smoke else "",
        model=f"{record.model_name} v{record.model_version}" if record.model_version else record.model_name,
        endpoint=record.endpoint,
        deployment=record.deployment,
        curves=metrics.curves,
        gate=record.gate,
        lineage=lineage(record),
    )


def lineage(record: RunRecord) -> dict[str, str]:
    """Commit, pull request, training data and content digest of the record's version (and its environment, a later
    one's): what the registry model's tags say too, so a version can be traced wherever it serves."""
    data = ""
    if record.spec:
        d = record.spec.get("data") or {}
        data = str(d.get("dataset") or d.get("train_path") or "")
        if d.get("dataset") and d.get("train_split"):
            data += f" ({d['train_split']}, {d.get('sample_percent', 100)}%)"
    found = {
        "environment": record.environment or "",
        "commit": record.commit or "",
        "pull request": record.pr or "",
        "data": data,
        "content digest": record.model_digest or "",
    }
    return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class Delta:
    label: str
    this: float | None
    other: float | None

    @property
    def change(self) -> float | None:
        return None if self.this is None or self.other is None else self.this - self.other


def compare(this: RunReport, other: RunReport) -> list[Delta]:
    return [
        Delta("final train loss", this.final_train_loss, other.final_train_loss),
        Delta("best train loss", this.best_train_loss, other.best_train_loss),
        Delta("final eval loss", this.final_eval_loss, other.final_eval_loss),
        Delta("best eval loss", this.best_eval_loss, other.best_eval_loss),
        Delta("eval perplexity", this.eval_perplexity, other.eval_perplexity),
        Delta("smoke latency ms", this.smoke_latency_ms, other.smoke_latency_ms),
    ]


def previous_version(record: RunRecord, reader: MetricsReader) -> RunReport | None:
    """The report of the version before this one (its job's metrics; its smoke test and gate from the summary kept
    on the record when it went live), or None when it never trained."""
    from dataclasses import replace

    from gitops.errors import NotFoundError

    if not record.previous_job:
        return None
    try:
        metrics = reader.job_metrics(record.previous_job)
    except NotFoundError:
        return None
    # Its summary is the record's report while the new version has not gone live (held, rolled back), else the one
    # kept beside it when it went live: either way, the one of the previous job.
    summaries = (record.report, record.previous_report)
    kept: dict[str, Any] = next((r for r in summaries if r and r.get("job_name") == record.previous_job), {})
    previous = record.model_copy(update={"job_name": record.previous_job, "smoke": None, "gate": kept.get("gate")})
    return replace(
        build_report(previous, metrics),
        smoke_ok=kept.get("smoke_ok"),
        smoke_latency_ms=kept.get("smoke_latency_ms"),
        smoke_reply=kept.get("smoke_reply") or "",
    )


def changed_params(this: RunReport, other: RunReport) -> list[tuple[str, str | None, str | None]]:
    """The parameters that differ between two versions: (name, this, other)."""
    keys = sorted(set(this.params) | set(other.params))
    return [(k, this.params.get(k), other.params.get(k)) for k in keys if this.params.get(k) != other.params.get(k)]
