"""The local fine-tune job: LoRA (or full) SFT of a causal LM with trl's SFTTrainer, on the CPU.

Run as a detached worker by the local backend (``python -m pipelines.local_finetune JOB_DIR``): reads
``JOB_DIR/request.json``, logs params and train/eval loss to an MLflow run, saves the result as an
MLflow transformers model (chat task), and keeps ``JOB_DIR/status.json`` current. The parameter names
are those of the Azure component, so one spec drives both backends.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.job_files import build_event, write_json_atomic
from pipelines.model_digest import content_digest

# Component inputs the local trainer honours; anything else in a spec is recorded but has no effect here.
HONOURED = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "seed",
    "max_seq_length",
    "apply_lora",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "merge_lora_weights",
    "logging_steps",
    "evaluation_strategy",
    "eval_steps",
    "max_grad_norm",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "optim",
)
# The component's defaults for what a spec leaves out (v0.0.82), with CPU-friendly sequence length.
DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 1,
    "max_steps": -1,
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "learning_rate": 2e-5,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "seed": 42,
    "max_seq_length": -1,
    "apply_lora": "false",
    "lora_r": 8,
    "lora_alpha": 128,
    "lora_dropout": 0.0,
    "merge_lora_weights": "true",
    "logging_steps": 10,
    "evaluation_strategy": "epoch",
    "eval_steps": 500,
    "max_grad_norm": 1.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "optim": "adamw_torch",
}
FALLBACK_SEQ_LEN = 512


@dataclass
class FinetuneRequest:
    job_name: str
    base_model_dir: str
    train_path: str
    test_path: str | None
    output_dir: str
    params: dict[str, Any] = field(default_factory=dict)
    tracking_uri: str | None = None
    experiment: str = "local-finetune"
    tags: dict[str, str] = field(default_factory=dict)
    event_topic: str = ""


@dataclass
class FinetuneResult:
    mlflow_run_id: str | None
    model_uri: str | None
    train_tokens: int
    train_seconds: float
    final_train_loss: float | None
    final_eval_loss: float | None
    content_digest: str | None = None  # pipelines.model_digest of the model logged: kept as its registered tag


def resolved_params(params: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **{k: v for k, v in params.items() if k in HONOURED}}


def _chat_rows(path: str) -> Any:
    from datasets import Dataset

    from pipelines.prepare_data import read_jsonl

    rows = read_jsonl(path)
    # trl treats a 'prompt' column as prompt-completion data: keep only the conversation.
    return Dataset.from_list([{"messages": r["messages"]} for r in rows])


def sft_config(p: dict[str, Any], output_dir: str, has_eval: bool) -> Any:
    from trl import SFTConfig

    strategy = {"epoch": "epoch", "steps": "steps", "disable": "no"}[p["evaluation_strategy"]] if has_eval else "no"
    seq_len = int(p["max_seq_length"]) if int(p["max_seq_length"]) > 0 else FALLBACK_SEQ_LEN
    return SFTConfig(
        output_dir=output_dir,
        num_train_epochs=float(p["num_train_epochs"]),
        max_steps=int(p["max_steps"]),
        per_device_train_batch_size=int(p["per_device_train_batch_size"]),
        per_device_eval_batch_size=int(p["per_device_eval_batch_size"]),
        gradient_accumulation_steps=int(p["gradient_accumulation_steps"]),
        learning_rate=float(p["learning_rate"]),
        lr_scheduler_type=p["lr_scheduler_type"],
        warmup_steps=int(p["warmup_steps"]),
        weight_decay=float(p["weight_decay"]),
        seed=int(p["seed"]),
        max_length=seq_len,
        logging_steps=int(p["logging_steps"]),
        eval_strategy=strategy,
        eval_steps=int(p["eval_steps"]) if strategy == "steps" else None,
        max_grad_norm=float(p["max_grad_norm"]),
        adam_beta1=float(p["adam_beta1"]),
        adam_beta2=float(p["adam_beta2"]),
        adam_epsilon=float(p["adam_epsilon"]),
        optim=p["optim"],
        assistant_only_loss=True,
        packing=False,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        logging_first_step=True,
    )


def lora_config(p: dict[str, Any]) -> Any:
    from peft import LoraConfig

    # A tiny random model's head must learn too, or the loss barely moves: save lm_head with the adapter.
    return LoraConfig(
        r=int(p["lora_r"]),
        lora_alpha=int(p["lora_alpha"]),
        lora_dropout=float(p["lora_dropout"]),
        target_modules="all-linear",
        modules_to_save=["lm_head"],
        task_type="CAUSAL_LM",
    )


def build_trainer(request: FinetuneRequest, callbacks: list[Any] | None = None) -> Any:
    """The configured SFTTrainer (also used by the benchmark's plain-trl comparison)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    p = resolved_params(request.params)
    if (Path(request.base_model_dir) / "MLmodel").exists():  # a registered MLflow transformers model
        import mlflow.transformers

        components = mlflow.transformers.load_model(request.base_model_dir, return_type="components")
        model, tokenizer = components["model"], components["tokenizer"]
    else:  # a plain Hugging Face model directory
        tokenizer = AutoTokenizer.from_pretrained(request.base_model_dir)
        model = AutoModelForCausalLM.from_pretrained(request.base_model_dir)
    train = _chat_rows(request.train_path)
    test = _chat_rows(request.test_path) if request.test_path else None
    return SFTTrainer(
        model=model,
        args=sft_config(p, request.output_dir, test is not None),
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,
        peft_config=lora_config(p) if p["apply_lora"] == "true" else None,
        callbacks=callbacks or [],
    )


def _progress_callback(report: Callable[[dict[str, Any]], None]) -> Any:
    import mlflow
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            logs = logs or {}
            metrics = {
                ("train_loss" if k == "loss" else k): float(v)
                for k, v in logs.items()
                if isinstance(v, (int, float)) and k in ("loss", "eval_loss", "learning_rate", "grad_norm")
            }
            if metrics and mlflow.active_run() is not None:
                mlflow.log_metrics(metrics, step=state.global_step)
            report({"step": state.global_step, "max_steps": state.max_steps, **metrics})

    return Progress()


def count_tokens(trainer: Any) -> int:
    return int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]))


def log_chat_model(model: Any, tokenizer: Any, name: str = "model") -> Any:
    import mlflow

    return mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name=name,
        task="llm/v1/chat",
        pip_requirements=["torch", "transformers", "accelerate"],
        model_config={"max_new_tokens": 64, "do_sample": False},
    )


def run_finetune(request: FinetuneRequest, report: Callable[[dict[str, Any]], None] = lambda _: None) -> FinetuneResult:
    import mlflow

    if request.tracking_uri:
        mlflow.set_tracking_uri(request.tracking_uri)
    mlflow.set_experiment(request.experiment)
    p = resolved_params(request.params)
    with mlflow.start_run(run_name=request.job_name, tags=request.tags) as run:
        mlflow.log_params({k: p[k] for k in sorted(p)})
        trainer = build_trainer(request, [_progress_callback(report)])
        tokens = count_tokens(trainer) * max(1, int(float(p["num_train_epochs"])))
        start = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - start
        eval_loss = None
        if trainer.eval_dataset is not None:
            eval_loss = float(trainer.evaluate()["eval_loss"])
            mlflow.log_metric("final_eval_loss", eval_loss, step=trainer.state.global_step)
        steps = trainer.state.global_step
        seen = trainer.state.num_input_tokens_seen or tokens
        mlflow.log_metrics(
            {
                "train_runtime_s": seconds,
                "train_tokens": float(seen),
                "train_steps": float(steps),
                "tokens_per_s": seen / seconds if seconds else 0.0,
            }
        )
        model = trainer.model
        if p["apply_lora"] == "true":
            # Served models must stand alone (no hub download of a base): always merge for the MLflow model.
            model = model.merge_and_unload()
        report({"phase": "saving"})
        info = log_chat_model(model, trainer.processing_class)
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as scratch:  # the files as logged: what every environment must serve
            digest = content_digest(mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=scratch))
        mlflow.set_tag("content_digest", digest)
        return FinetuneResult(run.info.run_id, info.model_uri, int(seen), seconds, float(output.training_loss), eval_loss, digest)


# --- the detached worker -------------------------------------------------------------------------


def worker(job_dir: Path) -> int:
    request = FinetuneRequest(**json.loads((job_dir / "request.json").read_text()))
    status_path = job_dir / "status.json"
    status: dict[str, Any] = json.loads(status_path.read_text()) if status_path.exists() else {}

    def update(**fields: Any) -> None:
        status.update(fields)
        write_json_atomic(status_path, status)

    def on_term(signum: int, frame: Any) -> None:
        try:
            update(state="canceled", ended_at=time.time(), error="canceled by request")
            emit_event(request, job_dir, "Canceled")
        finally:  # whatever happens here, the job ends as canceled: never "failed" for being stopped
            os._exit(143)

    # What the handler uses (build_event, and uuid with it) was imported with this module, before the handler is
    # installed: a SIGTERM that lands while the training code is still importing a module the handler needs would
    # find it half-initialised, raise inside the interrupted import, and the job would be recorded failed.
    signal.signal(signal.SIGTERM, on_term)
    update(state="running", started_at=time.time())
    try:
        result = run_finetune(request, lambda progress: update(progress={**status.get("progress", {}), **progress}))
    except Exception as exc:  # noqa: BLE001  (the job's own failure: recorded, not raised into the void)
        traceback.print_exc()
        update(state="failed", ended_at=time.time(), error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        emit_event(request, job_dir, "Failed")
        return 1
    update(state="completed", ended_at=time.time(), result=asdict(result))
    emit_event(request, job_dir, "Completed")
    return 0


def emit_event(request: FinetuneRequest, job_dir: Path, status: str) -> None:
    """Write the job-finished event (Event Grid shape) to the workspace's events/ folder. The worker does no
    more: whoever drives the lifecycle (``gitops run``, ``gitops reconcile``) reads the job's state from there."""

    event = build_event(topic=request.event_topic, experiment=request.experiment, run_id=request.job_name, status=status, tags=request.tags)
    events_dir = job_dir.parent.parent / "events"
    write_json_atomic(events_dir / f"{request.job_name}-{status.lower()}.json", event)


if __name__ == "__main__":
    raise SystemExit(worker(Path(sys.argv[1])))
